"""The two records polyir moves between stages: a parallel training example and a retrieval task."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ParallelExample:
    """One question/answer pair in several languages; each text is keyed by its language code."""

    id: str
    query: dict[str, str]
    positive: dict[str, str]
    negatives: list[dict[str, str]] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        """Languages in which both the query and the positive exist."""
        return sorted(set(self.query) & set(self.positive))


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    lang: str
    title: str = ""


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    lang: str


@dataclass
class RetrievalTask:
    """A BEIR folder in memory: corpus, queries and graded relevance judgements (qrels[qid][docid] = grade)."""

    name: str
    corpus: list[Document]
    queries: list[Query]
    qrels: dict[str, dict[str, int]]

    @property
    def corpus_languages(self) -> list[str]:
        return sorted({doc.lang for doc in self.corpus})

    @property
    def query_languages(self) -> list[str]:
        return sorted({query.lang for query in self.queries})
