"""Public data sets polyir knows by name: pinned to a commit, checked by SHA-256, cached on first use.

Offline, point `data_dir` (or $POLYIR_DATA) at a folder that already holds them. Where neither a folder nor the
network is there, `locate` falls back on the excerpt bundled with polyir (data/sample/, whose README says what it
holds) and says so in the log; `is_sample` lets the caller record it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from polyir.data import fetch
from polyir.data.fetch import Unreachable
from polyir.errors import InputError
from polyir.files import cache_dir


@dataclass(frozen=True)
class Source:
    name: str
    base_url: str
    files: dict[str, str]  # file name (<language>.<extension>) -> sha256

    def needed(self, languages: list[str] | None = None) -> list[str]:
        """The files that hold `languages` (all of them for None)."""
        if languages is None:
            return list(self.files)
        by_language = {Path(name).stem: name for name in self.files}
        unknown = sorted(set(languages) - set(by_language))
        if unknown:
            raise InputError(f"{self.name} has no language {', '.join(unknown)}; it has {', '.join(by_language)}")
        return [by_language[lang] for lang in languages]


LAREQA_COMMIT = "5405d2a77e83d5ccb47623a3f9e5604c3f103193"
LAREQA_URL = f"https://raw.githubusercontent.com/google-research-datasets/lareqa/{LAREQA_COMMIT}/"
XQUAD_R = Source("xquad-r", LAREQA_URL + "xquad-r/", {
    "ar.json": "c52922d3b8ac1ae03ed5ac38647ad59870dca3dda2beefe18ecdc30729acb69d",
    "de.json": "16fb0f4bf4916154b585a20c24c66074591c9718a1affe764ff4697572328949",
    "el.json": "163fd43ee785a30eb534ae2061e9eaa766a7ee4e8ffce5e4b422480c150f64b6",
    "en.json": "7b0954f39297c27a31fef610f0883337dd2907fa8699151dc922afdd0fa12ffe",
    "es.json": "f8e836b2d91009c4363e04315f7ede363eedbbb49c67dda60de6c4aa782f58de",
    "hi.json": "ea45ba8ae4513d1533b222bebdc02a90bc319c055d3aeea68584a053d2e92872",
    "ru.json": "7f4dff853538b9a5fcc28c070b8bb983a5c5d190ac747b8e005a1ada9cab18f1",
    "th.json": "c3a041864c3a9fb0b4dd91cfdf99cf36b411b3e704c58a303c97bc6dc786cfe4",
    "tr.json": "f3e8c13002bbce154a4578f535f7533cb70f3da08840e6b62735935baec7bd94",
    "vi.json": "e35926bf5cc6fc6ecbdfca49467aabeb454f08d152d7818143a906bd31dde995",
    "zh.json": "80c2cde7b9c2fb134c303cbb52f2ba396ead9eb0014aec43993543d2ba9e93ed",
})
SOURCES = {source.name: source for source in (XQUAD_R,)}
SAMPLE = Path(str(files("polyir") / "data" / "sample"))  # an excerpt of xquad-r and flores-sib200

log = logging.getLogger(__name__)


def download(source: Source, target: Path, names: list[str] | None = None) -> Path:
    """Fetch every file of `source` (or those `names`) that `target` lacks, verified by its checksum."""
    for name in names or source.files:
        if not (target / name).is_file():
            try:
                fetch.download(source.base_url + name, target / name, source.files[name])
            except Unreachable as error:
                raise Unreachable(f"{error}; offline, pass --data-dir with a folder holding {source.name}/") from None
    return target


def locate(name: str, data_dir: str | Path | None = None, languages: list[str] | None = None) -> Path:
    """The folder of data set `name` holding `languages` (default: all of them): `data_dir/name` when given (or
    `$POLYIR_DATA/name`), else the cache (downloaded on first use), else, when the source cannot be reached, the
    bundled sample (see `is_sample`) if it holds them."""
    source = SOURCES[name]
    needed = source.needed(languages)
    data_dir = data_dir if data_dir is not None else os.environ.get("POLYIR_DATA") or None
    if data_dir is not None:
        return _holding(Path(data_dir) / name, needed)
    try:
        return download(source, cache_dir() / name, needed)
    except Unreachable as error:
        if not all((SAMPLE / name / file).is_file() for file in needed):
            raise
        log.warning("%s; using the excerpt of %s bundled with polyir instead (%s): a sample, not the benchmark",
                    error, name, SAMPLE / "README.md")
        return SAMPLE / name


def _holding(folder: Path, needed: list[str]) -> Path:
    missing = [file for file in needed if not (folder / file).is_file()]
    if missing:
        raise InputError(f"expected {folder.name}/ with {', '.join(missing)} here", folder)
    return folder


def is_sample(folder: Path) -> bool:
    """Whether `folder` is the bundled excerpt rather than the full data set."""
    return Path(folder).resolve().is_relative_to(SAMPLE.resolve())
