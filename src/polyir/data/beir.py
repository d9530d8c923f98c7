"""Read and write BEIR folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) with polyir's `lang` field."""

from __future__ import annotations

from pathlib import Path

from polyir.data.records import Document, Query, RetrievalTask
from polyir.errors import InputError
from polyir.files import read_jsonl, require, write_jsonl

UNDETERMINED = "und"  # BCP 47 for "language not given"


def _read_lang(record: dict, default: str | None, seen: dict[bool, int], path: Path, line: int) -> str:
    """A folder either has `lang` on every line or on none; mixing is almost always a broken file."""
    has = "lang" in record
    seen.setdefault(has, line)
    if len(seen) == 2:
        raise InputError(f"'lang' is present on line {seen[True]} but missing on line {seen[False]}; "
                         "expected it on every line or on none", path, line)
    if has:
        return require(record, "lang", str, path, line)
    return default or UNDETERMINED


def _read_id(record: dict, path: Path, line: int, seen: dict[str, int]) -> str:
    value = str(require(record, "_id", (str, int), path, line))
    if value in seen:
        raise InputError(f"duplicate _id '{value}' (first on line {seen[value]})", path, line)
    seen[value] = line
    return value


def read_corpus(path: Path, lang: str | None = None) -> list[Document]:
    ids: dict[str, int] = {}
    langs: dict[bool, int] = {}
    corpus = []
    for line, record in read_jsonl(path):
        doc_id = _read_id(record, path, line, ids)
        text = require(record, "text", str, path, line)
        title = record.get("title") or ""
        if not isinstance(title, str):
            raise InputError(f"field 'title' must be str, got {type(title).__name__}", path, line)
        corpus.append(Document(doc_id, text, _read_lang(record, lang, langs, path, line), title))
    return corpus


def read_queries(path: Path, lang: str | None = None) -> list[Query]:
    ids: dict[str, int] = {}
    langs: dict[bool, int] = {}
    return [
        Query(_read_id(record, path, line, ids), require(record, "text", str, path, line),
              _read_lang(record, lang, langs, path, line))
        for line, record in read_jsonl(path)
    ]


def read_qrels(path: Path, query_ids: set[str], doc_ids: set[str]) -> dict[str, dict[str, int]]:
    """BEIR qrels: an optional header line, then `query-id<TAB>corpus-id<TAB>score`."""
    if not path.is_file():
        raise InputError("file not found", path)
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for line, row in enumerate(handle, start=1):
            if not row.strip():
                continue
            cells = row.rstrip("\n").split("\t")
            if len(cells) != 3:
                raise InputError(f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cells)}",
                                 path, line)
            query_id, doc_id, score = cells
            try:
                grade = int(score)
            except ValueError:
                if line == 1 and not qrels:
                    continue  # header
                raise InputError(f"score must be an integer, got '{score}'", path, line) from None
            if query_id not in query_ids:
                raise InputError(f"unknown query-id '{query_id}' (not in queries.jsonl)", path, line)
            if doc_id not in doc_ids:
                raise InputError(f"unknown corpus-id '{doc_id}' (not in corpus.jsonl)", path, line)
            qrels.setdefault(query_id, {})[doc_id] = grade
    if not qrels:
        raise InputError("no relevance judgements; expected lines 'query-id<TAB>corpus-id<TAB>score'", path)
    return qrels


def read_beir(folder: str | Path, split: str = "test", lang: str | None = None) -> RetrievalTask:
    """Load a BEIR folder; `lang` is the language of a folder whose lines carry no `lang` field."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a directory; expected a BEIR folder with corpus.jsonl, queries.jsonl, qrels/", folder)
    corpus = read_corpus(folder / "corpus.jsonl", lang)
    queries = read_queries(folder / "queries.jsonl", lang)
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv", {q.id for q in queries}, {d.id for d in corpus})
    return RetrievalTask(folder.name, corpus, queries, qrels)


def write_beir(task: RetrievalTask, folder: Path, split: str = "test") -> None:
    """Write a task as a BEIR folder with `lang` on every line (into an existing, empty folder)."""
    write_jsonl(folder / "corpus.jsonl",
                ({"_id": d.id, "title": d.title, "text": d.text, "lang": d.lang} for d in task.corpus))
    write_jsonl(folder / "queries.jsonl", ({"_id": q.id, "text": q.text, "lang": q.lang} for q in task.queries))
    (folder / "qrels").mkdir(exist_ok=True)
    with (folder / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for query_id, judged in task.qrels.items():
            for doc_id, grade in judged.items():
                out.write(f"{query_id}\t{doc_id}\t{grade}\n")
