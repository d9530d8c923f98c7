"""What can go wrong in a machine translation, measured per text: empty output, the source copied, repetition
loops, a length ratio far from the language's typical one, the wrong script, the wrong language (lingua, offline,
for the languages it covers), and optionally a low round-trip chrF (sacrebleu). Flags are listed; the caller
decides which ones drop a text."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from functools import cache

import langcodes
import regex

from polyir.languages import base_language

FLAGS = ("empty", "copy", "loop", "length-ratio", "wrong-script", "wrong-language", "round-trip")
LOOP = regex.compile(r"(.+?)\1{3,}", regex.DOTALL)  # a unit said four or more times in a row
LOOP_SPAN = 10  # characters: shorter runs ("...", "1111") are ordinary text
LETTER = regex.compile(r"\p{L}")
SCRIPT_ALIASES = {"Hans": "Hani", "Hant": "Hani", "Kore": "Hang", "Jpan": None}  # ISO 15924 -> Unicode script


@dataclass
class Checked:
    """One translated text: where it is (record id and field), its flags and numbers."""

    id: str
    field: str
    lang: str
    source: str
    translation: str
    ratio: float
    flags: list[str] = field(default_factory=list)
    chrf: float | None = None


@cache
def expected_script(lang: str) -> str | None:
    try:
        script = langcodes.Language.get(base_language(lang)).maximize().script
    except (ValueError, LookupError):
        return None
    return SCRIPT_ALIASES.get(script, script)


def script_share(text: str, script: str) -> float:
    letters = LETTER.findall(text)
    if not letters:
        return 1.0
    return len(regex.findall(rf"\p{{Script={script}}}", text)) / len(letters)


def has_loop(translation: str, source: str) -> bool:
    for match in LOOP.finditer(translation):
        if len(match.group(0)) >= LOOP_SPAN and match.group(0) not in source:
            return True
    return False


class LanguageIdentifier:
    """lingua over all its 75 languages; `fast` is its low-accuracy mode (60 MB and instant, against 1 GB and a
    few seconds to load), weaker on short texts."""

    def __init__(self, fast: bool = False):
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        builder = LanguageDetectorBuilder.from_all_languages()
        self.detector = (builder.with_low_accuracy_mode() if fast else builder).build()
        self._iso, self._language = IsoCode639_1, Language

    def covers(self, lang: str) -> bool:
        return hasattr(self._iso, base_language(lang).upper())

    def wrong(self, texts: list[str], lang: str) -> list[bool]:
        """Whether each text is detected as another language (undecided counts as right)."""
        wanted = self._language.from_iso_code_639_1(getattr(self._iso, base_language(lang).upper()))
        found = self.detector.detect_languages_in_parallel_of(texts)
        return [language is not None and language != wanted for language in found]


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def check(items: list[Checked], identifier: LanguageIdentifier | None, length_tolerance: float = 3.0,
          min_chrf: float | None = None) -> None:
    """Set every item's flags (items of one target language at a time give that language's typical ratio)."""
    by_lang: dict[str, list[Checked]] = {}
    for item in items:
        by_lang.setdefault(item.lang, []).append(item)
    for lang, group in by_lang.items():
        typical = statistics.median(item.ratio for item in group)
        script = expected_script(lang)
        covered = identifier is not None and identifier.covers(lang)
        wrong = identifier.wrong([item.translation for item in group], lang) if covered else [False] * len(group)
        for item, wrong_language in zip(group, wrong):
            flags = item.flags
            if not item.translation.strip():
                flags.append("empty")
                continue
            if _normal(item.translation) == _normal(item.source) and len(LETTER.findall(item.source)) >= 12:
                flags.append("copy")
            if has_loop(item.translation, item.source):
                flags.append("loop")
            if typical > 0 and not typical / length_tolerance <= item.ratio <= typical * length_tolerance:
                flags.append("length-ratio")
            if script and script_share(item.translation, script) < 0.5:
                flags.append("wrong-script")
            elif wrong_language:
                flags.append("wrong-language")
            if min_chrf is not None and item.chrf is not None and item.chrf < min_chrf:
                flags.append("round-trip")


def summary(items: list[Checked], identifier: LanguageIdentifier | None) -> dict[str, dict]:
    """Per target language: counts, the length-ratio distribution, shares of each flag, mean round-trip chrF."""
    out = {}
    for lang in sorted({item.lang for item in items}):
        group = [item for item in items if item.lang == lang]
        ratios = sorted(item.ratio for item in group)
        quantiles = statistics.quantiles(ratios, n=20, method="inclusive") if len(ratios) > 1 else ratios * 19
        chrf = [item.chrf for item in group if item.chrf is not None]
        out[lang] = {
            "texts": len(group),
            "length_ratio": {"p5": round(quantiles[0], 4), "median": round(statistics.median(ratios), 4),
                             "p95": round(quantiles[-1], 4), "mean": round(statistics.fmean(ratios), 4)},
            "language_id": ("lingua + script" if identifier is not None and identifier.covers(lang)
                            else "script" if expected_script(lang) else "none"),
            "flags": {flag: sum(flag in item.flags for item in group) for flag in FLAGS},
            "wrong_language_share": round(sum("wrong-script" in item.flags or "wrong-language" in item.flags
                                              for item in group) / len(group), 4),
            "flagged": sum(bool(item.flags) for item in group),
            **({"round_trip_chrf": round(statistics.fmean(chrf), 2)} if chrf else {}),
        }
    return out


def round_trip_chrf(source: str, back: str) -> float:
    from sacrebleu.metrics import CHRF

    return CHRF().sentence_score(back, [source]).score
