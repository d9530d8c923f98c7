"""The one error type users see for bad input: it names the file, the line and what was expected (exit code 2)."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input data, configuration or arguments."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path, self.line, self.message = path, line, message
        where = "" if path is None else f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
