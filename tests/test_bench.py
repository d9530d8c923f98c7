"""The benchmarks run end to end (a tiny shape, on CPU): their timings are not asserted, what they report is; and
their prototypes compute what they say: bench/float8.py's FP8 linear layer, bench/packed.py's packed encoder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from float8 import Float8Linear, fused_quantise, to_float8  # noqa: E402
from packed import PackedBiEncoder  # noqa: E402


def test_gpu_bench_runs_and_polyir_pads_less_than_the_peer(tmp_path):
    out = tmp_path / "results.jsonl"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--shape", "tiny", "--device", "cpu",
                             "--batch-scale", "0.03", "--steps", "1", "--warmup", "0",
                             "--parts", "train,peer,encode,compile", "--only", "^(train|peer) ", "--out", str(out)],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    steps = [r for r in rows if r["part"] != "encode"]
    assert len(steps) == 24 and len(rows) == 53  # compiled training left out by --only
    assert {r["precision"] for r in steps} == {"bf16", "bf16-weights"}
    assert all(r["pairs_per_second"] > 0 and 0 < r["real_tokens"] <= 1 for r in steps)
    assert all(r["real_tokens"] == 1 for r in steps if r["model"] == "m2m100-packed")
    assert all(r["passages_per_second"] > 0 for r in rows if r["part"] == "encode")
    # length-sorted forward passes spend less compute on padding than the peer's padded columns
    peer = {r["batch"]: r for r in steps if r["strategy"] == "peer"}
    for r in steps:
        if r["part"] == "peer" and r["strategy"] == "gradcache" and r["memory_gib"] is None:
            assert r["real_tokens"] > peer[r["batch"]]["real_tokens"]
    for name in ("polyir gradcache (chunk", "polyir gradcache, bf16 weights (chunk"):
        ratios = [line for line in result.stdout.splitlines() if line.startswith(name)]
        assert len(ratios) == 4, ratios  # at either batch: the peer's chunk, and auto
    compiled = rows[-4:]  # last, after the training rows
    assert [r["name"] for r in compiled] == ["encode, bf16 weights, compiled"] * 2 + [
        "encode, float8 products, compiled"] * 2
    assert [(r["passage_tokens"], r["batch"]) for r in compiled] == [("128", 1024), ("64-128", 1024)] * 2
    encodes = [r for r in rows[:-4] if r["part"] == "encode"]
    assert [r["passage_tokens"] for r in encodes] == ["128", "128", "64-128", "64-128", "64-128"] * 5
    assert [r["batch"] for r in encodes] == [256, 1024, 1024, 256, 128] * 5
    assert rows[:25] == encodes  # first
    variants = ["encode", "encode, bf16 weights", "encode, bf16 weights, packed", "encode, float8 products",
                "encode, float8 products, fused quantisation"]
    assert [r["name"] for r in encodes] == [name for name in variants for _ in range(5)]
    assert all(r["tokens_per_passage"] == 128 for r in encodes[:2])
    assert all(64 <= r["tokens_per_passage"] < 128 for r in encodes[2:5])
    # a run cut short is reported from its JSON lines alone
    report = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--report", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-3000:]
    assert report.stdout.split("\n\n", 1)[1] == result.stdout.split("\n\n", 1)[1]


def test_gpu_profile_groups_a_steps_time_and_times_compiled_runs(tmp_path):
    out = tmp_path / "profile.jsonl"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_profile.py"), "--shape", "tiny", "--device",
                             "cpu", "--batch", "32", "--chunk", "16", "--steps", "1", "--parts", "kernels,compile",
                             "--out", str(out)],
                            capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    profiles = [r for r in rows if r["part"] == "kernels"]
    assert [r["name"].split(",")[0] for r in profiles] == ["gradcache step", "encode", "encode"]
    for r in profiles:  # the families hold every profiled operator, and most of the time is named
        assert sum(r["families_ms"].values()) >= sum(ms for _, ms in r["top_ms"]) > 0
        assert r["families_ms"]["matrix products"] > 0 and r["families_ms"].get("other", 0) < 0.5 * sum(
            r["families_ms"].values())
    assert "dropout" in profiles[0]["families_ms"] and "optimiser" in profiles[0]["families_ms"]
    timed = {r["name"]: r for r in rows if r["part"] == "compile"}
    assert set(timed) == {"gradcache, layer drop 0", "gradcache, layer drop 0, compiled",
                          *(f"encode, {w} weights, compiled for one shape" for w in ("bf16", "float32"))}
    assert all(r["seconds"] > 0 and r["first_seconds"] > 0 for r in timed.values())
    assert "| family | ms | share |" in result.stdout


def test_float8_linear_rounds_like_e4m3_and_scales_per_row():
    """e4m3 has 3 mantissa bits: the product's error is a few percent, far above bf16's. Per-row scales keep the
    small rows of an input whose one row is 100,000 times larger (e4m3 spans about 2e5); with one scale for the whole
    tensor they fall into e4m3's subnormal range. Compiled, the quantisation gives the same bits."""
    torch.manual_seed(0)
    linear = nn.Linear(64, 48).to(torch.bfloat16)
    x = torch.randn(32, 64, dtype=torch.bfloat16)
    x[0] *= 100_000
    exact = nn.functional.linear(x.double(), linear.weight.detach().double(), linear.bias.detach().double())

    def error(rowwise: bool, rows: slice) -> float:
        out = Float8Linear(linear, rowwise)(x).double()
        return float((out[rows] - exact[rows]).norm() / exact[rows].norm())

    layer = Float8Linear(linear)
    assert layer.weight.dtype == torch.float8_e4m3fn and layer(x[None]).shape == (1, 32, 48)
    assert 0.005 < error(True, slice(None)) < 0.08  # bf16's own error here is about 0.002
    assert error(True, slice(1, None)) < 0.08 < 0.25 < error(False, slice(1, None))  # 0.035 against 0.40
    assert torch.equal(Float8Linear(linear, quantiser=fused_quantise())(x), layer(x))  # compiled: same bits


