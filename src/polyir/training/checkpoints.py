"""Training checkpoints: written whole or not at all, verified by checksum, the newest good one found on resume.

A checkpoint folder holds the backbone weights (safetensors), the trainer state (optimiser, scheduler, sampler,
random states, counters) and a manifest of sizes and SHA-256 digests that tells a complete checkpoint from a
damaged one."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from polyir.files import atomic_dir, sha256

log = logging.getLogger(__name__)

WEIGHTS, STATE, MANIFEST = "model.safetensors", "trainer_state.pt", "manifest.json"


def name_of(step: int) -> str:
    return f"step-{step:08d}"


def save(folder: Path, step: int, model: torch.nn.Module, state: dict, keep: int) -> Path:
    """Write checkpoints/step-N atomically (staging folders a killed run left are removed first), then keep the
    newest `keep` intact checkpoints: older intact ones are deleted, damaged ones are left alone and never counted
    (so they never cost an intact one its place)."""
    target = folder / name_of(step)
    for stale in folder.glob(".step-*"):  # the staging folder of a write that a killed run left (one writer: the lock)
        shutil.rmtree(stale, ignore_errors=True)
    with atomic_dir(target, overwrite=True) as staging:
        save_model(model, str(staging / WEIGHTS))
        torch.save(state, staging / STATE)
        files = {name: {"size": (staging / name).stat().st_size, "sha256": sha256(staging / name)}
                 for name in (WEIGHTS, STATE)}
        (staging / MANIFEST).write_text(json.dumps({"step": step, "files": files}, indent=2))
    intact = [checkpoint for checkpoint in sorted(folder.glob("step-*"))
              if checkpoint == target or problem(checkpoint) is None]
    for old in intact[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def problem(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be trusted, or None when its files match its manifest."""
    try:
        manifest = json.loads((checkpoint / MANIFEST).read_text())
        for name, expected in manifest["files"].items():
            path = checkpoint / name
            if not path.is_file():
                return f"{name} is missing"
            if path.stat().st_size != expected["size"] or sha256(path) != expected["sha256"]:
                return f"{name} does not match its checksum"
    except (OSError, ValueError, KeyError) as error:
        return f"unreadable manifest ({error})"
    return None


def newest(folder: Path) -> Path | None:
    """The newest checkpoint whose files are intact; damaged ones are skipped with a warning."""
    for checkpoint in sorted(folder.glob("step-*"), reverse=True):
        reason = problem(checkpoint)
        if reason is None:
            return checkpoint
        log.warning("skipping damaged checkpoint %s: %s", checkpoint, reason)
    return None


def load(checkpoint: Path, model: torch.nn.Module) -> dict:
    """Load the weights into `model` and return the trainer state."""
    load_model(model, str(checkpoint / WEIGHTS))
    return torch.load(checkpoint / STATE, weights_only=False)
