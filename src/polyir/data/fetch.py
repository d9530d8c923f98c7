"""Downloads that resume, verify and never leave half a file in place.

A file is fetched into `<name>.part` beside its target (continued with an HTTP Range request when a part is
there and the server proves the file unchanged), checked against its pinned SHA-256, then renamed. Files published
without a pinned checksum get theirs recorded in the folder's `checksums.json` on first download and checked on
every later use and download; a record is never rewritten. $POLYIR_MIRROR (a base URL, e.g. file:///srv/mirror, or
a folder) serves every URL from `<mirror>/<host>/<path>` instead: offline copies, tests."""

from __future__ import annotations

import json
import logging
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from polyir.data.registry import Remote
from polyir.errors import InputError
from polyir.files import atomic_file, read_json
from polyir.provenance import checksum

CHECKSUMS = "checksums.json"
log = logging.getLogger(__name__)


class Missing(InputError):
    """Files of a task that are neither in the folder given nor downloadable; the message lists them."""


class Unreachable(Missing):
    """A download that could not reach its source (offline), as opposed to one that reached it and failed."""


def mirrored(url: str) -> str:
    """`url` as served by $POLYIR_MIRROR: a base URL (file:///srv/mirror, http://...) or a plain folder."""
    mirror = os.environ.get("POLYIR_MIRROR")
    if not mirror:
        return url
    if "://" not in mirror:
        mirror = Path(mirror).resolve().as_uri()
    parts = urllib.parse.urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}"


def download(url: str, target: Path, expected: str | None = None, whose: str = "") -> str:
    """Fetch `url` into `target` and return the file's SHA-256. A `.part` left by an interrupted run is resumed
    only when the server proves the file unchanged (`If-Range` with the validator of the first response, answered
    206); otherwise the whole file is fetched again, so an old prefix never meets a new tail. `whose`: where
    `expected` comes from, for the message."""
    source = mirrored(url)
    part = target.with_name(target.name + ".part")
    meta = target.with_name(target.name + ".part.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    validator = _validator(meta, source) if part.is_file() else None
    offset = part.stat().st_size if validator else 0
    headers = {"Range": f"bytes={offset}-", "If-Range": validator} if validator else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(source, headers=headers), timeout=60) as response:
            resumed = bool(validator) and getattr(response, "status", 200) == 206
            if not resumed:
                found = response.headers.get("ETag") or response.headers.get("Last-Modified")
                meta.write_text(json.dumps({"url": source, "validator": found}))
            with part.open("ab" if resumed else "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
    except urllib.error.HTTPError as error:
        if error.code == 416 and validator:  # not proof that the part is whole: fetch the file afresh
            part.unlink()
            return download(url, target, expected, whose)
        raise InputError(f"cannot download {source}: the server answered {error.code} {error.reason}") from None
    except OSError as error:
        raise Unreachable(f"cannot download {source} ({getattr(error, 'reason', error)})") from None
    actual = checksum(part)
    meta.unlink(missing_ok=True)
    if expected is not None and actual != expected:
        part.unlink()
        raise InputError(f"checksum mismatch for {source}: expected SHA-256 {expected}{whose}, got {actual}; the "
                         "file was removed (run again to download it afresh)")
    os.replace(part, target)
    return actual


def _validator(meta: Path, source: str) -> str | None:
    """The ETag (or Last-Modified) the first response of an interrupted download gave, for the same source."""
    try:
        found = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return found.get("validator") if isinstance(found, dict) and found.get("url") == source else None


def _recorded(folder: Path) -> dict[str, str]:
    """The checksums recorded at first download. A damaged record is an error, never silently made anew: that
    would trust whatever the publisher serves now."""
    path = folder / CHECKSUMS
    if not path.is_file():
        return {}
    expected = ("{file: SHA-256} as recorded at first download (remove the file, or the folder, to download and "
                "record them again)")
    recorded = read_json(path, expected)
    if not all(isinstance(value, str) and len(value) == 64 for value in recorded.values()):
        raise InputError(f"a value is not a SHA-256; expected {expected}", path)
    return recorded


def _verify(folder: Path, files: list[Remote], recorded: dict[str, str]) -> None:
    for remote in files:
        expected = remote.sha256 or recorded.get(remote.path)
        if expected is None:
            continue
        actual = checksum(folder / remote.path)
        if actual != expected:
            how = "pinned in polyir's registry" if remote.sha256 else f"recorded at first download in {CHECKSUMS}"
            raise InputError(f"checksum mismatch: expected SHA-256 {expected} ({how}), got {actual}; expected the "
                             f"publisher's file{f' from {remote.url}' if remote.url else ''}", folder / remote.path)


def _listing(folder: Path, files: list[Remote]) -> str:
    return "; ".join(f"{folder / r.path}" + (f" (from {r.url})" if r.url else " (not downloadable: the publisher "
                                                                         "offers no file)") for r in files)


def in_folder(folder: Path, files: list[Remote]) -> Path:
    """`folder` holding every one of `files` (pinned checksums checked), or Missing naming those it lacks."""
    missing = [r for r in files if not (folder / r.path).is_file()]
    if missing:
        raise Missing(f"{len(missing)} file(s) missing: {_listing(folder, missing)}")
    _verify(folder, files, {})
    return folder


def in_cache(folder: Path, files: list[Remote], show: bool = True) -> Path:
    """`folder` in the cache holding `files`, downloading those it lacks; Unreachable (listing every file still
    missing) when offline."""
    recorded = _recorded(folder)
    missing = [r for r in files if not (folder / r.path).is_file()]
    for done, remote in enumerate(missing):
        if remote.url is None:
            raise Missing(f"{remote.path} cannot be downloaded (the publisher offers no file); pass --data-dir "
                          f"with a folder holding {folder.name}/{remote.path}")
        if show:
            log.info("downloading %s (%d of %d)", remote.url, done + 1, len(missing))
        try:  # a checksum recorded at first download holds for every later download too
            actual = download(remote.url, folder / remote.path, remote.sha256 or recorded.get(remote.path),
                              "" if remote.sha256 or remote.path not in recorded else
                              f" (recorded at first download in {folder / CHECKSUMS}: the publisher's file has "
                              "changed since; remove that record to accept the new file)")
        except Unreachable as error:
            still = ", ".join(r.path for r in missing[done:])
            raise Unreachable(f"{error}; still missing here: {still}. Offline, pass --data-dir D holding every "
                              f"one of the task's {len(files)} file(s) in D/ (a folder replaces the cache, not "
                              f"only the missing files): {_listing(Path(folder.name), files)}") from None
        if remote.sha256 is None and remote.path not in recorded:
            recorded[remote.path] = actual
            with atomic_file(folder / CHECKSUMS) as out:
                json.dump(recorded, out, indent=1, sort_keys=True)
    _verify(folder, files, recorded)
    return folder
