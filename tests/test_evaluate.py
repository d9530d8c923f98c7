"""`polyir evaluate` end to end: settings from `lang` fields, and metrics that the written runs reproduce."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from statistics import fmean

import ir_measures
import pytest

from polyir.data import read_beir
from tests.helpers import polyir


@pytest.fixture(scope="module")
def xquad_eval(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "xq"
    result = polyir("prepare", "lareqa", data_dir / "xquad-r", out, "--holdout", "0.25", "--seed", "1")
    assert result.returncode == 0, result.stderr
    return out / "eval"


def recompute(task_dir, run_path, setting, key):
    """Metrics of one setting entry from the run alone: filter the full ranking to the setting's corpus."""
    task = read_beir(task_dir)
    doc_lang = {d.id: d.lang for d in task.corpus}
    query_lang = {q.id: q.lang for q in task.queries}
    ranking = defaultdict(list)
    for line in run_path.read_text().splitlines():
        qid, _, doc, rank, _score, _tag = line.split()
        ranking[qid].append(doc)
    x = key.split("->")[0]
    langs = set(doc_lang.values()) if setting == "multi" else {key.split("->")[-1]}
    values = defaultdict(dict)
    qrels, run = {}, {}
    for qid, docs in ranking.items():
        if query_lang[qid] != x:
            continue
        kept = [d for d in docs if doc_lang[d] in langs]
        relevant = {d for d, g in task.qrels[qid].items() if g > 0 and doc_lang[d] in langs}
        if not relevant:
            continue
        ranks = [r for r, d in enumerate(kept, start=1) if d in relevant]
        values[qid]["map"] = fmean((i + 1) / r for i, r in enumerate(ranks))
        if len(ranks) > 1:
            values[qid]["rank_distance"] = ranks[-1] - ranks[0]
        qrels[qid] = {d: 1 for d in relevant}
        run[qid] = {d: -float(r) for r, d in enumerate(kept[:100], start=1)}
    for m in ir_measures.iter_calc([ir_measures.nDCG @ 10, ir_measures.R @ 10], qrels, run):
        values[m.query_id]["ndcg@10" if str(m.measure) == "nDCG@10" else "recall@10"] = m.value
    names = ["map", "ndcg@10", "recall@10"] + (["rank_distance"] if setting == "multi" else [])
    return {name: fmean(v[name] for v in values.values()) for name in names}, len(values)


def test_metrics_are_reproduced_from_the_full_run(xquad_eval, minilm, tmp_path):
    result = polyir("evaluate", "--model", minilm, "--task", xquad_eval, "--out", tmp_path / "E", "--depth", "0",
                    "--quiet")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "E" / "metrics.json").read_text())["eval"]
    assert set(metrics["summary"]) == {"mono", "cross", "multi"}
    assert len(metrics["mono"]) == 6 and len(metrics["cross"]) == 30 and len(metrics["multi"]) == 6
    assert "rank_distance" in metrics["summary"]["multi"] and "rank_distance" not in metrics["summary"]["mono"]
    # an English model retrieves English far better than it crosses languages
    assert metrics["mono"]["en"]["map"] > 0.5 > metrics["cross"]["en->el"]["map"]
    run_path = tmp_path / "E" / "runs" / "eval.trec"
    for setting, key in [("mono", "en"), ("mono", "el"), ("cross", "de->en"), ("cross", "en->vi"),
                         ("multi", "en"), ("multi", "ru")]:
        expected, n = recompute(xquad_eval, run_path, setting, key)
        assert metrics[setting][key]["n"] == n
        for name, value in expected.items():
            assert metrics[setting][key][name] == pytest.approx(value, abs=1e-6), (setting, key, name)
    per_language = metrics["mono"].values()
    assert metrics["summary"]["mono"]["map"] == pytest.approx(fmean(e["map"] for e in per_language))


