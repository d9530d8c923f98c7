"""`polyir translate beir`: a BEIR folder in one language → the same folder in several. Every id gets its
language as suffix (`doc1-sw`), every line its `lang`, and each judgement is repeated for every pair of languages
in which both the query and the document exist, so mono, cross and multi settings follow from the `lang` fields.
Every qrels split is carried over."""

from __future__ import annotations

import json
from pathlib import Path

from polyir.data.beir import read_corpus, read_qrels, read_queries
from polyir.distributed import SINGLE, World
from polyir.errors import InputError
from polyir.files import atomic_dir, write_jsonl
from polyir.translate.job import MANIFEST, JobSettings, Outcome, Unit, open_translator, run

WHAT = ("queries", "corpus", "both")


def _source_language(records, lang: str, path: Path) -> None:
    found = sorted({record.lang for record in records} - {lang, "und"})
    if found:
        raise InputError(f"lines in language(s) {', '.join(found)}; expected a folder in the --from language "
                         f"'{lang}' (or lines without `lang`)", path)


def beir_source(source: str | Path, data_dir: Path | None = None) -> Path:
    """A BEIR folder as given, or a named task of the registry (beir-scifact) converted into the cache."""
    if Path(source).exists():
        return Path(source)
    from polyir.data.named import named_tasks
    from polyir.data.registry import parse

    try:
        parse(str(source))
    except InputError:
        raise InputError("neither an existing BEIR folder nor a named task (polyir data list)", source) from None
    tasks = named_tasks(str(source), data_dir)
    if len(tasks) != 1:
        raise InputError(f"names {len(tasks)} tasks; expected one language (NAME:LANG)", source)
    return tasks[0].folder


def translate_beir(src: Path, out: Path, settings: JobSettings, what: str = "both", overwrite: bool = False,
                   world: World = SINGLE, show_progress: bool = True) -> Outcome:
    if what not in WHAT:
        raise InputError(f"--what must be one of {', '.join(WHAT)}, got '{what}'")
    translator = open_translator(settings)
    if not src.is_dir() or not (src / "corpus.jsonl").is_file() or not (src / "queries.jsonl").is_file():
        raise InputError("not a BEIR folder; expected corpus.jsonl, queries.jsonl and qrels/<split>.tsv", src)
    corpus = read_corpus(src / "corpus.jsonl", settings.source)
    queries = read_queries(src / "queries.jsonl", settings.source)
    _source_language(corpus, settings.source, src / "corpus.jsonl")
    _source_language(queries, settings.source, src / "queries.jsonl")
    splits = sorted((src / "qrels").glob("*.tsv")) if (src / "qrels").is_dir() else []
    if not splits:
        raise InputError("no qrels/<split>.tsv; expected a BEIR folder with relevance judgements", src)
    query_ids, doc_ids = {q.id for q in queries}, {d.id for d in corpus}
    qrels = {path.stem: read_qrels(path, query_ids, doc_ids) for path in splits}
    units = []
    if what in ("queries", "both"):
        units += [Unit("queries.jsonl", q.id, "text", q.text) for q in queries]
    if what in ("corpus", "both"):
        units += [Unit("corpus.jsonl", d.id, name, value) for d in corpus
                  for name, value in (("title", d.title), ("text", d.text))]
    sources = {"corpus.jsonl": src / "corpus.jsonl", "queries.jsonl": src / "queries.jsonl",
               **{f"qrels/{p.name}": p for p in splits}}
    outcome = run(units, settings, translator, sources, world, show_progress)
    if not world.main:
        return outcome
    done, source = outcome.translations, settings.source
    query_langs = [source, *settings.targets] if what in ("queries", "both") else [source]
    corpus_langs = [source, *settings.targets] if what in ("corpus", "both") else [source]

    def translated(where: str, record_id: str, fields: dict[str, str], lang: str) -> dict[str, str] | None:
        """The record's fields in `lang`, or None when a field was dropped."""
        if lang == source:
            return fields
        out = {name: done.get((where, record_id, name, lang)) if value.strip() else "" for name, value in
               fields.items()}
        return None if any(value is None for value in out.values()) else out

    docs, kept_docs = [], set()
    for lang in corpus_langs:
        for d in corpus:
            fields = translated("corpus.jsonl", d.id, {"title": d.title, "text": d.text}, lang)
            if fields is not None:
                docs.append({"_id": f"{d.id}-{lang}", **fields, "lang": lang})
                kept_docs.add(docs[-1]["_id"])
    rows, kept_queries = [], set()
    for lang in query_langs:
        for q in queries:
            fields = translated("queries.jsonl", q.id, {"text": q.text}, lang)
            if fields is not None:
                rows.append({"_id": f"{q.id}-{lang}", **fields, "lang": lang})
                kept_queries.add(rows[-1]["_id"])
    with atomic_dir(out, overwrite) as staging:
        write_jsonl(staging / "corpus.jsonl", docs)
        write_jsonl(staging / "queries.jsonl", rows)
        (staging / "qrels").mkdir()
        for split, judged in qrels.items():
            with (staging / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as handle:
                handle.write("query-id\tcorpus-id\tscore\n")
                for query_id, grades in judged.items():
                    for lq in query_langs:
                        if f"{query_id}-{lq}" not in kept_queries:
                            continue
                        for doc_id, grade in grades.items():
                            for ld in corpus_langs:
                                if f"{doc_id}-{ld}" in kept_docs:
                                    handle.write(f"{query_id}-{lq}\t{doc_id}-{ld}\t{grade}\n")
        outcome.manifest["what"] = what
        (staging / MANIFEST).write_text(json.dumps(outcome.manifest, indent=1, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    return outcome
