"""Translate many texts the way the field does: split into pieces, deduplicate, sort by length, batch per language
pair, generate what the cache lacks, rejoin. Batches are planned over the whole sorted list, cached or not, so a
resumed run generates exactly the batches an uninterrupted run would have (same texts, same padding, same bytes).
Under torchrun, batch i goes to rank i mod world size; every rank writes its own cache file and every rank then
reads all of them, so the output is the same as one process's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tqdm.auto import tqdm

from polyir.distributed import SINGLE, World
from polyir.translate.backends import Translator
from polyir.translate.cache import TranslationCache, key
from polyir.translate.segment import join, split


@dataclass(frozen=True)
class Request:
    """One text to translate; languages are the data set's codes."""

    text: str
    source: str
    target: str


@dataclass
class Stats:
    pieces: int = 0  # distinct pieces this job needs
    generated: int = 0  # translated by this process
    cached: int = 0  # found in the cache


@dataclass(frozen=True)
class _Piece:
    text: str
    source: str  # model codes
    target: str
    key: str


def split_requests(requests: list[Request], translator: Translator) -> dict[Request, list[_Piece]]:
    """Every request's pieces (sentences, cut under the input limit), each with its cache key."""
    settings = translator.settings
    split_once: dict[tuple[str, str], list[str]] = {}
    out = {}
    for request in requests:
        source, target = translator.code(request.source, "--from"), translator.code(request.target, "--to")
        if (request.text, source) not in split_once:
            split_once[request.text, source] = split(request.text, request.source, translator.length,
                                                     settings.max_input_tokens)
        out[request] = [_Piece(text, source, target, key(text, source, target, translator.name, translator.revision,
                                                         settings.as_json()))
                        for text in split_once[request.text, source]]
    return out


def plan(pieces: Iterable[_Piece], translator: Translator, batch_size: int,
         sort_by_length: bool = True) -> list[tuple[list[_Piece], list[list[int]]]]:
    """Batches of (pieces, token ids): per language pair, longest first (ties by text), `batch_size` each."""
    unique = list(dict.fromkeys(pieces))
    by_pair: dict[tuple[str, str], list[_Piece]] = {}
    for piece in unique:
        by_pair.setdefault((piece.source, piece.target), []).append(piece)
    batches = []
    for (source, _), group in sorted(by_pair.items()):
        ids = dict(zip(group, translator.encode([p.text for p in group], source)))
        if sort_by_length:
            group = sorted(group, key=lambda p: (-len(ids[p]), p.text))
        for start in range(0, len(group), batch_size):
            chunk = group[start:start + batch_size]
            batches.append((chunk, [ids[p] for p in chunk]))
    return batches


def translate(requests: Iterable[Request], translator: Translator, cache: TranslationCache, world: World = SINGLE,
              batch_size: int = 32, sort_by_length: bool = True, show_progress: bool = True,
              ) -> tuple[dict[Request, str], Stats]:
    """Every request's translation (pieces rejoined), and what it took."""
    wanted = list(dict.fromkeys(requests))
    pieces = split_requests(wanted, translator)
    batches = plan((p for group in pieces.values() for p in group), translator, batch_size, sort_by_length)
    stats = Stats(pieces=sum(len(chunk) for chunk, _ in batches))
    mine = [batch for index, batch in enumerate(batches) if index % world.size == world.rank]
    todo = [batch for batch in mine if any(p.key not in cache for p in batch[0])]
    stats.cached = sum(p.key in cache for chunk, _ in batches for p in chunk)
    with tqdm(total=sum(len(chunk) for chunk, _ in todo), unit="text", desc="translating", leave=False,
              disable=not show_progress or not todo) as bar:
        for chunk, ids in todo:
            outputs = translator.generate(ids, [p.target for p in chunk])
            rows = [{"key": p.key, "source": p.source, "target": p.target, "text": p.text, "translation": out}
                    for p, out in zip(chunk, outputs) if p.key not in cache]
            cache.append(rows, world.rank)
            stats.generated += len(rows)
            bar.update(len(chunk))
    if world.distributed:
        world.barrier()
        cache.reload()
    return {request: join([cache[p.key] for p in pieces[request]], request.target) for request in wanted}, stats
