"""One translation job as both `translate beir` and `translate train` run it: the texts of some records, from one
language into several, through the engine and the cache, checked for quality (flagged texts listed, the chosen
flags dropped), and described in a manifest (translation.json) beside the output."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from polyir import __version__
from polyir.distributed import SINGLE, World
from polyir.errors import InputError
from polyir.files import cache_dir
from polyir.languages import base_language
from polyir.provenance import checksum
from polyir.translate.backends import Generation, Translator, load_translator
from polyir.translate.cache import TranslationCache
from polyir.translate.engine import Request, Stats, translate
from polyir.translate.quality import FLAGS, Checked, LanguageIdentifier, check, round_trip_chrf, summary

MANIFEST = "translation.json"


@dataclass(frozen=True)
class Unit:
    """A text of a record: `where` (the file), `id` (the record), `field` (title, text, query, negatives[0] ...)."""

    where: str
    id: str
    field: str
    text: str


@dataclass
class JobSettings:
    model: str
    source: str
    targets: list[str]
    generation: Generation = field(default_factory=Generation)
    cache: Path | None = None  # default: <polyir cache>/translations/<model>-<revision>
    device: str = "cpu"
    batch_size: int = 32
    sort_by_length: bool = True
    drop: list[str] = field(default_factory=list)
    length_tolerance: float = 3.0
    round_trip: bool = False
    min_chrf: float | None = None
    language_id: str = "accurate"  # accurate | fast | off
    lang_map: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """One model, one identity: a local folder by its resolved path (`m2m/`, `./m2m` and `m2m` are one)."""
        self.model = str(Path(self.model).resolve()) if Path(self.model).exists() else self.model.rstrip("/")

    def validate(self) -> None:
        unknown = [flag for flag in self.drop if flag not in FLAGS]
        if unknown:
            raise InputError(f"--drop {','.join(unknown)}: expected flags among {', '.join(FLAGS)}")
        if "round-trip" in self.drop and not self.round_trip:
            raise InputError("--drop round-trip needs --round-trip (without it no text is flagged round-trip)")
        if not self.targets:
            raise InputError("--to is empty; expected at least one language")
        named: dict[str, str] = {base_language(self.source): f"--from {self.source}"}
        for code in self.targets:  # one language, one code: sw, swh_Latn and swa are one language
            if base_language(code) in named:
                raise InputError(f"--to {code} is the language of {named[base_language(code)]}; expected each "
                                 "language once, and none the same as --from")
            named[base_language(code)] = f"--to {code}"
        if self.language_id not in ("accurate", "fast", "off"):
            raise InputError(f"--language-id must be accurate, fast or off, got '{self.language_id}'")
        if self.min_chrf is not None and not self.round_trip:
            raise InputError("--min-chrf needs --round-trip")


@dataclass
class Outcome:
    translations: dict[tuple[str, str, str, str], str]  # (where, id, field, lang) -> text; dropped ones absent
    manifest: dict
    stats: Stats


def default_cache(model: str, revision: str) -> Path:
    slug = "".join(c if c.isalnum() or c in "-._" else "_" for c in model.strip("/"))[-60:]
    return cache_dir() / "translations" / f"{slug}-{revision.replace(':', '-')[:24]}"


def open_translator(settings: JobSettings) -> Translator:
    """The model, once the settings and every language are known to be right (before any data is read)."""
    settings.validate()
    translator = load_translator(settings.model, settings.generation, settings.device, cache_dir(),
                                 settings.lang_map)
    translator.code(settings.source, "--from")
    for target in settings.targets:
        translator.code(target, "--to")
    return translator


def run(units: list[Unit], settings: JobSettings, translator: Translator, sources: dict[str, Path],
        world: World = SINGLE, show_progress: bool = True) -> Outcome:
    cache = TranslationCache(settings.cache or default_cache(settings.model, translator.revision),
                             settings.model, translator.revision)
    wanted = [Request(u.text, settings.source, t) for t in settings.targets for u in units if u.text.strip()]
    done, stats = translate(wanted, translator, cache, world, settings.batch_size, settings.sort_by_length,
                            show_progress)
    items = [Checked(u.id, f"{u.where}:{u.field}", t, u.text, done[r], len(done[r]) / max(len(u.text), 1))
             for t in settings.targets for u in units if u.text.strip()
             for r in [Request(u.text, settings.source, t)]]
    if settings.round_trip:
        back = [Request(item.translation, item.lang, settings.source) for item in items if item.translation.strip()]
        returned, more = translate(back, translator, cache, world, settings.batch_size, settings.sort_by_length,
                                   show_progress)
        stats.generated += more.generated
        for item in items:
            if item.translation.strip():
                item.chrf = round(round_trip_chrf(item.source, returned[Request(item.translation, item.lang,
                                                                                settings.source)]), 2)
    identifier = None if settings.language_id == "off" else LanguageIdentifier(settings.language_id == "fast")
    check(items, identifier, settings.length_tolerance, settings.min_chrf)
    kept = {}
    for item in items:
        if not set(item.flags) & set(settings.drop):
            where, name = item.field.split(":", 1)
            kept[where, item.id, name, item.lang] = item.translation
    quality = summary(items, identifier)
    for lang, numbers in quality.items():
        numbers["dropped"] = sum(1 for item in items if item.lang == lang and set(item.flags) & set(settings.drop))
    manifest = {
        "polyir": __version__,
        "model": {"id": settings.model, "revision": translator.revision},
        "generation": settings.generation.as_json(),
        "source_language": settings.source,
        "target_languages": settings.targets,
        "sources": {name: checksum(path) for name, path in sorted(sources.items())},
        "checks": {"drop": settings.drop, "length_tolerance": settings.length_tolerance,
                   "round_trip": settings.round_trip, "min_chrf": settings.min_chrf,
                   "language_id": settings.language_id},
        "texts": len([u for u in units if u.text.strip()]),
        "pieces": stats.pieces,
        "languages": quality,
        "flagged": [{"id": item.id, "field": item.field, "lang": item.lang, "flags": item.flags,
                     "source": item.source, "translation": item.translation,
                     **({"chrf": item.chrf} if item.chrf is not None else {})}
                    for item in items if item.flags],
    }
    return Outcome(kept, manifest, stats)
