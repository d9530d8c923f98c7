"""Named tasks as BEIR folders: the publisher's files from --data-dir or the cache (downloaded, verified),
converted once into `<cache>/tasks/<name>-<key>/<name>/`, the key a hash of the converter version, the registry
entry, the languages and the files' checksums, so a converted task is reused only for the same inputs, and only
while its files are those its manifest lists (a damaged one is converted again)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from polyir.data.beir import write_beir
from polyir.data.converters import VERSION, convert
from polyir.data.fetch import Missing, in_cache, in_folder
from polyir.data.registry import Entry, parse, remotes
from polyir.files import atomic_dir, cache_dir, manifest_problem, write_manifest
from polyir.provenance import checksum

MANIFEST = "manifest.json"  # beside the converted folder: every file, size and SHA-256, checked at every use
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NamedTask:
    spec: str  # as asked for, e.g. miracl:sw, or a user's BEIR folder
    entry: Entry | None  # None for a user's folder
    langs: list[str]
    folder: Path  # the converted BEIR folder

    @property
    def split(self) -> str:
        return self.entry.split if self.entry else "test"


def _publisher_files(entry: Entry, langs: list[str], data_dir: Path | None) -> tuple[Path, list[Path]]:
    """(the folder the entry's paths start from, the files used)."""
    files = [remote for lang in langs for remote in remotes(entry, lang)]
    if data_dir is None:
        folder = in_cache(cache_dir() / "raw" / entry.local_folder, files)
    else:
        folder = Path(data_dir) / entry.local_folder
        lines = [folder / f"{lang}.txt" for lang in langs]
        if entry.converter == "sib200" and all(path.is_file() for path in lines):  # already line-aligned
            return folder, [*lines, *([folder / "ids.txt"] if (folder / "ids.txt").is_file() else [])]
        in_folder(folder, files)
    return folder, [folder / remote.path for remote in files]


def named_tasks(spec: str, data_dir: Path | None = None) -> list[NamedTask]:
    """The BEIR folders of `spec` (NAME or NAME:LANG,...): one per language, or one for a multilingual entry;
    Missing naming every absent file when any is."""
    found, missing = available_tasks(spec, data_dir)
    if missing:
        raise Missing("; ".join(missing))
    return found


def available_tasks(spec: str, data_dir: Path | None = None) -> tuple[list[NamedTask], list[str]]:
    """(the tasks of `spec` whose files are here or downloadable, what is missing for the others)."""
    entry, langs = parse(spec)
    groups = [[lang] for lang in langs if lang != entry.pivot] if entry.per_language else [langs]
    out, missing = [], []
    for group in groups:
        try:
            root, paths = _publisher_files(entry, group, data_dir)
        except Missing as error:
            missing.append(str(error))
            continue
        key = hashlib.sha256(json.dumps({"converter": VERSION, "entry": entry.model_dump(mode="json"),
                                         "languages": group, "files": [checksum(p) for p in paths]}).encode())
        name = f"{entry.name}-{group[0]}" if entry.per_language and len(entry.languages) > 1 else entry.name
        folder = cache_dir() / "tasks" / f"{name}-{key.hexdigest()[:16]}" / name
        problem = manifest_problem(folder.parent, MANIFEST) if folder.parent.exists() else "absent"
        if problem:
            if problem != "absent":
                log.warning("%s: the converted task was damaged (%s); converting it again", folder.parent, problem)
            task = convert(entry, group, root)
            task.name = name
            with atomic_dir(folder.parent, overwrite=True) as staging:
                (staging / name).mkdir()
                write_beir(task, staging / name, entry.split)
                write_manifest(staging, MANIFEST)
        out.append(NamedTask(spec, entry, group, folder))
    return out, missing
