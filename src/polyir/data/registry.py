"""The registry of named retrieval tasks (registry.yaml): each publisher's files, pinned, and the converter of
their format. A task is asked for as NAME or NAME:LANG[,LANG...]; unknown names and languages are errors that
suggest the closest ones."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from polyir.errors import InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSpec(_Strict):
    """One publisher file per language (or one in all): `base` + `path`, `path` also its place under the task's
    local folder. No `base`: the publisher offers no download; the file must come from --data-dir."""

    base: str | None = None
    path: str
    sha256: dict[str, str] | str | None = None
    shards: dict[str, int] = Field(default_factory=dict)  # files per language where there are several ({shard})


class Language(_Strict):
    name: str | None = None
    corpus_name: str | None = None  # the publisher's name of the language in its paths
    queries: int | None = None
    documents: int | None = None


class Entry(_Strict):
    name: str = ""
    title: str
    converter: Literal["trec", "tatoeba", "beir", "lareqa", "sib200"]
    split: str = "test"
    license: str
    citation: str
    homepage: str
    languages: dict[str, Language]
    files: dict[str, FileSpec]
    fields: dict[str, str] = Field(default_factory=dict)  # corpus JSON field names (trec): id, title, text
    per_language: bool = True  # one task per language (else one multilingual task of the chosen languages)
    query_language: str | None = None  # queries in this language whatever the corpus (CIRAL, AfriCLIRMatrix)
    pivot: str | None = None  # the corpus language of a bitext task; always included
    folder: str | None = None  # local folder name when it is not `name`

    @property
    def local_folder(self) -> str:
        return self.folder or self.name


@dataclass(frozen=True)
class Remote:
    """A file of a task: its place under the local folder, where to download it and its pinned SHA-256."""

    role: str
    lang: str
    path: str
    url: str | None
    sha256: str | None


@cache
def registry() -> dict[str, Entry]:
    raw = yaml.safe_load((files("polyir") / "data" / "registry.yaml").read_text(encoding="utf-8"))
    return {name: Entry(name=name, **fields) for name, fields in raw["tasks"].items()}


def _closest(word: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(near)}?" if near else ""


def lookup(name: str) -> Entry:
    tasks = registry()
    if name not in tasks:
        raise InputError(f"no task '{name}' in the registry{_closest(name, list(tasks))} "
                         f"(`polyir data list` shows them all)")
    return tasks[name]


def parse(spec: str) -> tuple[Entry, list[str]]:
    """'miracl:sw,yo' -> (entry, ['sw', 'yo']); 'miracl' -> every language of the entry."""
    name, _, langs = spec.partition(":")
    entry = lookup(name.strip())
    chosen = [code.strip() for code in langs.split(",") if code.strip()] or list(entry.languages)
    for code in chosen:
        if code not in entry.languages:
            raise InputError(f"{entry.name} has no language '{code}'{_closest(code, list(entry.languages))}; "
                             f"it has {', '.join(entry.languages)}")
    if entry.pivot and entry.pivot not in chosen:
        chosen.append(entry.pivot)
    return entry, list(dict.fromkeys(chosen))


def remotes(entry: Entry, lang: str) -> list[Remote]:
    """The files that hold `lang` of `entry`."""
    info = entry.languages[lang]
    out = []
    for role, spec in entry.files.items():
        for shard in range(spec.shards.get(lang, 1)):
            path = spec.path.format(lang=lang, shard=shard, corpus_name=info.corpus_name or lang)
            expected = spec.sha256.get(lang) if isinstance(spec.sha256, dict) else spec.sha256
            out.append(Remote(role, lang, path, spec.base + path if spec.base else None, expected))
    return out