def test_float8_encoder_keeps_the_embeddings(minilm, data_dir):
    from polyir.model import BiEncoder

    texts = (data_dir / "flores-sib200" / "eng_Latn.txt").read_text().splitlines()[:48]
    bf16 = BiEncoder.from_pretrained(minilm, dtype=torch.bfloat16)
    reference = bf16.encode(texts, ["en"] * len(texts), "passage", show_progress=False)
    linears = sum(isinstance(m, nn.Linear) for m in bf16.encoder.modules())
    assert to_float8(bf16.running_encoder) == linears == 37  # 6 layers x 6 projections, and the pooler
    assert not any(isinstance(m, nn.Linear) for m in bf16.encoder.modules())
    cosine = nn.functional.cosine_similarity(bf16.encode(texts, ["en"] * len(texts), "passage",
                                                         show_progress=False), reference)
    assert 0.97 < float(cosine.min()) and float(cosine.mean()) < 0.9999


def test_compiled_float8_encoder_is_the_eager_one(tiny_m2m100, data_dir):
    """torch.compile traces M2M-100's encoder through torch._scaled_mm whole (no graph break), and fusing the
    quantisation with the layer norms changes the embeddings by rounding only."""
    from polyir.model import BiEncoder

    texts = (data_dir / "flores-sib200" / "swh_Latn.txt").read_text().splitlines()[:16]
    model = BiEncoder.from_pretrained(tiny_m2m100, dtype=torch.bfloat16)
    ids = model.tokenize(texts, ["sw"] * len(texts), "passage")
    to_float8(model.running_encoder)
    eager = model.encode_ids(ids, 8)
    compiled = model.compile_encoder(fullgraph=True).encode_ids(ids, 8)  # fullgraph: a graph break raises
    assert float(nn.functional.cosine_similarity(compiled, eager).min()) > 0.999


def test_fp8_quality_bench_compares_every_variant(tmp_path):
    out = tmp_path / "fp8.jsonl"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "fp8_quality.py"), "--articles", "1",
                             "--out", str(out)], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["variant"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert list(rows) == ["float32", "bfloat16", "float8, per row", "float8, per tensor"]
    assert rows["float32"]["document cosine to float32"]["min"] > 0.99999
    for name in ("float8, per row", "float8, per tensor"):
        assert rows[name]["float8 linear layers"] == 37
        cosine = rows[name]["document cosine to float32"]["min"]
        assert 0.95 < cosine < rows["bfloat16"]["document cosine to float32"]["min"]
        tests = [rows[name][f"per-query MAP against {baseline}"] for baseline in ("float32", "bfloat16")]
        assert tests[0]["n"] == tests[1]["n"] > 0
    assert all(0 < rows[v]["mono map"] <= 1 for v in rows)


def test_packed_encoder_is_the_padded_one_without_padding(tiny_m2m100, data_dir):
    """Same embeddings and gradients as polyir's padded BiEncoder, for texts of different lengths and languages."""
    from polyir.model import BiEncoder

    lines = {lang: (data_dir / "flores-sib200" / f"{code}.txt").read_text().splitlines()[:6]
             for lang, code in (("de", "deu_Latn"), ("sw", "swh_Latn"))}
    texts, langs = lines["de"] + [line[:20] for line in lines["sw"]], ["de"] * 6 + ["sw"] * 6
    padded, packed = BiEncoder.from_pretrained(tiny_m2m100).eval(), PackedBiEncoder.from_pretrained(tiny_m2m100).eval()
    ids = padded.tokenize(texts, langs, "passage")
    assert len({len(row) for row in ids}) > 3
    inputs = packed.collate(ids)
    assert len(inputs["packing"].tokens) == sum(map(len, ids)) < inputs["input_ids"].numel()
    embeddings = [model(**model.collate(ids)) for model in (padded, packed)]
    assert float((embeddings[0] - embeddings[1]).abs().max()) < 1e-5
    for e in embeddings:
        (e @ e.T.detach()).sum().backward()
    gradients = [torch.cat([p.grad.flatten() for p in m.encoder.parameters() if p.grad is not None])
                 for m in (padded, packed)]
    assert len(gradients[0]) == len(gradients[1])
    assert float((gradients[0] - gradients[1]).norm() / gradients[0].norm()) < 1e-5
    # texts longer than the sinusoidal position table (512 + 2 rows here): both grow it alike
    long = [(ids[0] * 60)[:600], ids[1]]
    assert len(ids[0]) * 60 > 600
    with torch.no_grad():
        assert float((padded(**padded.collate(long)) - packed(**packed.collate(long))).abs().max()) < 1e-5


def test_gradcache_replays_the_packed_encoders_dropout(tiny_m2m100, parallel_examples):
    """GradCache through the packed encoder equals its full batch drawn pass by pass, and is wrong without replay."""
    from tests.test_steps import assert_gradcache_replays_dropout, pairs_with_negatives

    model = PackedBiEncoder.from_pretrained(tiny_m2m100).train()
    assert model.draws_random_numbers
    assert_gradcache_replays_dropout(model, pairs_with_negatives(parallel_examples))
