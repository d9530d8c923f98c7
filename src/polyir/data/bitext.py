"""Line-aligned translations (`<code>.txt`, line N of every file is one sentence) → a bitext-retrieval task.

Queries are each language's sentences; the relevant document of a query is the same line in the corpus
languages. By default the corpus is the pivot language; `pooled` puts every language in one corpus (the
query's own line is then excluded from its ranking, as BEIR does for identical query and document ids)."""

from __future__ import annotations

from pathlib import Path

from polyir.data.records import Document, ParallelExample, Query, RetrievalTask
from polyir.errors import InputError
from polyir.files import text_lines

IDS_FILE = "ids.txt"  # optional: the original id of each line (FLORES / SIB-200 index_id)


def _read_lines(path: Path) -> list[str]:
    lines = [text for _, text in text_lines(path)]
    if not lines:
        raise InputError("empty file; expected one sentence per line", path)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise InputError("blank line; expected one sentence on every line", path, number)
    return lines


def read_bitext(src_dir: str | Path, languages: list[str] | None = None) -> tuple[list[str], dict[str, list[str]]]:
    """Return (line ids, {language: lines}); all files must have the same number of lines."""
    src_dir = Path(src_dir)
    available = sorted(p.stem for p in src_dir.glob("*.txt") if p.name != IDS_FILE) if src_dir.is_dir() else []
    if not available:
        raise InputError("no <code>.txt files found; expected line-aligned files, one per language", src_dir)
    languages = languages or available
    missing = [lang for lang in languages if lang not in available]
    if missing:
        raise InputError(f"no file for language(s) {', '.join(missing)}; available: {', '.join(available)}", src_dir)
    texts = {lang: _read_lines(src_dir / f"{lang}.txt") for lang in languages}
    ids_path = src_dir / IDS_FILE
    ids = _read_lines(ids_path) if ids_path.is_file() else [str(n) for n in range(1, len(texts[languages[0]]) + 1)]
    if len(set(ids)) != len(ids):
        raise InputError("duplicate line ids; expected one unique id per line", ids_path)
    for lang, lines in texts.items():
        if len(lines) != len(ids):
            reference = ids_path.name if ids_path.is_file() else f"{languages[0]}.txt"
            raise InputError(f"{len(lines)} lines, but {reference} has {len(ids)}; expected line-aligned files",
                             src_dir / f"{lang}.txt")
    return ids, texts


def bitext_task(src_dir: str | Path, pivot: str, languages: list[str] | None = None, pooled: bool = False,
                name: str = "bitext", lines: list[int] | None = None) -> RetrievalTask:
    """The task of every line, or of those `lines` (0-based positions), so that dev and test lines stay apart."""
    if languages and pivot not in languages:
        languages = [*languages, pivot]
    ids, texts = read_bitext(src_dir, languages)
    if pivot not in texts:
        raise InputError(f"pivot '{pivot}' has no file; expected one of {', '.join(texts)}", src_dir)
    return aligned_task(ids, texts, pivot, pooled, name, lines)


def aligned_task(ids: list[str], texts: dict[str, list[str]], pivot: str, pooled: bool = False,
                 name: str = "bitext", lines: list[int] | None = None) -> RetrievalTask:
    """The bitext task of line-aligned `texts` (language -> lines, each line id in `ids`)."""
    if lines is not None:
        ids = [ids[n] for n in lines]
        texts = {lang: [rows[n] for n in lines] for lang, rows in texts.items()}
    corpus_langs = list(texts) if pooled else [pivot]
    query_langs = list(texts) if pooled else [lang for lang in texts if lang != pivot]
    corpus = [Document(f"{lang}-{i}", texts[lang][n], lang) for lang in corpus_langs for n, i in enumerate(ids)]
    queries, qrels = [], {}
    for lang in query_langs:
        for n, i in enumerate(ids):
            queries.append(Query(f"{lang}-{i}", texts[lang][n], lang))
            qrels[queries[-1].id] = {f"{other}-{i}": 1 for other in corpus_langs if other != lang}
    return RetrievalTask(name, corpus, queries, qrels)


def bitext_examples(ids: list[str], texts: dict[str, list[str]], lines: list[int]) -> list[ParallelExample]:
    """Training examples from human translations: line N is one example whose query and positive are that
    sentence in every language, so an X-Y pair is a sentence and its translation (translation ranking, as LaBSE
    trains); an X-X pair is the sentence itself and teaches nothing, so sample these with xy or hybrid."""
    return [ParallelExample(ids[n], {lang: rows[n] for lang, rows in texts.items()},
                            {lang: rows[n] for lang, rows in texts.items()}) for n in lines]


def write_lines(ids: list[str], texts: dict[str, list[str]], lines: list[int], folder: Path) -> None:
    """Those `lines` of `texts` as a line-aligned folder again (`<code>.txt`, `ids.txt`): the training share's
    sentences, e.g. distillation texts (`retention.distill.texts`) that are not the held-out test lines."""
    folder.mkdir()
    files = {f"{lang}.txt": rows for lang, rows in texts.items()} | {IDS_FILE: ids}
    for name, rows in files.items():
        (folder / name).write_text("".join(f"{rows[n]}\n" for n in lines), encoding="utf-8")
