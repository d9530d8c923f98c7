"""Publishers' formats -> a RetrievalTask (written as a BEIR folder with `lang` fields by the caller).

- trec: topics `qid<TAB>text` (.tsv, or .txt.gz as Mr. TyDi ships them), TREC qrels `qid Q0 docid grade` (tabs
  or spaces), a JSON-lines corpus (optionally .gz) whose field names the registry gives (MIRACL, Mr. TyDi,
  CIRAL: docid/title/text; AfriCLIRMatrix: id/contents). Queries without a judgement are left out, as BEIR does.
- tatoeba: two line-aligned files (the language, its English translations): bitext retrieval into English.
- beir: a BEIR folder as published (corpus/queries .jsonl or .jsonl.gz, a qrels .tsv).
- lareqa: LAReQA `<lang>.json` files (XQuAD-R, MLQA-R): every article, every language pooled, questions matched
  across languages by id.
- sib200: SIB-200's `<code>/{train,dev,test}.tsv` (index_id, category, text) joined by index_id into
  line-aligned FLORES-200 sentences, or those lines as `<code>.txt` already: bitext retrieval into the pivot."""

from __future__ import annotations

import csv
from pathlib import Path

from polyir.data.beir import read_corpus, read_qrels, read_queries
from polyir.data.bitext import aligned_task, read_bitext
from polyir.data.lareqa import evaluation_task, read_lareqa
from polyir.data.records import Document, Query, RetrievalTask
from polyir.data.registry import Entry, remotes
from polyir.errors import InputError
from polyir.files import read_jsonl, text_lines

VERSION = 2  # bump when a converter's output changes (2: SIB-200 read as CSV); cached conversions are rebuilt


