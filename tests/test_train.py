"""`polyir train` as a user runs it: a real subprocess on a tiny M2M-100 and real XQuAD-R text."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.helpers import polyir


def write_config(path, output_dir, model, data, **overrides):
    config = {
        "output_dir": str(output_dir), "seed": 0,
        "model": {"name_or_path": str(model), "max_query_length": 24, "max_passage_length": 48},
        "data": {"train": str(data / "train.jsonl"), "languages": ["de", "en", "es"], "dev": [str(data / "eval")]},
        "sampling": {"strategy": "hybrid", "alpha": 0.5},
        "step": {"strategy": "gradcache", "batch_size": 8, "chunk_size": 3},
        "optim": {"lr": 1e-3, "warmup_steps": 1, "max_steps": 4, "temperature": 0.05},
        "eval": {"every_steps": 2, "metric": "multi/map", "depth": 20},
        "checkpoint": {"every_steps": 2, "keep": 2},
    }
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if name:
            config[section][name] = value
        else:
            config[section] = value
    path.write_text(yaml.safe_dump(config))
    return path


def log_of(output_dir):
    return [json.loads(line) for line in (output_dir / "log.jsonl").read_text().splitlines()]


def weights(output_dir):
    newest = sorted((output_dir / "checkpoints").glob("step-*"))[-1]
    return load_file(newest / "model.safetensors")


@pytest.mark.parametrize("sampling", ["xx-mono", "xx", "xy", "hybrid"])
def test_every_sampling_and_step_strategy_trains(sampling, tiny_m2m100, small_xquad, tmp_path):
    steps = {"full": {"strategy": "full", "batch_size": 8},
             "accumulation": {"strategy": "accumulation", "batch_size": 8, "micro_batch_size": 4},
             "gradcache": {"strategy": "gradcache", "batch_size": 8, "chunk_size": 3}}
    for name, step in steps.items():
        out = tmp_path / name
        config = write_config(tmp_path / f"{name}.yaml", out, tiny_m2m100, small_xquad, step=step,
                              **{"sampling.strategy": sampling, "optim.max_steps": 2})
        result = polyir("train", "--config", config, "--quiet")
        assert result.returncode == 0, result.stderr
        log = log_of(out)
        assert [e["step"] for e in log] == [0, 1, 2] and log[-1]["examples"] == 16
        assert log[0]["loss"] is None and "dev" in log[0], "step 0: the untrained model's dev scores"
        assert {"loss", "seconds", "pairs_per_second", "peak_memory_gib"} <= set(log[1])
        assert "multi" in log[-1]["dev"]["eval"] and "mono" in log[-1]["dev"]["eval"]
        assert (out / "model" / "polyir_config.json").is_file() and any((out / "tensorboard").iterdir())


@pytest.mark.parametrize("precision", ["auto", "bf16-weights"])
def test_killed_run_resumes_to_the_same_weights(precision, tiny_m2m100, small_xquad, tmp_path):
    """With bf16 compute weights, the checkpoint holds the float32 masters, from which the copy is rebuilt."""
    overrides = {"optim.max_steps": 8, "checkpoint": {"every_steps": 1, "keep": 3}, "eval.every_steps": 4,
                 "precision": precision}
    reference = tmp_path / "reference"
    config = write_config(tmp_path / "reference.yaml", reference, tiny_m2m100, small_xquad, **overrides)
    assert polyir("train", "--config", config, "--quiet").returncode == 0
    killed = tmp_path / "killed"
    config = write_config(tmp_path / "killed.yaml", killed, tiny_m2m100, small_xquad, **overrides)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for kill_after in (3, 6):  # kill twice, at different points of the run
        process = subprocess.Popen([sys.executable, "-m", "polyir", "train", "--config", str(config), "--quiet",
                                    *(["--resume"] if (killed / "log.jsonl").exists() else [])], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None:
            done = [json.loads(line)["step"] for line in (killed / "log.jsonl").read_text().splitlines()] \
                if (killed / "log.jsonl").exists() else []
            if done and done[-1] >= kill_after:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"
        assert log_of(killed)[-1]["step"] < 8
    result = polyir("train", "--config", config, "--quiet", "--resume")
    assert result.returncode == 0, result.stderr
    expected, actual = weights(reference), weights(killed)
    assert expected.keys() == actual.keys()
    assert all((expected[k] == actual[k]).all() for k in expected), "resumed weights differ from the uninterrupted"
    assert [e["step"] for e in log_of(killed)] == list(range(0, 9))
    assert [e["loss"] for e in log_of(killed)] == [e["loss"] for e in log_of(reference)]
    assert [e.get("drawn") for e in log_of(killed)] == [e.get("drawn") for e in log_of(reference)]
    assert sum(e["drawn"]["xx"] + e["drawn"]["xy"] for e in log_of(killed) if "drawn" in e) == 64
    assert all(value.dtype == torch.float32 for value in actual.values())


def test_damaged_newest_checkpoint_is_skipped(tiny_m2m100, small_xquad, tmp_path):
    out = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad,
                          **{"checkpoint": {"every_steps": 1, "keep": 5}, "optim.max_steps": 3})
    assert polyir("train", "--config", config, "--quiet").returncode == 0
    newest = sorted((out / "checkpoints").glob("step-*"))[-1]
    data = bytearray((newest / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (newest / "model.safetensors").write_bytes(data)
    staging = out / "checkpoints" / ".step-00000004.k1ll3d"  # a checkpoint write that a kill interrupted
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"half")
    config = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad,
                          **{"checkpoint": {"every_steps": 1, "keep": 5}, "optim.max_steps": 4})
    result = polyir("train", "--config", config, "--quiet", "--resume")
    assert result.returncode == 0, result.stderr
    assert not staging.exists() and not list((out / "checkpoints").glob(".*"))
    assert "skipping damaged checkpoint" in result.stderr and newest.name in result.stderr
    assert "resuming from step-00000002" in result.stderr
    assert [e["step"] for e in log_of(out)] == [0, 1, 2, 3, 4]


def test_diverging_loss_stops_with_the_last_good_checkpoint(tiny_m2m100, small_xquad, tmp_path):
    out = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", out, tiny_m2m100, small_xquad,
                          **{"optim": {"lr": 1e6, "max_steps": 50, "temperature": 0.05, "max_grad_norm": None},
                             "checkpoint": {"every_steps": 1, "keep": 50}, "eval.every_steps": 100})
    result = polyir("train", "--config", config, "--quiet")
    assert result.returncode == 1
    assert "loss is nan" in result.stderr and "last good checkpoint" in result.stderr
    last_step = log_of(out)[-1]["step"]
    good = sorted((out / "checkpoints").glob("step-*"))[-1]
    assert good.name == f"step-{last_step:08d}" and good.name in result.stderr


@pytest.mark.parametrize(("change", "message"), [
    ({"step": {"strategy": "full", "batch_size": 8, "chunk_size": "auto"}}, "'auto' is for strategy 'gradcache'"),
    ({"step": {"strategy": "gradcache", "batch_size": 8, "memory_gib": 0}}, "step.memory_gib"),
    ({"sampling.strategy": "mixed"}, "sampling.strategy"),
    ({"optim.lr": -1}, "optim.lr"),
    ({"eval.metric": "map"}, "eval.metric"),
    ({"bogus": 1}, "bogus"),
    ({"step": {"strategy": "contaccum", "batch_size": 8, "micro_batch_size": 4}}, "step.bank_size is required"),
    ({"step": {"strategy": "full", "batch_size": 8, "bank": "passages"}}, "are for strategy 'contaccum'"),
    ({"data.temperature": 0}, "data.temperature"),
    ({"model.inference_length": 0}, "model.inference_length"),
    ({"retention": {"l2sp": -1}}, "retention.l2sp"),
    ({"retention": {"lora": {"rank": 0}}}, "retention.lora.rank"),
    ({"retention": {"distill": {"texts": {}}}}, "retention.distill.texts"),
])
def test_bad_config_exits_2_naming_the_key(change, message, tiny_m2m100, small_xquad, tmp_path):
    config = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_m2m100, small_xquad, **change)
    result = polyir("train", "--config", config, "--quiet")
    assert result.returncode == 2 and message in result.stderr and "c.yaml" in result.stderr
    assert not (tmp_path / "run").exists()


def test_existing_run_needs_resume(tiny_m2m100, small_xquad, tmp_path):
    config = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_m2m100, small_xquad, **{"optim.max_steps": 1})
    assert polyir("train", "--config", config, "--quiet").returncode == 0
    result = polyir("train", "--config", config, "--quiet")
    assert result.returncode == 2 and "--resume" in result.stderr


def test_compiled_run_trains_like_an_eager_one(tiny_m2m100_no_dropout, small_xquad, tmp_path):
    """`compile: true` (torch.compile of the encoder, inductor on CPU): the same losses and dev scores as the eager
    run up to float rounding, and a saved model that loads as a plain one."""
    from polyir.models.biencoder import BiEncoder

    runs = {}
    for name, compiled in (("eager", False), ("compiled", True)):
        config = write_config(tmp_path / f"{name}.yaml", tmp_path / name, tiny_m2m100_no_dropout, small_xquad,
                              **{"optim.max_steps": 2, "compile": compiled})
        result = polyir("train", "--config", config, "--quiet")
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = log_of(tmp_path / name)
    for eager, compiled in zip(runs["eager"], runs["compiled"]):
        assert (eager["loss"] is None) == (compiled["loss"] is None)
        if eager["loss"] is not None:
            assert compiled["loss"] == pytest.approx(eager["loss"], abs=1e-4)
        if "dev" in eager:
            assert compiled["dev"]["eval"]["multi"]["map"] == pytest.approx(eager["dev"]["eval"]["multi"]["map"],
                                                                            abs=1e-3)
    assert BiEncoder.from_pretrained(tmp_path / "compiled" / "model").dimension == 32


def test_frozen_token_embeddings_stay_as_they_were(tiny_m2m100, small_xquad, tmp_path):
    """optim.freeze_embeddings: after training, the token embeddings (M2M-100's shared table) are bit for bit the
    pretrained ones, no gradient and no weight decay, while the layers above have moved; without it, they move."""
    before = load_file(tiny_m2m100 / "model.safetensors")
    moved = {}
    for frozen in (True, False):
        out = tmp_path / f"frozen-{frozen}"
        config = write_config(tmp_path / f"{frozen}.yaml", out, tiny_m2m100, small_xquad,
                              **{"optim.max_steps": 2, "optim.freeze_embeddings": frozen, "optim.weight_decay": 0.1})
        result = polyir("train", "--config", config, "--quiet")
        assert result.returncode == 0, result.stderr[-3000:]
        after = weights(out)
        table = next(after[k] for k in ("shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
                     if k in after)  # one tied table, stored under one of its names
        moved[frozen] = not torch.equal(table, before["shared.weight"])
        assert not torch.equal(after["encoder.layers.0.fc1.weight"], before["encoder.layers.0.fc1.weight"])
    assert moved == {True: False, False: True}
