"""Read and write BEIR folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) with polyir's `lang` field."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from polyir.data.records import Document, Query, RetrievalTask
from polyir.errors import InputError
from polyir.files import read_jsonl, require, text_lines, write_jsonl

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
    if not value or any(c.isspace() for c in value):
        raise InputError(f"_id {value!r} is empty or holds white space, which a TREC run line cannot carry; "
                         "expected an id without spaces", path, line)
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


def _grade(score: str, path: Path, line: int) -> int | None:
    """An integer grade ('1', or '1.0' as some tools write it), or None when `score` is not a number (a header)."""
    try:
        value = float(score)
    except ValueError:
        return None
    if not value.is_integer():
        raise InputError(f"score must be an integer, got {score!r}", path, line)
    return int(value)


def read_qrels(path: Path, query_ids: set[str], doc_ids: set[str]) -> dict[str, dict[str, int]]:
    """BEIR qrels: an optional header line, then `query-id<TAB>corpus-id<TAB>score`, each pair judged once."""
    qrels: dict[str, dict[str, int]] = {}
    first_seen: dict[tuple[str, str], int] = {}
    first_row = True
    for line, row in text_lines(path):
        if not row.strip():
            continue
        header_allowed, first_row = first_row, False
        cells = row.split("\t")
        if len(cells) != 3:
            raise InputError(f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cells)}",
                             path, line)
        query_id, doc_id, score = cells
        grade = _grade(score, path, line)
        if grade is None:
            if header_allowed:
                continue  # the header: its score column is a name, not a number
            raise InputError(f"score must be an integer, got {score!r}", path, line)
        if query_id not in query_ids:
            raise InputError(f"unknown query-id {query_id!r} (not in queries.jsonl)", path, line)
        if doc_id not in doc_ids:
            raise InputError(f"unknown corpus-id {doc_id!r} (not in corpus.jsonl)", path, line)
        if (query_id, doc_id) in first_seen:
            raise InputError(f"query {query_id!r} and document {doc_id!r} are judged again (first on line "
                             f"{first_seen[query_id, doc_id]}); expected one judgement per pair", path, line)
        if query_id == doc_id and grade > 0:
            raise InputError(f"query {query_id!r} has a relevant document of the same id, which BEIR's rule leaves "
                             "out of the query's ranking; expected distinct ids", path, line)
        first_seen[query_id, doc_id] = line
        qrels.setdefault(query_id, {})[doc_id] = grade
    if not any(grade > 0 for judged in qrels.values() for grade in judged.values()):
        raise InputError("no relevant document (every score is 0, or there are no judgements); expected lines "
                         "'query-id<TAB>corpus-id<TAB>score' with some score above 0", path)
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


def task_names(folders: list[Path]) -> list[str]:
    """Each BEIR folder's task name: its folder name, or parent-name where folders share a name (data/xquad/eval
    and data/flores/eval, as `prepare` writes them: xquad-eval and flores-eval), so that results keyed by task
    never overwrite each other. Folders that would still share a name are refused."""
    folders = [Path(folder) for folder in folders]
    names = [folder.name for folder in folders]
    names = [f"{folder.resolve().parent.name}-{folder.name}" if names.count(folder.name) > 1 else folder.name
             for folder in folders]
    if len(set(names)) < len(names):
        raise InputError(f"two task folders share a name ({', '.join(map(str, folders))}); expected folders that "
                         "differ in their name or their parent folder's")
    return names


def read_tasks(folders: list[Path], split: str = "test", lang: str | None = None,
               splits: dict[str, str] | None = None) -> list[RetrievalTask]:
    """`read_beir` of each folder, named by `task_names`; `splits`: folder name -> qrels split, where not `split`."""
    return [replace(read_beir(folder, (splits or {}).get(Path(folder).name, split), lang), name=name)
            for folder, name in zip(folders, task_names(folders))]


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
