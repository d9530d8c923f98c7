"""Retention methods on a tiny real M2M-100 and XQuAD-R text: L2-SP's gradient is 2λ(θ − θ₀) and keeps a run near
its start; retention settings are an axis of the comparison grid."""

from __future__ import annotations

import random

import pytest
import torch
from safetensors.torch import load_file

import polyir
from polyir.comparison.grid import expand
from polyir.config import CompareConfig, RetentionConfig
from polyir.models.biencoder import BiEncoder
from polyir.training import checkpoints, kept
from polyir.training.retention import L2SP
from tests.helpers import polyir as run
from tests.test_train import log_of, write_config


def test_l2sp_adds_two_lambda_times_the_distance_to_the_start(tiny_m2m100):
    model = BiEncoder.from_pretrained(tiny_m2m100)
    parameters = list(model.encoder.parameters())
    penalty = L2SP(parameters, 0.3)
    start = [p.detach().clone() for p in parameters]
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in parameters:
            p.add_(torch.randn(p.shape, generator=generator) * 0.1)
    parameters[0].grad = torch.ones_like(parameters[0])  # a contrastive gradient already there is added to
    value = penalty.apply()
    for i, (p, s) in enumerate(zip(parameters, start)):
        expected = 2 * 0.3 * (p.detach() - s) + (1 if i == 0 else 0)
        assert torch.allclose(p.grad, expected, rtol=1e-6, atol=1e-7)
    assert float(value) == pytest.approx(0.3 * sum(float((p.detach() - s).pow(2).sum())
                                                   for p, s in zip(parameters, start)), rel=1e-5)


def test_l2sp_keeps_a_run_near_its_start_and_logs_the_penalty(tiny_m2m100, small_xquad, tmp_path):
    start = BiEncoder.from_pretrained(tiny_m2m100).encoder
    distance = {}
    for name, weight in (("free", 0.0), ("held", 50.0)):
        config = write_config(tmp_path / f"{name}.yaml", tmp_path / name, tiny_m2m100, small_xquad,
                              retention={"l2sp": weight},
                              **{"optim.max_steps": 4, "optim.lr": 5e-3, "optim.freeze_embeddings": True})
        polyir.train(config, show_progress=False)
        final = BiEncoder.from_pretrained(tiny_m2m100)
        checkpoints.load(sorted((tmp_path / name / "checkpoints").glob("step-*"))[-1], final.backbone)
        with torch.no_grad():
            moved = [(a - b).pow(2).sum() for (key, a), b in zip(final.encoder.named_parameters(),
                                                                 start.parameters()) if "layers" in key]
        distance[name] = float(sum(moved)) ** 0.5
        assert torch.equal(final.encoder.get_input_embeddings().weight, start.get_input_embeddings().weight), \
            "frozen embeddings are neither trained nor pulled"
    assert distance["held"] < 0.5 * distance["free"], distance
    steps = [e for e in log_of(tmp_path / "held") if e.get("loss") is not None]
    assert all(e["l2sp"] >= 0 for e in steps) and steps[-1]["l2sp"] > 0
    assert all("l2sp" not in e for e in log_of(tmp_path / "free"))


def test_retention_settings_are_an_axis_of_the_grid(tmp_path):
    config = CompareConfig(output_dir=tmp_path, model={"name_or_path": "m"},
                           data={"train": "t.jsonl", "dev": ["d"], "test": ["e"]},
                           grid={"sampling": [{"strategy": "xy"}], "step": [{"strategy": "full", "batch_size": 8}],
                                 "retention": [{}, {"l2sp": 0.01}]}, budget={"steps": 3})
    cells = expand(config)
    assert [c.name for c in cells] == ["xy__full-8__seed0", "xy__full-8__seed0__l2sp0.01"]
    assert [c.strategy for c in cells] == ["xy + full(8)", "xy + full(8) + l2sp(λ=0.01)"]
    assert RetentionConfig(l2sp=0.5).label == "l2sp(λ=0.5)"
    with pytest.raises(ValueError):
        RetentionConfig(l2sp=-1)


def flores_texts(data_dir, tmp_path, langs=("swh_Latn", "yor_Latn")):
    """FLORES-200 lines of languages the tiny runs never train on, as line files."""
    out = {}
    for lang in langs:
        path = tmp_path / f"{lang}.txt"
        path.write_text((data_dir / "flores-sib200" / f"{lang}.txt").read_text(encoding="utf-8"), encoding="utf-8")
        out[lang] = path
    return out


def test_distillation_is_zero_at_the_start_and_its_gradient_is_the_written_out_one(tiny_m2m100, data_dir, tmp_path):
    from polyir.config import DistillConfig
    from polyir.distributed import SINGLE
    from polyir.training.retention import Distillation, read_texts

    model = BiEncoder.from_pretrained(tiny_m2m100).train()
    config = DistillConfig(texts=flores_texts(data_dir, tmp_path), weight=0.5, batch_size=6, max_texts=20)
    distillation = Distillation(model, config, seed=0, world=SINGLE)
    assert len(distillation.ids) == 40 and model.training
    assert float(distillation.backward(1)) == pytest.approx(0.0, abs=1e-10)
    assert all(p.grad is None or float(p.grad.abs().max()) < 1e-5 for p in model.encoder.parameters())
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.02)
    model.zero_grad(set_to_none=True)
    value = distillation.backward(2)
    got = torch.cat([p.grad.flatten() for p in model.encoder.parameters() if p.grad is not None])
    # written out: the same 6 texts of step 2, the starting model's embeddings, the squared distance
    chosen = random.Random("0-distill-2").sample(range(40), 6)
    texts, langs = read_texts(config.texts, 20)
    start = BiEncoder.from_pretrained(tiny_m2m100).eval()
    teacher = start.encode([texts[i] for i in chosen], [langs[i] for i in chosen], "passage", show_progress=False)
    model.eval()
    model.zero_grad(set_to_none=True)
    student = model(**model.collate(model.tokenize([texts[i] for i in chosen], [langs[i] for i in chosen],
                                                   "passage")))
    expected_value = 0.5 * (student - teacher).pow(2).sum() / 6
    expected_value.backward()
    expected = torch.cat([p.grad.flatten() for p in model.encoder.parameters() if p.grad is not None])
    assert float(value) == pytest.approx(float(expected_value), rel=1e-5) and float(value) > 0
    assert float((got - expected).norm() / expected.norm()) <= 1e-4


