"""`polyir train`: fine-tune one bi-encoder from a YAML configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from polyir.cli.console import console, quiet_libraries

EXAMPLE = "Example: polyir train --config configs/train-m2m100-hybrid.yaml"


def train(
    config: Annotated[Path, typer.Option(help="Training configuration (YAML; `polyir config train` prints one).")],
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest complete checkpoint.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Fine-tune a bi-encoder: output_dir/ gets log.jsonl, tensorboard/, checkpoints/ and model/ (best on dev)."""
    from polyir.config import TrainConfig
    from polyir.training.trainer import train as run_training

    quiet_libraries(quiet)
    model = run_training(TrainConfig.load(config), resume=resume, show_progress=not quiet)
    console.print(f"model: {model}")
