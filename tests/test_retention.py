"""Retention methods on a tiny real M2M-100 and XQuAD-R text: L2-SP's gradient is 2λ(θ − θ₀) and keeps a run near
its start; retention settings are an axis of the comparison grid."""

from __future__ import annotations

import pytest
import torch

import polyir
from polyir.comparison.grid import expand
from polyir.config import CompareConfig, RetentionConfig
from polyir.models.biencoder import BiEncoder
from polyir.training import checkpoints
from polyir.training.retention import L2SP
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
        moved = [(a - b).pow(2).sum() for (key, a), b in zip(final.encoder.named_parameters(), start.parameters())
                 if "layers" in key]
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
