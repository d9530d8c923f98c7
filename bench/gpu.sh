#!/usr/bin/env bash
# The GPU checks in one call, for a machine with PyTorch, transformers and sentence-transformers but without
# polyir's other pure-Python needs (their wheels in .whl/, see bench/gpu.py): the CUDA-path tests, then the
# throughput benchmark. Results go to OUT_DIR (default bench/out).
#   bash bench/gpu.sh [OUT_DIR] [extra bench/gpu.py arguments]
set -euo pipefail
out=${1:-bench/out}; shift || true
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/polyir-site .whl/*.whl
  export PYTHONPATH=/tmp/polyir-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=src:$PYTHONPATH HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/card.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/cuda-tests.txt" || true
python3 bench/gpu.py --out "$out/gpu.jsonl" "$@" 2>"$out/gpu-stderr.txt" | tee "$out/gpu.md"
