"""Weight interpolation (WiSE-FT): `polyir merge` and polyir.models.merge on tiny real models."""

from __future__ import annotations

import pytest
import torch

from polyir.errors import InputError
from polyir.models.biencoder import BiEncoder
from polyir.models.merge import interpolate
from tests.helpers import polyir


@pytest.fixture(scope="module")
def two_models(tiny_m2m100, tmp_path_factory):
    """The tiny M2M-100 and a copy whose every floating-point weight moved (a stand-in for fine-tuning)."""
    moved = BiEncoder.from_pretrained(tiny_m2m100)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in moved.backbone.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.01)
    folder = tmp_path_factory.mktemp("moved")
    moved.save(folder)
    return tiny_m2m100, folder


def state(model: BiEncoder) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.backbone.state_dict().items()}


def test_weights_zero_and_one_give_the_inputs_and_a_half_the_mean(two_models):
    first, second = two_models
    a, b = state(BiEncoder.from_pretrained(first)), state(BiEncoder.from_pretrained(second))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    for weight, expected in ((0.0, a), (1.0, b)):
        merged = state(interpolate(BiEncoder.from_pretrained(first), BiEncoder.from_pretrained(second), weight))
        assert all(torch.equal(merged[k], expected[k]) for k in a), weight
    half = state(interpolate(BiEncoder.from_pretrained(first), BiEncoder.from_pretrained(second), 0.5))
    for k in a:
        if a[k].is_floating_point():
            assert torch.allclose(half[k], (a[k] + b[k]) / 2, rtol=0, atol=1e-7), k


def test_merge_command_writes_a_model_that_loads_and_refuses_what_cannot_merge(two_models, tiny_bert, tmp_path):
    first, second = two_models
    result = polyir("merge", first, second, "--weight", "0.25", "--out", tmp_path / "merged", "--quiet")
    assert result.returncode == 0, result.stderr
    merged = state(BiEncoder.from_pretrained(tmp_path / "merged"))
    a, b = state(BiEncoder.from_pretrained(first)), state(BiEncoder.from_pretrained(second))
    name = next(k for k in a if a[k].is_floating_point() and not torch.equal(a[k], b[k]))
    assert torch.allclose(merged[name], 0.75 * a[name] + 0.25 * b[name], atol=1e-7)
    for args, message in (([first, tiny_bert, "--out", tmp_path / "x"], "not of one architecture"),
                          ([first, second, "--weight", "1.5", "--out", tmp_path / "y"], "must lie in [0, 1]"),
                          ([first, second, "--out", second, "--overwrite"], "overlap")):
        result = polyir("merge", *args, "--quiet")
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert (second / "model.safetensors").is_file()
    with pytest.raises(InputError, match="must lie in"):
        interpolate(BiEncoder.from_pretrained(first), BiEncoder.from_pretrained(second), -0.1)
