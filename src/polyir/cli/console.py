"""What every command shares: the terminal (stderr), the library's log records shown there, and the values every
command parses alike (devices, language maps)."""

from __future__ import annotations

import logging
import sys

from rich.console import Console

from polyir.errors import InputError

console = Console(stderr=True)


class _Messages(logging.Formatter):
    """polyir's log records as the CLI shows them: the message, with `warning:` / `error:` before it."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


def show_logs() -> None:
    """The library logs through `logging` (polyir.*); the command line shows its INFO and above on stderr."""
    logger = logging.getLogger("polyir")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Messages("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def quiet_libraries(quiet: bool) -> None:
    if quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def parse_lang_map(pairs: list[str]) -> dict[str, str | None]:
    """`swh_Latn=sw` pairs; an empty right side means no language token."""
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source:
            raise InputError(f"--lang-map expects CODE=MODEL_CODE (or CODE= for no language token), got '{pair}'")
        mapping[source] = target or None
    return mapping


def resolve_device(device: str) -> str:
    """`auto` is CUDA when PyTorch sees it, else the CPU; a CUDA device PyTorch cannot see is the user's error."""
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}, but PyTorch sees no CUDA device here; expected cpu or auto")
    return device
