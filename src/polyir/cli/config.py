"""`polyir config`: every configuration key with its type, default and meaning, from the code itself."""

from __future__ import annotations

from typing import Annotated

import typer

from polyir.errors import InputError

EXAMPLE = "Example: polyir config train > my-run.yaml"


def config(
    which: Annotated[str | None, typer.Argument(help="train or compare (default: both, two YAML documents).")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="The reference page (docs/configuration.md) "
                                                              "instead of YAML.")] = False,
) -> None:
    """Print the defaults of the training and comparison configurations as YAML, each key with its description."""
    from polyir.reference import CONFIGS, yaml_text
    from polyir.reference import markdown as reference_page

    if markdown:
        print(reference_page(), end="")
        return
    if which is not None and which not in CONFIGS:
        raise InputError(f"expected train or compare, got '{which}'")
    print("---\n".join(yaml_text(name) for name in ([which] if which else CONFIGS)), end="")
