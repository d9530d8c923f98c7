"""The errors users see: bad input names the file, the line and what was expected (exit code 2); a model that
makes results meaningless is named with what it did (exit code 1)."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input data, configuration or arguments."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path, self.line, self.message = path, line, message
        where = "" if path is None else f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class ModelError(RuntimeError):
    """The model, not the input, made a result meaningless (non-finite scores, a diverging loss): exit code 1
    with this message, without a traceback, since the user's files are fine and polyir did what it should."""
