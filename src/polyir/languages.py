"""Map dataset language codes (ISO 639-1/-3, FLORES `swh_Latn`, BCP 47) onto the codes a model's tokenizer knows.

Matching goes through langcodes' standardisation (macrolanguages folded: swh -> sw, arb -> ar); a language the
model lacks is an error unless the user mapped it, possibly to None (no language token). Never a silent guess."""

from __future__ import annotations

from functools import cache, lru_cache

import langcodes

from polyir.errors import InputError


@cache
def base_language(code: str) -> str:
    """'swh_Latn' -> 'sw', 'zho_Hans' -> 'zh', 'eng' -> 'en'; unparseable codes are returned lower-cased."""
    try:
        return langcodes.Language.get(langcodes.standardize_tag(code.replace("_", "-"), macro=True)).language
    except (ValueError, langcodes.tag_parser.LanguageTagError):
        return code.lower()


@lru_cache(maxsize=4096)
def language_key(code: str) -> tuple[str, str | None]:
    """(language, script) that one language has under any of its codes: en and eng_Latn give ('en', 'Latn');
    zho_Hans and zho_Hant stay apart; unparseable codes give (the code lower-cased, None)."""
    try:
        tag = langcodes.Language.get(langcodes.standardize_tag(code.replace("_", "-"), macro=True)).maximize()
        return tag.language, tag.script
    except (ValueError, langcodes.tag_parser.LanguageTagError):
        return code.lower(), None


class LanguageResolver:
    """Resolves dataset codes to model codes; `supported=None` means the model takes no language tokens."""

    def __init__(self, supported: list[str] | None, lang_map: dict[str, str | None] | None = None):
        self.supported = None if supported is None else list(supported)
        self.lang_map = dict(lang_map or {})
        if self.supported is not None:
            for source, target in self.lang_map.items():
                if target is not None and target not in self.supported:
                    raise InputError(f"lang_map maps '{source}' to '{target}', which the model does not know; "
                                     f"expected one of: {', '.join(self.supported)}")
        self._by_base: dict[str, list[str]] = {}
        for code in self.supported or []:
            self._by_base.setdefault(base_language(code), []).append(code)

    @property
    def uses_language_tokens(self) -> bool:
        return self.supported is not None

    @cache  # noqa: B019 - a resolver lives as long as its model
    def resolve(self, code: str) -> str | None:
        if self.supported is None:
            return None
        if code in self.lang_map:
            return self.lang_map[code]
        if code in self.supported:
            return code
        candidates = self._by_base.get(base_language(code), [])
        if len(candidates) == 1:
            return candidates[0]
        hint = f"candidates: {', '.join(candidates)}" if candidates else "the model has no such language"
        raise InputError(f"language '{code}' cannot be mapped to the model's language codes ({hint}); "
                         f"set lang_map: {{{code}: <model code>}}, or {{{code}: null}} for no language token")