def test_m2m100_evaluation_writes_every_setting(xquad_eval, tiny_m2m100, tmp_path):
    result = polyir("evaluate", "--model", tiny_m2m100, "--task", xquad_eval, "--out", tmp_path / "E",
                    "--depth", "10", "--quiet")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "E" / "metrics.json").read_text())["eval"]
    for setting in ("mono", "cross", "multi"):
        summary = metrics["summary"][setting]
        assert {"map", "ndcg@10", "recall@1", "recall@10", "recall@100", "mrr@10"} <= set(summary)
        assert all(0.0 <= summary[m] <= 1.0 for m in summary if m != "rank_distance")
    lines = (tmp_path / "E" / "runs" / "eval.trec").read_text().splitlines()
    n_queries = len(read_beir(xquad_eval).queries)
    assert len(lines) == 10 * n_queries
    assert lines[0].split()[1] == "Q0" and lines[0].split()[3] == "1" and "multi" in result.stdout


def test_folders_that_share_a_name_are_named_by_their_parents(xquad_eval, tiny_m2m100, data_dir, tmp_path):
    """`prepare lareqa` and `prepare bitext --train` both write OUT/eval/: evaluated together, each keeps its
    results (xq-eval, flores-eval), where one used to overwrite the other; names that still clash exit 2."""
    from polyir.data import task_names
    from polyir.errors import InputError

    flores = tmp_path / "flores"
    assert polyir("prepare", "bitext", data_dir / "flores-sib200", flores, "--pivot", "eng_Latn", "--langs",
                  "eng_Latn,swh_Latn", "--train", "--holdout", "0.1").returncode == 0
    result = polyir("evaluate", "--model", tiny_m2m100, "--task", xquad_eval, "--task", flores / "eval", "--out",
                    tmp_path / "E", "--depth", "10", "--quiet")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "E" / "metrics.json").read_text())
    assert set(metrics) == {"xq-eval", "flores-eval"}
    assert set(metrics["xq-eval"]["summary"]) == {"mono", "cross", "multi"}
    assert set(metrics["flores-eval"]["summary"]) == {"cross"}
    assert sorted(p.name for p in (tmp_path / "E" / "runs").iterdir()) == ["flores-eval.trec", "xq-eval.trec"]
    clash = polyir("evaluate", "--model", tiny_m2m100, "--task", xquad_eval, "--task", tmp_path / "xq" / "eval",
                   "--out", tmp_path / "E2", "--quiet")
    assert clash.returncode == 2 and "two task folders share a name" in clash.stderr
    assert "Traceback" not in clash.stderr and not (tmp_path / "E2").exists()
    # the names results are keyed by are part of what a run is reused for: the same files under another name are not
    import shutil

    from polyir.config import TrainConfig
    from polyir.training.trainer import run_fingerprint

    shutil.copytree(flores / "eval", flores / "dev")
    settings = {"output_dir": tmp_path / "run", "model": {"name_or_path": str(tiny_m2m100)}}
    fingerprints = [run_fingerprint(TrainConfig(**settings, data={"train": flores / "train.jsonl", "dev": dev}))
                    for dev in ([xquad_eval, flores / "eval"], [xquad_eval, flores / "dev"])]
    assert fingerprints[0]["inputs"] == fingerprints[1]["inputs"] and fingerprints[0] != fingerprints[1]
    assert task_names([tmp_path / "a", tmp_path / "b"]) == ["a", "b"]
    # a relative folder is named by the folder it lies in, not by an empty or '..' parent
    assert task_names([Path("eval"), Path("../eval")]) == [f"{Path.cwd().name}-eval", f"{Path.cwd().parent.name}-eval"]
    with pytest.raises(InputError, match="two task folders share a name"):
        task_names([tmp_path / "x" / "eval", tmp_path / "y" / "x" / "eval"])


