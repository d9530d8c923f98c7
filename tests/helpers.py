"""Run the real `polyir` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def polyir(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "polyir", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=900)