def test_distillation_holds_the_untrained_languages_near_the_start(tiny_m2m100, small_xquad, data_dir, tmp_path):
    texts = flores_texts(data_dir, tmp_path)
    drift = {}
    for name, retention in (("free", {}), ("held", {"distill": {"texts": {k: str(v) for k, v in texts.items()},
                                                                 "weight": 20.0, "batch_size": 16,
                                                                 "max_texts": 40}})):
        config = write_config(tmp_path / f"{name}.yaml", tmp_path / name, tiny_m2m100, small_xquad,
                              retention=retention, **{"optim.max_steps": 4, "optim.lr": 5e-3})
        polyir.train(config, show_progress=False)
        start, final = BiEncoder.from_pretrained(tiny_m2m100), BiEncoder.from_pretrained(tiny_m2m100)
        checkpoints.load(sorted((tmp_path / name / "checkpoints").glob("step-*"))[-1], final.backbone)
        lines = [line for line in texts["swh_Latn"].read_text().splitlines()[100:140]]
        a, b = (m.eval().encode(lines, ["swh_Latn"] * len(lines), "passage", show_progress=False)
                for m in (start, final))
        drift[name] = float((a - b).pow(2).sum(dim=1).mean())
    assert drift["held"] < 0.5 * drift["free"], drift
    steps = [e for e in log_of(tmp_path / "held") if e.get("loss") is not None]
    assert steps[0]["distill"] == pytest.approx(0.0, abs=1e-8) and steps[-1]["distill"] > 0
    bad = write_config(tmp_path / "bad.yaml", tmp_path / "bad", tiny_m2m100, small_xquad,
                       retention={"distill": {"texts": {"swh_Latn": str(tmp_path / "missing.txt")}}})
    result = run("train", "--config", bad, "--quiet")
    assert result.returncode == 2 and "missing.txt" in result.stderr and not (tmp_path / "bad" / "model").exists()
    (tmp_path / "blank.txt").write_text("\n  \n")
    (tmp_path / "latin1.txt").write_bytes("Habari\nCaf\xe9\n".encode("latin-1"))
    for name, message in (("blank.txt", "no text in the file"), ("latin1.txt", "not UTF-8")):
        bad = write_config(tmp_path / "bad.yaml", tmp_path / "bad", tiny_m2m100, small_xquad,
                           retention={"distill": {"texts": {"swh_Latn": str(tmp_path / name)}}})
        result = run("train", "--config", bad, "--quiet")
        assert result.returncode == 2 and message in result.stderr and name in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "bad" / "model").exists()
    assert ":2" in result.stderr or "line 2" in result.stderr, "the bad byte's line is named"


def test_lora_trains_only_adapters_and_saves_the_merged_model(tiny_m2m100, small_xquad, tmp_path):
    """The base weights stay as they were, the adapters move; model/ is a plain model whose weights are
    base + (alpha / r)·B·A, computed here from the checkpoint's adapters, and it embeds as the adapted model."""
    config = write_config(tmp_path / "lora.yaml", tmp_path / "lora", tiny_m2m100, small_xquad,
                          retention={"lora": {"rank": 4, "alpha": 8.0}},
                          **{"optim.max_steps": 3, "optim.lr": 1e-2, "eval.every_steps": 3, "eval.at_start": False})
    polyir.train(config, show_progress=False)
    state = load_file(tmp_path / "lora" / "checkpoints" / "step-00000003" / "model.safetensors")
    start = BiEncoder.from_pretrained(tiny_m2m100).backbone.state_dict()
    bases = {k: v for k, v in state.items() if ".base_layer." in k}
    assert bases and all(torch.equal(v, start[k.replace(".base_layer", "")]) for k, v in bases.items())
    assert any(float(v.abs().max()) > 0 for k, v in state.items() if "lora_B" in k), "the adapters trained"
    unadapted = [k for k in state if "lora_" not in k and ".base_layer." not in k and k in start]
    assert all(torch.equal(state[k], start[k]) for k in unadapted)
    saved = BiEncoder.from_pretrained(tmp_path / "lora" / "model")
    assert not any("lora" in k for k in saved.backbone.state_dict())
    key = "encoder.layers.0.self_attn.q_proj"
    a, b = state[f"{key}.lora_A.default.weight"], state[f"{key}.lora_B.default.weight"]
    expected = state[f"{key}.base_layer.weight"] + (8.0 / 4) * b @ a
    assert torch.allclose(saved.backbone.state_dict()[f"{key}.weight"], expected, atol=1e-6)
    assert kept.record_of(tmp_path / "lora" / "model")["step"] == 3
    bad = write_config(tmp_path / "bad.yaml", tmp_path / "bad", tiny_m2m100, small_xquad,
                       retention={"lora": {"targets": ["no_such_layer"]}})
    result = run("train", "--config", bad, "--quiet")
    assert result.returncode == 2 and "retention.lora" in result.stderr and "no_such_layer" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "bad" / "model").exists()