def test_monolingual_folder_takes_the_language_from_the_cli(tmp_path, tiny_m2m100, data_dir):
    folder = tmp_path / "mono"
    (folder / "qrels").mkdir(parents=True)
    sw = (data_dir / "flores-sib200" / "swh_Latn.txt").read_text().splitlines()[:40]
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n"
                                                 for i, t in enumerate(sw)))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": t[:30]}) + "\n"
                                                  for i, t in enumerate(sw)))
    (folder / "qrels" / "test.tsv").write_text("".join(f"q{i}\td{i}\t1\n" for i in range(40)))
    base = ["evaluate", "--model", tiny_m2m100, "--task", folder, "--quiet"]
    assert polyir(*base, "--out", tmp_path / "nolang").returncode == 2  # 'und' is no M2M-100 language
    result = polyir(*base, "--out", tmp_path / "E", "--lang", "swh_Latn")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "E" / "metrics.json").read_text())["mono"]
    assert set(metrics["summary"]) == {"mono"} and metrics["mono"]["swh_Latn"]["n"] == 40
    result = polyir(*base, "--out", tmp_path / "B", "--lang", "swh_Latn", "--dtype", "bfloat16")  # bf16 weights
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "B" / "metrics.json").read_text())["mono"]["mono"]["swh_Latn"]["n"] == 40


def test_default_task_is_all_of_xquad_r(tiny_bert, full_data, tmp_path):
    result = polyir("evaluate", "--model", tiny_bert, "--data-dir", full_data, "--out", tmp_path / "E",
                    "--depth", "5", "--quiet")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "E" / "metrics.json").read_text())
    assert list(metrics) == ["xquad-r"]
    assert sum(entry["n"] for entry in metrics["xquad-r"]["mono"].values()) == 11 * 1190
    assert len((tmp_path / "E" / "runs" / "xquad-r.trec").read_text().splitlines()) == 5 * 11 * 1190


def run_scores(path):
    """{(query, document): score} of a TREC run file."""
    return {(q, d): float(score) for q, _, d, _, score, _ in (line.split() for line in path.read_text().splitlines())}


def test_language_options_change_the_language_tokens(tmp_path, tiny_m2m100, data_dir):
    """--lang-map CODE=ta scores exactly as the same texts labelled `ta`; CODE= (no token) and --lang with
    another language score otherwise; --dtype bfloat16 scores close to, but not the same as, float32."""
    te = (data_dir / "flores-sib200" / "tel_Telu.txt").read_text(encoding="utf-8").splitlines()[:12]
    folders = {}
    for label in ("tel_Telu", "ta", None):
        folder = tmp_path / f"task-{label}"
        folder.mkdir()
        lang = {} if label is None else {"lang": label}
        (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "text": t, **lang}) + "\n"
                                                     for i, t in enumerate(te)))
        (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": t[:40], **lang}) + "\n"
                                                      for i, t in enumerate(te)))
        (folder / "qrels").mkdir()
        (folder / "qrels" / "test.tsv").write_text("".join(f"q{i}\td{i}\t1\n" for i in range(len(te))))
        folders[label] = folder

    def scores(folder, out, *options):
        result = polyir("evaluate", "--model", tiny_m2m100, "--task", folder, "--out", tmp_path / out, "--depth",
                        "0", "--quiet", *options)
        assert result.returncode == 0, result.stderr
        return run_scores(tmp_path / out / "runs" / f"{folder.name}.trec")

    mapped = scores(folders["tel_Telu"], "mapped", "--lang-map", "tel_Telu=ta")
    assert mapped == scores(folders["ta"], "ta")
    untagged = scores(folders["tel_Telu"], "untagged", "--lang-map", "tel_Telu=")
    assert untagged.keys() == mapped.keys() and untagged != mapped
    assert scores(folders[None], "lang", "--lang", "ta") == mapped
    assert scores(folders[None], "lang-sw", "--lang", "swh_Latn") != mapped
    half = scores(folders["ta"], "bf16", "--dtype", "bfloat16")
    differences = [abs(half[key] - mapped[key]) for key in mapped]
    assert 0 < max(differences) < 0.05
