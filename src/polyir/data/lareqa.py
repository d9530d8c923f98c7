"""XQuAD-R / MLQA-R (LAReQA) → parallel training examples and a multilingual BEIR task, split by article.

Candidates are every sentence of every paragraph in every language; a question's relevant candidate in a
language is the sentence whose span holds the answer's first character. A question id is shared by all its
translations, so a split by article keeps every version of a question on one side. XQuAD-R's languages hold the
same articles in the same order; MLQA-R's do not (each question is in English and one to three other languages),
so it is pooled whole, by question id."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from polyir.data.records import Document, ParallelExample, Query, RetrievalTask
from polyir.errors import InputError
from polyir.files import read_text


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    answer: str  # the id of the sentence that holds the answer


@dataclass
class Article:
    sentences: dict[str, str]  # sentence id -> text
    questions: list[Question]


def _get(node: object, key: str, kind: type, path: Path, where: str):
    if not isinstance(node, dict) or key not in node:
        raise InputError(f"missing '{key}' at {where}; expected SQuAD v1.1 JSON with LAReQA sentence fields", path)
    value = node[key]
    if not isinstance(value, kind):
        raise InputError(f"'{where}.{key}' must be {kind.__name__}, got {type(value).__name__}", path)
    return value


def _answer_sentence(breaks: list, start: int, path: Path, where: str) -> int:
    for index, span in enumerate(breaks):
        if not (isinstance(span, list) and len(span) == 2 and all(type(edge) is int for edge in span)):
            raise InputError(f"'{where}.sentence_breaks[{index}]' must be a [start, end] pair of integers, got "
                             f"{span!r}", path)
        if span[0] <= start < span[1]:
            return index
    raise InputError(f"answer_start {start} at {where} lies in no sentence span", path)


def read_language(path: Path, lang: str) -> list[Article]:
    """One `<lang>.json` file as articles of sentences and questions (with their answer sentence)."""
    try:
        root = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON ({error.msg}, column {error.colno})", path, error.lineno) from None
    articles = []
    for a, article in enumerate(_get(root, "data", list, path, "$")):
        sentences, questions = {}, []
        for p, paragraph in enumerate(_get(article, "paragraphs", list, path, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            texts = _get(paragraph, "sentences", list, path, where)
            breaks = _get(paragraph, "sentence_breaks", list, path, where)
            if len(texts) != len(breaks):
                raise InputError(f"{where} has {len(texts)} sentences but {len(breaks)} sentence_breaks", path)
            for i, text in enumerate(texts):
                if not isinstance(text, str) or not text.strip():
                    raise InputError(f"'{where}.sentences[{i}]' must be a non-empty string, got {text!r}", path)
            ids = [f"{lang}-{a}-{p}-{s}" for s in range(len(texts))]
            sentences.update(zip(ids, (text.strip() for text in texts)))
            for q, qa in enumerate(_get(paragraph, "qas", list, path, where)):
                answers = _get(qa, "answers", list, path, f"{where}.qas[{q}]")
                if not answers:
                    raise InputError(f"{where}.qas[{q}] has no answer", path)
                start = _get(answers[0], "answer_start", int, path, f"{where}.qas[{q}].answers[0]")
                sentence = _answer_sentence(breaks, start, path, f"{where}.qas[{q}]")
                text = _get(qa, "question", str, path, f"{where}.qas[{q}]")
                if not text.strip():
                    raise InputError(f"'{where}.qas[{q}].question' is empty; expected the question's text", path)
                questions.append(Question(str(_get(qa, "id", str, path, f"{where}.qas[{q}]")), text, ids[sentence]))
        articles.append(Article(sentences, questions))
    if not articles:
        raise InputError("no articles in 'data'", path)
    return articles


def read_lareqa(src_dir: str | Path, languages: list[str] | None = None, aligned: bool = True
                ) -> dict[str, list[Article]]:
    """Every `<lang>.json` of a LAReQA folder (or those of `languages`); with `aligned` (needed to split by
    article), articles must be aligned by position, which question ids check."""
    src_dir = Path(src_dir)
    files = sorted(src_dir.glob("*.json")) if src_dir.is_dir() else []
    if languages is not None:
        files = [src_dir / f"{lang}.json" for lang in languages]
    if not files:
        raise InputError("no <lang>.json files found; expected a LAReQA folder such as xquad-r/", src_dir)
    by_lang = {f.stem: read_language(f, f.stem) for f in files}
    if not aligned:
        return by_lang
    reference_lang, reference = next(iter(by_lang.items()))
    home = {q.id: a for a, article in enumerate(reference) for q in article.questions}
    for lang, articles in by_lang.items():
        if len(articles) != len(reference):
            raise InputError(f"{len(articles)} articles, but {reference_lang}.json has {len(reference)}; "
                             "expected the same articles in every language", src_dir / f"{lang}.json")
        for a, article in enumerate(articles):
            for question in article.questions:
                if home.get(question.id, a) != a:
                    raise InputError(f"question {question.id} is in article {a}, but in article {home[question.id]} "
                                     f"of {reference_lang}.json", src_dir / f"{lang}.json")
    return by_lang


def article_count(by_lang: dict[str, list[Article]]) -> int:
    return len(next(iter(by_lang.values())))


def split_articles(count: int, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic article split: round(holdout * count) articles go to evaluation."""
    if not 0.0 <= holdout <= 1.0:
        raise InputError(f"--holdout must lie in [0, 1], got {holdout}")
    order = list(range(count))
    random.Random(seed).shuffle(order)
    n_eval = round(holdout * count)
    return sorted(order[n_eval:]), sorted(order[:n_eval])


def training_examples(by_lang: dict[str, list[Article]], articles: list[int]) -> list[ParallelExample]:
    """One example per question id: its question and answer sentence in every language that has it."""
    query: dict[str, dict[str, str]] = {}
    positive: dict[str, dict[str, str]] = {}
    for lang, lang_articles in by_lang.items():
        for a in articles:
            article = lang_articles[a]
            for question in article.questions:
                query.setdefault(question.id, {})[lang] = question.text
                positive.setdefault(question.id, {})[lang] = article.sentences[question.answer]
    return [ParallelExample(qid, query[qid], positive[qid]) for qid in query]


def evaluation_task(by_lang: dict[str, list[Article]], articles: list[int] | None = None, name: str = "eval"
                    ) -> RetrievalTask:
    """The LAReQA retrieval task: each question is relevant to its answer sentence in every language that has it.
    `articles`: the indices of aligned articles to use; None: every article of every language."""
    corpus, queries, asked = [], [], []
    answers: dict[str, list[str]] = {}
    for lang, lang_articles in by_lang.items():
        for article in lang_articles if articles is None else [lang_articles[a] for a in articles]:
            corpus.extend(Document(doc_id, text, lang) for doc_id, text in article.sentences.items())
            for question in article.questions:
                queries.append(Query(f"{question.id}-{lang}", question.text, lang))
                asked.append(question.id)
                answers.setdefault(question.id, []).append(question.answer)
    qrels = {query.id: dict.fromkeys(answers[question], 1) for query, question in zip(queries, asked)}
    return RetrievalTask(name, corpus, queries, qrels)
