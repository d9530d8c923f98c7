"""The kept model, output_dir/model/: changed only together with the checkpoint that records it, so that a kill
at any moment leaves model/ the model that the newest checkpoint (and so the log a resume keeps) names.

A new best model is first written whole to `.model-pending/`, its record (`training.json`: step, score, metric)
last, which marks it complete. Only after the checkpoint holding that record is written does it replace model/,
by two renames; `repair`, called on resume, finishes or undoes whatever a kill interrupted."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from polyir.files import atomic_file

log = logging.getLogger(__name__)

MODEL, PENDING, OLD, RECORD = "model", ".model-pending", ".model-old", "training.json"


def stage(out: Path, model, record: dict) -> None:
    """Write `model` with its record as the pending kept model (replacing an earlier pending one, which no
    checkpoint records yet)."""
    model.save(out / PENDING, overwrite=True)
    with atomic_file(out / PENDING / RECORD) as handle:
        handle.write(json.dumps(record, indent=1))


def record_of(folder: Path) -> dict | None:
    """The record of a kept model folder, or None when it has none (a pending write a kill interrupted, or a
    model/ written by polyir before 0.2)."""
    try:
        return json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None


def promote(out: Path) -> None:
    """Make a complete pending model model/: the old one moves aside, the pending one takes its place, the old
    one is deleted. Called once the checkpoint recording the pending model is on disk."""
    pending, model, old = out / PENDING, out / MODEL, out / OLD
    if record_of(pending) is None:
        return
    if model.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(model, old)
    os.replace(pending, model)
    shutil.rmtree(old, ignore_errors=True)


def repair(out: Path, step: int | None) -> None:
    """Leave model/ as the checkpoint the run resumes from says: the kept model of `step` (None: no checkpoint).
    A pending model of that step is promoted (a kill came after its checkpoint); any other pending one is from
    steps the run will do again, and is dropped; a model/ moved aside by an interrupted promotion comes back."""
    pending, model, old = out / PENDING, out / MODEL, out / OLD
    record = record_of(pending)
    if record is not None and step is not None and record["step"] == step:
        log.info("%s: the model of step %d was kept by its checkpoint; it becomes model/", out, step)
        promote(out)
    elif pending.exists():
        shutil.rmtree(pending)
    if old.exists():
        if model.exists():
            shutil.rmtree(old)
        else:
            os.replace(old, model)
    for staging in [*out.glob(f".{MODEL}.*"), *out.glob(f".{PENDING}.*")]:  # atomic_dir's, of a killed write
        shutil.rmtree(staging, ignore_errors=True)
    kept = record_of(model)
    if kept is not None and kept["step"] != step:
        log.warning("%s: model/ is the model of step %s, but the checkpoint the run resumes from keeps step %s "
                    "(a newer one is gone or damaged); the run makes it again", out, kept["step"], step)
