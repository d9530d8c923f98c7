"""File helpers shared by every reader and writer: UTF-8 text read with line numbers (a bad byte is an error that
names its line; a leading BOM and CRLF line ends are accepted), line-numbered JSONL input, and all-or-nothing
output."""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from polyir.errors import InputError

log = logging.getLogger(__name__)

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: temporary files get the permissions a plain open() would give


BOM = "\ufeff"


def cache_dir() -> Path:
    """Where polyir keeps what it downloads and converts ($POLYIR_CACHE, else ~/.cache/polyir)."""
    return Path(os.environ.get("POLYIR_CACHE", Path.home() / ".cache" / "polyir"))


def _decoded(raw: bytes, path: Path, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"byte {error.start + 1} of the line is not UTF-8 ({raw[error.start:error.start + 1]!r}); "
                         "expected UTF-8 text", path, number) from None


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text without its line end) of a UTF-8 text file (gzip-compressed if named *.gz), streamed."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found" if not path.exists() else "not a file", path)
    number = 0
    try:
        with (gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")) as handle:
            for number, raw in enumerate(handle, start=1):
                text = _decoded(raw, path, number).rstrip("\n").removesuffix("\r")
                yield number, text.removeprefix(BOM) if number == 1 else text
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise InputError(f"damaged gzip data after line {number} ({error}); expected a whole .gz file", path) from None


def read_text(path: str | Path) -> str:
    """A whole UTF-8 text file (a leading BOM dropped); a bad byte is an error naming its line."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found" if not path.exists() else "not a file", path)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as error:
        number = raw.count(b"\n", 0, error.start) + 1
        raise InputError(f"bytes that are not UTF-8 ({raw[error.start:error.start + 1]!r}); expected UTF-8 text",
                         path, number) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"duplicate key {', '.join(map(repr, repeated))}")
    return dict(pairs)


def read_jsonl(path: str | Path, torn_tail: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for every non-blank line; a file with no object is an error. With
    `torn_tail`, a malformed last line (a write that a kill interrupted) is dropped with a warning."""
    path = Path(path)
    empty, torn = True, None
    for number, line in text_lines(path):
        if not line.strip():
            continue
        if torn is not None:
            raise torn
        try:
            record = _json_object(line, path, number)
        except InputError as error:
            if not torn_tail:
                raise
            torn = error
            continue
        empty = False
        yield number, record
    if torn is not None:
        log.warning("%s: its last line was torn (a run died while writing it); left out", path)
    if empty:
        raise InputError("empty file; expected one JSON object per line", path)


def read_json(path: str | Path, expected: str, kind: type = dict) -> Any:
    """A JSON file's value, or an InputError naming the file and `expected` when it is malformed, holds a key
    twice, or is not a `kind` (a file torn by a kill, or edited by hand)."""
    path = Path(path)
    try:
        value = json.loads(read_text(path), object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON ({error.msg}, column {error.colno}); expected {expected}", path,
                         error.lineno) from None
    except ValueError as error:
        raise InputError(f"{error}; expected {expected}", path) from None
    if not isinstance(value, kind):
        raise InputError(f"a JSON {type(value).__name__}; expected {expected}", path)
    return value


def _json_object(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON ({error.msg}, column {error.colno}); expected one JSON object per "
                         "line", path, number) from None
    except ValueError as error:
        raise InputError(f"{error}; expected each key once", path, number) from None
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, got {type(record).__name__}", path, number)
    return record


def require(record: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path, line: int) -> Any:
    """Return record[key], or fail naming the field and the type expected."""
    if key not in record:
        raise InputError(f"missing field '{key}'", path, line)
    value = record[key]
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise InputError(f"field '{key}' must be {names}, got {type(value).__name__}", path, line)
    return value


def cut_torn_tail(handle: BinaryIO) -> bool:
    """Cut a last line that has no line end (a write interrupted by a kill), so that the next append starts a
    fresh line; whether there was one. `handle`: the file opened for reading and writing, locked."""
    end = handle.seek(0, os.SEEK_END)
    if end == 0 or (handle.seek(end - 1), handle.read(1))[1] == b"\n":
        return False
    start = end
    while start > 0:
        block = max(0, start - (1 << 16))
        handle.seek(block)
        found = handle.read(start - block).rfind(b"\n")
        if found >= 0:
            handle.truncate(block + found + 1)
            return True
        start = block
    handle.truncate(0)
    return True


def append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Append records as whole lines in one write, flushed to disk before returning, under an exclusive lock;
    a torn last line is cut first (with a warning), so that a new row never glues onto half an old one."""
    data = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if cut_torn_tail(handle):
            log.warning("%s: its last line was torn (a run died while writing it); dropped", path)
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_jsonl(path: Path, records: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


@contextmanager
def atomic_dir(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory under a temporary name beside `target`, then rename it into place.

    On any error the temporary directory is removed, so a reader never sees half an output."""
    target = Path(target)
    if target.exists() and not overwrite and (not target.is_dir() or any(target.iterdir())):
        raise InputError("output exists and is not empty; pass --overwrite to replace it", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o777 & ~_UMASK)
    try:
        yield staging
        if target.exists():
            trash = staging.with_name(staging.name + ".old")
            os.replace(target, trash)
            os.replace(staging, target)
            shutil.rmtree(trash)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextmanager
def atomic_file(path: str | Path) -> Iterator[TextIO]:
    """Write a text file under a temporary name, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(temporary, 0o666 & ~_UMASK)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            yield out
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def replace_together(folder: str | Path, name: str = ".replacing") -> Iterator[Path]:
    """Files and folders written into the yielded staging folder replace their namesakes in `folder` as one
    change (report.md, results.json and plots/ of one comparison). The staging folder is committed by one rename
    into a journal, whose entries then move into place; a kill before the commit leaves the old state, a kill
    after it leaves a journal that the next call finishes first (so a rerun repairs, never mixes)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    journal, staging = folder / name, folder / f"{name}.new"
    finish_replacing(folder, name)
    shutil.rmtree(staging, ignore_errors=True)  # a write that was never committed
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.replace(staging, journal)
    finish_replacing(folder, name)


def finish_replacing(folder: Path, name: str = ".replacing") -> None:
    """Finish a replace_together that a kill interrupted after its commit: move every entry of the journal into
    place (each step can be repeated after another kill)."""
    journal = folder / name
    if not journal.is_dir():
        return
    for entry in sorted(journal.iterdir()):
        target = folder / entry.name
        if entry.is_dir() and target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    journal.rmdir()


def write_manifest(folder: Path, name: str, **about: Any) -> None:
    """Record every file under `folder` (relative path -> SHA-256) in `folder/name`, with `about` beside them."""
    files = {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name != name}
    (folder / name).write_text(json.dumps({**about, "files": files}, indent=1))


def manifest_problem(folder: Path, name: str) -> str | None:
    """Why `folder` no longer holds exactly the files its manifest lists (one missing, changed or added, or the
    manifest unreadable), or None."""
    try:
        listed = json.loads((folder / name).read_text())["files"]
        for path, digest in listed.items():
            if not (folder / path).is_file():
                return f"{path} is missing"
            if sha256(folder / path) != digest:
                return f"{path} has changed (SHA-256 expected {digest})"
        present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != name}
        added = sorted(present - set(listed))
        return f"{added[0]} was added" if added else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"its manifest {name} is missing or unreadable"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
