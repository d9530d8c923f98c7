"""BM25 (against a hand-worked example), its fusion with a dense model, and `polyir benchmark` end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch

from polyir.data.records import Document, Query, RetrievalTask
from polyir.evaluation import evaluate_embeddings
from polyir.evaluation.lexical import BM25, Fusion, tokens
from polyir.evaluation.search import product

from .helpers import polyir


def lucene_bm25(tf: int, df: int, n_docs: int, length: int, average: float, k1: float = 1.5, b: float = 0.75):
    idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + k1 * (1 - b + b * length / average))


def test_bm25_scores_are_lucene_bm25_worked_by_hand():
    docs = ["the cat sat on the mat", "the dog sat", "cats and dogs and cats"]
    task = RetrievalTask("t", [Document(f"d{i}", t, "en") for i, t in enumerate(docs)],
                         [Query("q", "cat sat sat", "en")], {"q": {"d0": 1}})
    queries, corpus = BM25().represent(task)
    scores = product(queries, corpus)[0].tolist()
    # English Snowball stems: cat, cats -> cat; dogs -> dog. Lengths 6, 3, 5; average 14 / 3.
    average = 14 / 3
    cat_d0 = lucene_bm25(1, 2, 3, 6, average)
    sat_d0, sat_d1 = lucene_bm25(1, 2, 3, 6, average), lucene_bm25(1, 2, 3, 3, average)
    cat_d2 = lucene_bm25(2, 2, 3, 5, average)
    expected = [cat_d0 + 2 * sat_d0, 2 * sat_d1, cat_d2]  # "sat" twice in the query counts twice, as in bm25s
    assert scores == pytest.approx(expected, rel=1e-5)


def test_tokens_suit_every_script():
    assert tokens("Running dogs", "en") == ["run", "dog"]
    assert tokens("हिन्दी भाषाओं", "hi")[0].startswith("हिन्द")  # vowel signs stay inside the word
    assert tokens("ሰላም ለዓለም", "am") == ["ሰላም", "ለዓለም"]  # Ethiopic words, no stemmer
    assert tokens("東京都", "ja") == ["東京", "京都"] and tokens("ภาษา", "th") == ["ภา", "าษ", "ษา"]
    assert tokens("Ｈｅｌｌｏ WORLD", "sw") == ["hello", "world"]  # NFKC and case folding


def test_fusion_is_the_weighted_sum_of_range_normalised_parts(minilm, data_dir):
    from polyir.data.bitext import bitext_task
    from polyir.evaluation.harness import encode_task
    from polyir.models.biencoder import BiEncoder

    task = bitext_task(data_dir / "flores-sib200", "eng_Latn", ["swh_Latn", "hau_Latn"])
    encoder = BiEncoder.from_pretrained(minilm)
    dense, sparse = encode_task(encoder, task, show_progress=False), BM25().represent(task)
    fused = Fusion(encoder, "minilm", BM25(), 0.3).combine(dense, sparse)
    d, s = product(*dense), product(*sparse)

    def scaled(scores):
        top = scores.topk(100, dim=1).values
        width = top[:, :1] - top[:, -1:]
        return scores / torch.where(width > 0, width, torch.ones_like(width))  # no shared term: scale 1

    assert torch.allclose(product(*fused), 0.3 * scaled(d) + 0.7 * scaled(s), atol=1e-5)
    dense_map = evaluate_embeddings(task, *dense, 10).table.summary["cross"]["map"]
    fused_map = evaluate_embeddings(task, *fused, 10).table.summary["cross"]["map"]
    assert fused_map > dense_map  # an English model gains from shared names and numbers in sw/ha lines


def test_benchmark_suite_end_to_end_with_dense_bm25_and_fusion(full_data, minilm, tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: shared\ndescription: FLORES-200 and XQuAD-R from ../shared/data\ntasks:\n"
                     "  - flores-200:swh_Latn,hau_Latn,amh_Ethi\n  - xquad-r:de,en\n  - ciral:ha\n")
    env = {"POLYIR_CACHE": tmp_path / "cache", "POLYIR_MIRROR": (tmp_path / "offline").as_uri()}
    args = ["benchmark", "--model", minilm, "--model", "bm25", "--fusion", "0.5", "--suite", suite, "--data-dir",
            full_data, "--quiet"]
    result = polyir(*args, "--out", tmp_path / "one", env=env)
    assert result.returncode == 0, result.stderr
    assert "skipped ciral:ha: 3 file(s) missing" in result.stderr and "polyir data get ciral:ha" in result.stderr
    metrics = json.loads((tmp_path / "one" / "bm25" / "metrics.json").read_text())
    assert set(metrics) == {"flores-200", "xquad-r"}
    assert set(metrics["flores-200"]["cross"]) == {"swh_Latn->eng_Latn", "hau_Latn->eng_Latn", "amh_Ethi->eng_Latn"}
    assert (tmp_path / "one" / "bm25" / "runs" / "xquad-r.trec").is_file()
    summary = (tmp_path / "one" / "summary.md").read_text()
    fused = f"{minilm} + bm25 (w=0.5)"
    assert "## cross: ndcg@10" in summary and fused in summary and "**macro average**" in summary
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {(r["model"], r["task"]) for r in rows} == {(m, t) for m in (str(minilm), "bm25", fused)
                                                      for t in ("flores-200", "xquad-r")}
    assert all(r["revision"].startswith(("sha256:", "bm25s")) for r in rows)
    again = polyir("benchmark", "--model", "bm25", "--task", "flores-200:swh_Latn", "--data-dir", full_data,
                   "--quiet", "--out", tmp_path / "two", env=env)
    assert again.returncode == 0, again.stderr
    shown = polyir("results", tmp_path / "results.jsonl")
    assert shown.returncode == 0, shown.stderr
    header = next(line for line in shown.stdout.splitlines() if line.startswith("| task | language |"))
    assert header.count(" @ ") == 3  # one column per model and revision; the newer bm25 row replaced the older
    by_key = {(r["model"], r["task"]): r["metrics"] for r in rows}
    bm25 = by_key["bm25", "flores-200"]["cross"]["swh_Latn->eng_Latn"]["map"]
    newest = json.loads((tmp_path / "two" / "bm25" / "metrics.json").read_text())
    assert newest["flores-200"]["cross"]["swh_Latn->eng_Latn"]["map"] == pytest.approx(bm25)  # same lines, same score


def test_benchmark_bad_input_exits_2(tmp_path, data_dir):
    env = {"POLYIR_CACHE": tmp_path / "cache", "POLYIR_MIRROR": (tmp_path / "offline").as_uri()}
    for args, message in ((["--suite", "low-resourse"], "no suite 'low-resourse'; expected a suite file or one of: "
                                                        "low-resource"),
                          (["--task", "mircl:sw"], "did you mean miracl"),
                          (["--task", "ciral:ha"], "no task to run: ciral:ha: 3 file(s) missing"),
                          ([], "expected --suite NAME or --task")):
        result = polyir("benchmark", "--model", "bm25", "--out", tmp_path / "out", "--data-dir", data_dir, *args,
                        env=env)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\ndescription: no tasks\n")
    result = polyir("benchmark", "--model", "bm25", "--out", tmp_path / "out", "--suite", suite, env=env)
    assert result.returncode == 2 and "suite.yaml" in result.stderr and "tasks: Field required" in result.stderr
    rows = tmp_path / "results.jsonl"
    rows.write_text('{"model": "bm25", "revision": "r", "task": "t", "metrics": {}}\n{"model": "bm25", "task": "t"}\n')
    result = polyir("results", rows)
    assert result.returncode == 2 and "results.jsonl:2: missing field 'revision'" in result.stderr


def test_results_rows_keep_their_languages_and_survive_a_torn_row(tmp_path, data_dir):
    env = {"POLYIR_CACHE": tmp_path / "cache", "POLYIR_MIRROR": (tmp_path / "offline").as_uri()}
    results = tmp_path / "results.jsonl"

    def bench(spec: str, out: str):
        ran = polyir("benchmark", "--model", "bm25", "--task", spec, "--data-dir", data_dir, "--quiet", "--out",
                     tmp_path / out, "--results", results, env=env)
        assert ran.returncode == 0, ran.stderr
        return ran

    bench("flores-200:swh_Latn", "sw")
    bench("flores-200:yor_Latn", "yo")
    shown = polyir("results", results)
    assert shown.returncode == 0, shown.stderr
    assert "| flores-200 [eng_Latn, swh_Latn] | swh_Latn->eng_Latn |" in shown.stdout
    assert "| flores-200 [eng_Latn, yor_Latn] | yor_Latn->eng_Latn |" in shown.stdout  # not replaced by the other
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["languages"] for r in rows] == [["eng_Latn", "swh_Latn"], ["eng_Latn", "yor_Latn"]]
    whole = results.read_bytes()
    results.write_bytes(whole[:-40])  # a run killed while writing its row
    torn = polyir("results", results)
    assert torn.returncode == 0 and "torn" in torn.stderr and "yor_Latn" not in torn.stdout
    ran = bench("flores-200:hau_Latn", "ha")
    assert "torn" in ran.stderr
    rows = [json.loads(line) for line in results.read_text().splitlines()]  # every line whole again
    assert [r["languages"] for r in rows] == [["eng_Latn", "swh_Latn"], ["eng_Latn", "hau_Latn"]]


def test_a_users_folder_beside_named_tasks_and_absent_ones_skipped(tmp_path, data_dir):
    env = {"POLYIR_CACHE": tmp_path / "cache", "POLYIR_MIRROR": (tmp_path / "offline").as_uri()}
    mine = tmp_path / "my-collection"
    prepared = polyir("prepare", "bitext", data_dir / "flores-sib200", mine, "--pivot", "eng_Latn", "--langs",
                      "eng_Latn,hau_Latn")
    assert prepared.returncode == 0, prepared.stderr
    result = polyir("benchmark", "--model", "bm25", "--task", mine, "--task", "flores-200:swh_Latn", "--task",
                    "ciral:ha", "--data-dir", data_dir, "--quiet", "--out", tmp_path / "out", env=env)
    assert result.returncode == 0, result.stderr
    assert "skipped ciral:ha: 3 file(s) missing" in result.stderr  # named on the command line, absent: skipped
    metrics = json.loads((tmp_path / "out" / "bm25" / "metrics.json").read_text())
    assert set(metrics) == {"my-collection", "flores-200"}
    assert set(metrics["my-collection"]["cross"]) == {"hau_Latn->eng_Latn"}
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {(r["task"], r["split"]) for r in rows} == {("my-collection", "test"), ("flores-200", "test")}
