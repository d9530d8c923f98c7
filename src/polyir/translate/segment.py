"""Long texts become pieces a translation model takes whole: sentences (sentencex, which knows the full stops of
non-Latin scripts: ። । 。 ؟ ...), and a sentence longer than the model's input limit is cut at word boundaries
(characters for scripts without spaces). Pieces are rejoined in order after translation, so nothing is cut
silently."""

from __future__ import annotations

from collections.abc import Callable

import regex
from sentencex import segment

from polyir.languages import base_language

UNSPACED = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]")
UNSPACED_LANGUAGES = {"zh", "ja", "th", "lo", "km", "my"}


def sentences(text: str, lang: str) -> list[str]:
    """The sentences of `text` without surrounding white space (sentencex falls back to generic rules for a
    language it has no rules for)."""
    parts = [part.strip() for part in segment(base_language(lang), text)]
    return [part for part in parts if part] or ([text.strip()] if text.strip() else [])


def _cut(sentence: str, length: Callable[[str], int], limit: int) -> list[str]:
    """Greedy pieces of at most `limit` tokens, cut between words (or characters where there are no spaces)."""
    units = list(sentence) if UNSPACED.search(sentence) and " " not in sentence else sentence.split(" ")
    glue = "" if units == list(sentence) else " "
    pieces, current = [], []
    for unit in units:
        if current and length(glue.join([*current, unit])) > limit:
            pieces.append(glue.join(current))
            current = []
        current.append(unit)
    if current:
        pieces.append(glue.join(current))
    return [piece for piece in pieces if piece.strip()]


def split(text: str, lang: str, length: Callable[[str], int], limit: int) -> list[str]:
    """The pieces of `text`: its sentences, each cut under `limit` tokens as measured by `length`."""
    pieces = []
    for sentence in sentences(text, lang):
        pieces.extend([sentence] if length(sentence) <= limit else _cut(sentence, length, limit))
    return pieces


def join(pieces: list[str], lang: str) -> str:
    """Translated pieces as one text: with spaces, except in languages written without them."""
    return ("" if base_language(lang) in UNSPACED_LANGUAGES else " ").join(p.strip() for p in pieces if p.strip())