def _paths(entry: Entry, lang: str, folder: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for remote in remotes(entry, lang):
        out.setdefault(remote.role, []).append(folder / remote.path)
    return out


def read_topics(path: Path) -> dict[str, str]:
    topics: dict[str, str] = {}
    for line, row in text_lines(path):
        if not row.strip():
            continue
        qid, tab, text = row.partition("\t")
        if not tab or not qid.strip() or not text.strip():
            raise InputError("expected 'query-id<TAB>query text'", path, line)
        if qid in topics:
            raise InputError(f"query {qid!r} appears again; expected each query once", path, line)
        topics[qid] = text.strip()
    if not topics:
        raise InputError("empty file; expected 'query-id<TAB>query text' lines", path)
    return topics


def read_trec_qrels(path: Path, topics: dict[str, str], doc_ids: set[str]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line, row in text_lines(path):
        cells = row.split()
        if not cells:
            continue
        if len(cells) != 4 or not cells[3].lstrip("-").isdigit():
            raise InputError("expected TREC qrels 'query-id iteration doc-id grade' (grade an integer)", path, line)
        qid, _, docid, grade = cells
        if qid not in topics:
            raise InputError(f"unknown query-id {qid!r} (not in the topics file)", path, line)
        if docid not in doc_ids:
            raise InputError(f"unknown doc-id {docid!r} (not in the corpus)", path, line)
        if docid in qrels.get(qid, {}):
            raise InputError(f"query {qid!r} and document {docid!r} are judged again; expected one judgement "
                             "per pair", path, line)
        qrels.setdefault(qid, {})[docid] = int(grade)
    return qrels


def _corpus(paths: list[Path], fields: dict[str, str], lang: str) -> list[Document]:
    key, title, text = fields.get("id", "_id"), fields.get("title"), fields.get("text", "text")
    docs, seen = [], set()
    for path in paths:
        for line, record in read_jsonl(path):
            if key not in record or text not in record:
                raise InputError(f"expected fields '{key}' and '{text}'", path, line)
            doc_id = str(record[key])
            if doc_id in seen:
                raise InputError(f"document {doc_id!r} appears again; expected unique ids", path, line)
            seen.add(doc_id)
            heading = record.get(title) if title else ""
            docs.append(Document(doc_id, str(record[text]), lang, str(heading or "")))
    return docs


def _judged(name: str, corpus: list[Document], queries: list[Query], qrels: dict[str, dict[str, int]],
            path: Path) -> RetrievalTask:
    judged = [q for q in queries if any(grade > 0 for grade in qrels.get(q.id, {}).values())]
    if not judged:
        raise InputError("no query has a relevant document; expected judgements with a grade above 0", path)
    return RetrievalTask(name, corpus, judged, {q.id: qrels[q.id] for q in judged})


def trec(entry: Entry, lang: str, folder: Path) -> RetrievalTask:
    paths = _paths(entry, lang, folder)
    topics = read_topics(paths["topics"][0])
    corpus = _corpus(paths["corpus"], entry.fields, lang)
    qrels = read_trec_qrels(paths["qrels"][0], topics, {d.id for d in corpus})
    queries = [Query(qid, text, entry.query_language or lang) for qid, text in topics.items()]
    return _judged(f"{entry.name}-{lang}", corpus, queries, qrels, paths["qrels"][0])


def tatoeba(entry: Entry, lang: str, folder: Path) -> RetrievalTask:
    paths = _paths(entry, lang, folder)
    texts = {code: [t for _, t in text_lines(paths[role][0])] for code, role in ((lang, "text"), ("eng", "english"))}
    if len(texts[lang]) != len(texts["eng"]):
        raise InputError(f"{len(texts[lang])} lines, but its English file has {len(texts['eng'])}; expected "
                         "line-aligned files", paths["text"][0])
    ids = [str(n) for n in range(len(texts["eng"]))]
    return aligned_task(ids, texts, "eng", name=f"{entry.name}-{lang}")


def beir(entry: Entry, lang: str, folder: Path) -> RetrievalTask:
    paths = _paths(entry, lang, folder)
    corpus = read_corpus(paths["corpus"][0], lang)
    queries = read_queries(paths["queries"][0], lang)
    qrels = read_qrels(paths["qrels"][0], {q.id for q in queries}, {d.id for d in corpus})
    return _judged(f"{entry.name}", corpus, queries, qrels, paths["qrels"][0])


def lareqa(entry: Entry, langs: list[str], folder: Path) -> RetrievalTask:
    return evaluation_task(read_lareqa(folder, langs, aligned=False), name=entry.name)


def _sib_lines(entry: Entry, lang: str, folder: Path) -> dict[int, str]:
    """index_id -> text of one language's SIB-200 files. They are pandas CSV files (tab-separated, a field with
    quotes quoted and its quotes doubled), so they are read with a CSV reader; texts are stripped, as the
    line-aligned FLORES files are."""
    rows: dict[int, str] = {}
    for path in (p for paths in _paths(entry, lang, folder).values() for p in paths):
        reader = csv.reader((row for _, row in text_lines(path)), delimiter="\t", strict=True)
        try:
            for cells in reader:
                line = reader.line_num
                if line == 1 and cells[:1] == ["index_id"]:
                    continue
                if len(cells) != 3 or not cells[0].isdigit() or not cells[2].strip():
                    raise InputError("expected 'index_id<TAB>category<TAB>text' (index_id an integer)", path, line)
                if int(cells[0]) in rows:
                    raise InputError(f"index_id {cells[0]} appears again; expected each sentence once", path, line)
                rows[int(cells[0])] = cells[2].strip()
        except csv.Error as error:
            raise InputError(f"malformed CSV quoting ({error}); expected a pandas tab-separated file", path,
                             reader.line_num) from None
    return rows


def sib200(entry: Entry, langs: list[str], folder: Path) -> RetrievalTask:
    if all((folder / f"{lang}.txt").is_file() for lang in langs):
        ids, texts = read_bitext(folder, langs)
    else:
        rows = {lang: _sib_lines(entry, lang, folder) for lang in langs}
        first = rows[langs[0]]
        for lang in langs[1:]:
            if rows[lang].keys() != first.keys():
                raise InputError(f"{lang}'s index_ids differ from {langs[0]}'s; expected the same FLORES sentences",
                                 folder / lang)
        ids = [str(i) for i in sorted(first)]
        texts = {lang: [rows[lang][int(i)] for i in ids] for lang in langs}
    return aligned_task(ids, texts, entry.pivot or langs[0], name=entry.name)


def convert(entry: Entry, langs: list[str], folder: Path) -> RetrievalTask:
    """The task of `langs` (one language for per-language entries) from the publisher's files under `folder`."""
    if entry.converter in ("lareqa", "sib200"):
        return {"lareqa": lareqa, "sib200": sib200}[entry.converter](entry, langs, folder)
    (lang,) = langs
    return {"trec": trec, "tatoeba": tatoeba, "beir": beir}[entry.converter](entry, lang, folder)
