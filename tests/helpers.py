"""Run the real `polyir` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def polyir(*args: str, cwd=None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`env`: variables set for this run only, on top of the test process's."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200",
           **{key: str(value) for key, value in (env or {}).items()}}
    return subprocess.run([sys.executable, "-m", "polyir", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=900)
