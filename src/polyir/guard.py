"""Outputs never destroy inputs, and two processes never share an output: the check of an output path against
the inputs and the working directory, and an exclusive lock on an output folder for the life of a run (an
advisory `flock`, which the operating system releases when the process dies, so no stale lock survives it)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from polyir.errors import InputError
from polyir.files import cache_dir

LOCK = ".polyir.lock"


def check_output(out: Path, inputs: Iterable[Path] = ()) -> None:
    """Refuse an output that is a file, the working directory, or that contains or lies inside an input or
    polyir's cache (converted tasks and models): writing it (with --overwrite, say) would delete what runs read."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("output exists and is a file; expected a folder path", out)
    if out.resolve() == Path.cwd().resolve():
        raise InputError("output is the current directory; expected a folder of its own", out)
    _apart(out, inputs)


def check_output_file(path: Path, inputs: Iterable[Path] = ()) -> None:
    """Refuse a file output (a results file) that is a folder, or that lies inside an input or polyir's cache."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder; expected the path of a file", path)
    _apart(path, inputs)


def _apart(out: Path, inputs: Iterable[Path]) -> None:
    resolved = out.resolve()
    named = [(Path(source), f"input {source}") for source in inputs]
    for source, what in [*named, (cache_dir(), f"polyir's cache {cache_dir()} (POLYIR_CACHE)")]:
        source_path = source.resolve()
        if resolved == source_path or resolved in source_path.parents or source_path in resolved.parents:
            raise InputError(f"output and {what} overlap (one holds the other); expected separate paths", out)


@contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold the lock of `folder` (created if need be) while the block runs; another holder is an error naming its
    process id."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 32, 0).decode(errors="replace").strip() or "unknown"
            raise InputError(f"another polyir process (pid {holder}) is writing this output folder; wait for it, "
                             "or choose another output", folder) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(handle)  # releases the lock
