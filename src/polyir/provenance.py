"""Fingerprints of results: the settings that can change a result, the checksums of its inputs and polyir's
version, stored beside the result (fingerprint.json) so that nothing is reused unless the same settings and data
produced it. Settings that cannot change a result (paths, logging, encoding batch size, checkpoint cadence) are
left out by the caller."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from polyir import __version__
from polyir.errors import InputError
from polyir.files import atomic_file, sha256

FILE = "fingerprint.json"


def flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optim": {"lr": 1e-5}} -> {"optim.lr": 1e-5}; lists and values stay as they are."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@functools.lru_cache(maxsize=4096)
def _file_checksum(path: Path, size: int, modified_ns: int) -> str:
    """A file's SHA-256, read once per process for a given size and modification time (every cell of a grid
    fingerprints the same model and data)."""
    return sha256(path)


def checksum(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (names and contents, in name order); 'missing' if absent."""
    path = Path(path).resolve()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()
                                                  and not p.name.startswith(".")) if path.is_dir() else None
    if files is None:
        return "missing"
    sums = [_file_checksum(file, file.stat().st_size, file.stat().st_mtime_ns) for file in files]
    if path.is_file():
        return sums[0]
    digest = hashlib.sha256()
    for file, value in zip(files, sums):
        digest.update(f"{file.relative_to(path).as_posix()}\0{value}\0".encode())
    return digest.hexdigest()


def fingerprint(settings: dict[str, Any], inputs: dict[str, Path]) -> dict[str, Any]:
    """What produced a result: `settings` (flattened, JSON values) and `inputs` (role -> file or folder) by
    checksum, so that moving the data elsewhere changes nothing while editing it does."""
    values = json.loads(json.dumps(settings, default=str))
    return {"polyir": __version__, "settings": flatten(values),
            "inputs": {role: checksum(path) for role, path in sorted(inputs.items())}}


def differences(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """key -> (old value, new value) for every setting, input checksum and version that differs."""
    changed: dict[str, tuple[Any, Any]] = {}
    if old.get("polyir") != new.get("polyir"):
        changed["polyir version"] = (old.get("polyir"), new.get("polyir"))
    for part in ("settings", "inputs"):
        before, after = old.get(part, {}), new.get(part, {})
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                label = key if part == "settings" else f"input {key} (checksum)"
                changed[label] = (before.get(key, "(absent)"), after.get(key, "(absent)"))
    return changed


def describe(changed: dict[str, tuple[Any, Any]]) -> str:
    return "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in changed.items())


def read(folder: Path) -> dict[str, Any] | None:
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}  # unreadable: differs from any fingerprint
    return value if isinstance(value, dict) else {}


def write(folder: Path, value: dict[str, Any]) -> None:
    with atomic_file(Path(folder) / FILE) as out:
        json.dump(value, out, indent=1)


def reusable(folder: Path, expected: dict[str, Any], what: str, redo: bool) -> bool:
    """Whether `folder` holds a result of the `expected` fingerprint. A folder of another fingerprint (or of none)
    is an error naming what changed, unless `redo`: then it is deleted, to be made again. An absent folder is
    simply not reusable."""
    folder = Path(folder)
    if not folder.exists():
        return False
    found = read(folder)
    changed = differences(found, expected) if found is not None else {"fingerprint": ("(none)", "(this run's)")}
    if not changed:
        return True
    if not redo:
        raise InputError(f"{what} was produced by other settings or data ({describe(changed)}); pass --redo to "
                         "make it again with these, or choose another output_dir", folder)
    shutil.rmtree(folder)
    return False
