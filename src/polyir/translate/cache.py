"""The translation cache: a folder of append-only JSON-lines files, one entry per translated piece, keyed by the
hash of everything that determines the translation (text, source and target language, model and revision,
generation settings). A killed run loses at most the batch it was writing (a torn last line is cut off when the
file is next opened), a repeated text is translated once, and a new language translates only what is new.

`cache.json` names the model the folder belongs to; pointing a run of another model at it is an error. Every entry
carries the SHA-256 of its key and translation, checked when the cache is read: an entry changed since it was
written is left out with a warning (and translated again), never served."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
from pathlib import Path

from polyir.errors import InputError
from polyir.files import append_jsonl, atomic_file, cut_torn_tail, read_json, text_lines

log = logging.getLogger(__name__)

HEADER = "cache.json"
FORMAT = 2  # 2: every entry carries its checksum


def checksum(entry_key: str, translation: str) -> str:
    return hashlib.sha256(json.dumps([entry_key, translation], ensure_ascii=False).encode()).hexdigest()


def key(text: str, source: str, target: str, model: str, revision: str, settings: dict) -> str:
    payload = json.dumps([text, source, target, model, revision, settings], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class TranslationCache:
    def __init__(self, folder: Path, model: str, revision: str):
        self.folder = Path(folder)
        self.entries: dict[str, str] = {}
        header = {"format": FORMAT, "model": model, "revision": revision}
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError("the translation cache must be a folder", self.folder)
        path = self.folder / HEADER
        if path.is_file():
            found = read_json(path, "the cache's header ({\"format\", \"model\", \"revision\"})")
            if found == {**header, "format": 1}:
                log.warning("%s: written by polyir 0.1, whose entries carry no checksum; they are translated again",
                            self.folder)
                for old in self.folder.glob("entries-*.jsonl"):
                    old.unlink()
                found = header
                with atomic_file(path) as out:
                    json.dump(header, out)
            if found != header:
                raise InputError(f"this cache was written by {found.get('model')} @ {found.get('revision')} (format "
                                 f"{found.get('format')}), not {model} @ {revision}; expected a cache of the same "
                                 "model: pass another --cache folder", path)
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_file(path) as out:
                json.dump(header, out)
        self._read()

    def _read(self) -> None:
        for path in sorted(self.folder.glob("entries-*.jsonl")):
            with path.open("r+b") as handle:  # a batch a killed run was writing: cut, translated again
                fcntl.flock(handle, fcntl.LOCK_EX)
                cut_torn_tail(handle)
            changed = []
            for line, row in text_lines(path):
                try:
                    entry = json.loads(row)
                    entry_key, translation = entry["key"], entry["translation"]
                    if entry.get("sha256") != checksum(entry_key, translation):
                        changed.append(line)
                        continue
                    self.entries[entry_key] = translation
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise InputError("damaged cache entry; expected {\"key\": ..., \"translation\": ..., \"sha256\": "
                                     "...} (remove the file to translate its entries again)", path, line) from None
            if changed:
                shown = ", ".join(map(str, changed[:5])) + (", ..." if len(changed) > 5 else "")
                log.warning("%s: %d entries (line %s) do not match their checksum; left out, they are translated "
                            "again", path, len(changed), shown)

    def __contains__(self, entry_key: str) -> bool:
        return entry_key in self.entries

    def __getitem__(self, entry_key: str) -> str:
        return self.entries[entry_key]

    def append(self, rows: list[dict], writer: int = 0) -> None:
        """Add entries (dicts with `key` and `translation`; their checksum is added) in one write, flushed to disk
        before returning."""
        rows = [{**row, "sha256": checksum(row["key"], row["translation"])} for row in rows]
        append_jsonl(self.folder / f"entries-{writer}.jsonl", rows)
        for row in rows:
            self.entries[row["key"]] = row["translation"]

    def reload(self) -> None:
        self._read()
