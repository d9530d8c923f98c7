#!/usr/bin/env bash
# The GPU checks in one call, for a machine with PyTorch, transformers and sentence-transformers but without
# polyir's other pure-Python needs (their wheels in .whl/, see bench/gpu.py): the CUDA-path tests, then the
# throughput benchmark, each stopped at its time limit (tests 180 s, the benchmark BENCH_SECONDS, default 360: all
# inside one 600-second device call), so that the call returns what it measured; the tables are made from the JSON
# lines written so far. Results go to OUT_DIR (default bench/out).
#   bash bench/gpu.sh [OUT_DIR] [extra bench/gpu.py arguments]
set -uo pipefail
out=${1:-bench/out}; shift || true
mkdir -p "$out" && rm -f "$out/gpu.jsonl"  # --out appends: one run per report
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/polyir-site .whl/*.whl || exit
  export PYTHONPATH=/tmp/polyir-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=src:${PYTHONPATH:-} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/card.txt"
timeout 180 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/cuda-tests.txt"
timeout "${BENCH_SECONDS:-360}" python3 bench/gpu.py --out "$out/gpu.jsonl" "$@" >"$out/gpu-log.txt" \
  2>"$out/gpu-stderr.txt" || echo "bench/gpu.py stopped with exit code $? (124: time limit); tables of what it measured:"
tail -n 5 "$out/gpu-stderr.txt"
python3 bench/gpu.py --report "$out/gpu.jsonl" | tee "$out/gpu.md"
