"""BM25, the lexical baseline, and its fusion with a dense model, behind the same harness as dense models.

BM25 is bm25s's (Lucene's formula, k1 = 1.5, b = 0.75 by default). Its index is a sparse document-by-term matrix
of BM25 weights and a query is its term counts, so a query's scores are one sparse product: the harness then
searches, ranks and measures exactly as it does for embeddings, in chunks over the corpus.

Tokens: NFKC, case-folded runs of letters, marks and digits (so Devanagari or Ethiopic words keep their vowel
signs); scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar) become overlapping character
bigrams, as Lucene's CJK analyser does; a Snowball stemmer (PyStemmer) where one exists for the language."""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib.metadata import version

import numpy as np
import regex
import scipy.sparse
import torch

from polyir.config import ENCODE_BATCH_SIZE
from polyir.data.records import RetrievalTask
from polyir.evaluation.search import Mixture, spread
from polyir.languages import base_language

TOKENIZER = 1  # bump when tokens() changes
WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+")
UNSPACED = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]+")
SNOWBALL = {"ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech", "da": "danish",
            "nl": "dutch", "en": "english", "eo": "esperanto", "et": "estonian", "fi": "finnish", "fr": "french",
            "de": "german", "el": "greek", "hi": "hindi", "hu": "hungarian", "id": "indonesian", "ga": "irish",
            "it": "italian", "lt": "lithuanian", "ne": "nepali", "no": "norwegian", "nb": "norwegian",
            "nn": "norwegian", "fa": "persian", "pl": "polish", "pt": "portuguese", "ro": "romanian",
            "ru": "russian", "sr": "serbian", "st": "sesotho", "es": "spanish", "sv": "swedish", "ta": "tamil",
            "tr": "turkish", "yi": "yiddish"}


@cache
def stemmer(lang: str):
    """The Snowball stemmer of `lang` (any code langcodes knows), or None."""
    import Stemmer

    name = SNOWBALL.get(base_language(lang))
    return Stemmer.Stemmer(name) if name else None


def tokens(text: str, lang: str) -> list[str]:
    words: list[str] = []
    bigrams: list[str] = []
    for word in WORD.findall(unicodedata.normalize("NFKC", text).casefold()):
        last = 0
        for run in UNSPACED.finditer(word):
            if run.start() > last:
                words.append(word[last:run.start()])
            chars = run.group()
            bigrams += [chars] if len(chars) == 1 else [chars[i:i + 2] for i in range(len(chars) - 1)]
            last = run.end()
        if last < len(word):
            words.append(word[last:])
    stem = stemmer(lang)
    return (stem.stemWords(words) if stem else words) + bigrams


class BM25:
    """`represent(task)` -> (queries, documents) as sparse matrices whose product is the BM25 score."""

    name = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b

    @property
    def revision(self) -> str:
        return f"bm25s {version('bm25s')}, k1={self.k1}, b={self.b}, tokenizer {TOKENIZER}"

    def represent(self, task: RetrievalTask, show_progress: bool = False) -> tuple[scipy.sparse.csr_matrix, ...]:
        import bm25s
        from bm25s.tokenization import Tokenized

        vocab: dict[str, int] = {}

        def ids(text: str, lang: str, grow: bool) -> np.ndarray:
            found = (vocab.setdefault(t, len(vocab)) if grow else vocab.get(t, -1) for t in tokens(text, lang))
            return np.fromiter((i for i in found if i >= 0), dtype=np.int32)

        docs = [ids(f"{d.title} {d.text}" if d.title else d.text, d.lang, True) for d in task.corpus]
        index = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        index.index(Tokenized(ids=docs, vocab=vocab), create_empty_token=False, show_progress=show_progress)
        scores = index.scores
        matrix = scipy.sparse.csc_matrix((scores["data"], scores["indices"], scores["indptr"]),
                                         shape=(len(docs), len(vocab)), dtype=np.float32).tocsr()
        rows = [ids(q.text, q.lang, False) for q in task.queries]
        counts = scipy.sparse.csr_matrix(
            (np.ones(sum(map(len, rows)), dtype=np.float32), np.concatenate(rows or [np.empty(0, np.int32)]),
             np.cumsum([0, *map(len, rows)])), shape=(len(rows), len(vocab)))
        counts.sum_duplicates()  # a repeated query term counts as often as it occurs, as in bm25s
        return counts, matrix


class Fusion:
    """Score interpolation of a dense model and BM25, each min-max normalised over the query's top 100 (as
    Pyserini's hybrid search normalises its hits): w x dense' + (1 - w) x bm25'. A per-query shift does not change
    a ranking, so each part is only scaled, and the fused scores stay exact over the whole corpus."""

    def __init__(self, dense, dense_name: str, lexical: BM25, weight: float):
        self.dense, self.lexical, self.weight = dense, lexical, weight
        self.name = f"{dense_name} + bm25 (w={weight:g})"

    def combine(self, dense: tuple[torch.Tensor, torch.Tensor], sparse: tuple) -> tuple[Mixture, Mixture]:
        """The fused (queries, documents) from the dense and the BM25 representations of one task."""
        dense_scale = self.weight / _positive(spread(*dense))
        sparse_scale = (1 - self.weight) / _positive(spread(*sparse))
        queries = Mixture((dense[0] * dense_scale[:, None],
                           scipy.sparse.diags(sparse_scale.numpy()).astype(np.float32) @ sparse[0]))
        return queries, Mixture((dense[1], sparse[1]))

    def represent(self, task: RetrievalTask, show_progress: bool = False,
                  batch_size: int = ENCODE_BATCH_SIZE) -> tuple:
        from polyir.evaluation.harness import encode_task

        return self.combine(encode_task(self.dense, task, batch_size, show_progress), self.lexical.represent(task))


def _positive(width: torch.Tensor) -> torch.Tensor:
    """A query's score range as its scale; 1 where the range is empty (every top score equal, no shared term)."""
    return torch.where(width > 0, width, torch.ones_like(width))
