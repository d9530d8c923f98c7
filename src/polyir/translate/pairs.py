"""`polyir translate train`: English (or any one language's) training pairs → parallel `train.jsonl`, one id per
example, the query, the positive and every hard negative in every language. The pairs come from a `train.jsonl`,
a BEIR folder's training qrels (the best-graded document is the positive, judged non-relevant ones are hard
negatives), or SQuAD-format QA (the question, and the sentence of the context that holds the answer)."""

from __future__ import annotations

import json
from pathlib import Path

from sentencex import get_sentence_boundaries

from polyir.data.beir import read_corpus, read_qrels, read_queries
from polyir.data.records import ParallelExample
from polyir.data.trainset import read_train, write_train
from polyir.distributed import SINGLE, World
from polyir.errors import InputError
from polyir.files import atomic_dir, read_text
from polyir.languages import base_language
from polyir.translate.job import MANIFEST, JobSettings, Outcome, Unit, open_translator, run

TRAIN_FILE = "train.jsonl"


def _from_train(path: Path, lang: str) -> list[ParallelExample]:
    examples = read_train(path)
    for example in examples:
        if lang not in example.query or lang not in example.positive:
            raise InputError(f"example '{example.id}' has no '{lang}' query and positive; expected pairs in the "
                             f"--from language", path)
    return [ParallelExample(e.id, {lang: e.query[lang]}, {lang: e.positive[lang]},
                            [{lang: n[lang]} for n in e.negatives if lang in n]) for e in examples]


def _from_beir(folder: Path, lang: str, split: str) -> list[ParallelExample]:
    corpus = {d.id: d for d in read_corpus(folder / "corpus.jsonl", lang)}
    queries = read_queries(folder / "queries.jsonl", lang)
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv", {q.id for q in queries}, set(corpus))

    def text(doc_id: str) -> str:
        doc = corpus[doc_id]
        return f"{doc.title} {doc.text}".strip() if doc.title else doc.text

    examples = []
    for query in queries:
        judged = qrels.get(query.id, {})
        relevant = sorted((doc for doc, grade in judged.items() if grade > 0), key=lambda doc: -judged[doc])
        if relevant:
            examples.append(ParallelExample(query.id, {lang: query.text}, {lang: text(relevant[0])},
                                            [{lang: text(doc)} for doc, grade in judged.items() if grade <= 0]))
    return examples


def _squad_field(record: object, key: str, kind: type, path: Path, where: str):
    if not isinstance(record, dict) or not isinstance(record.get(key), kind):
        raise InputError(f"{where}.{key} is missing or not a {kind.__name__}; expected SQuAD-format JSON "
                         "(data[].paragraphs[].context and .qas[].question/.answers[].answer_start)", path)
    return record[key]


def _answer_sentence(context: str, start: int, lang: str, paragraph: dict) -> str:
    """The sentence holding character `start`: the paragraph's own `sentence_breaks` (XQuAD-R) or sentencex's."""
    breaks = paragraph.get("sentence_breaks")
    spans = ([tuple(span) for span in breaks] if isinstance(breaks, list) else
             [(b["start_index"], b["end_index"]) for b in get_sentence_boundaries(base_language(lang), context)])
    for begin, end in spans:
        if begin <= start < end:
            return context[begin:end].strip()
    return context.strip()


def _from_squad(path: Path, lang: str) -> list[ParallelExample]:
    try:
        document = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON ({error.msg}); expected SQuAD-format QA", path, error.lineno) from None
    examples, seen = [], set()
    for a, article in enumerate(_squad_field(document, "data", list, path, "")):
        for p, paragraph in enumerate(_squad_field(article, "paragraphs", list, path, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            context = _squad_field(paragraph, "context", str, path, where)
            for i, qa in enumerate(_squad_field(paragraph, "qas", list, path, where)):
                question = _squad_field(qa, "question", str, path, f"{where}.qas[{i}]")
                answers = _squad_field(qa, "answers", list, path, f"{where}.qas[{i}]")
                qid = str(_squad_field(qa, "id", (str, int), path, f"{where}.qas[{i}]"))
                if not answers:
                    continue  # SQuAD 2.0's unanswerable questions have no positive
                start = _squad_field(answers[0], "answer_start", int, path, f"{where}.qas[{i}].answers[0]")
                if not 0 <= start < len(context) or qid in seen:
                    raise InputError(f"{where}.qas[{i}]: answer_start {start} outside the context, or id '{qid}' "
                                     "repeated; expected unique ids and answers inside their context", path)
                seen.add(qid)
                examples.append(ParallelExample(qid, {lang: question},
                                                {lang: _answer_sentence(context, start, lang, paragraph)}))
    if not examples:
        raise InputError("no answered question; expected SQuAD-format QA", path)
    return examples


def read_pairs(src: Path, lang: str, split: str = "train") -> list[ParallelExample]:
    """Training pairs in language `lang` from a train.jsonl, a BEIR folder, or a SQuAD-format JSON file."""
    if src.is_dir() and (src / "corpus.jsonl").is_file():
        return _from_beir(src, lang, split)
    if src.is_dir() and (src / TRAIN_FILE).is_file():
        return _from_train(src / TRAIN_FILE, lang)
    if src.is_file() and src.suffix == ".jsonl":
        return _from_train(src, lang)
    if src.is_file() and src.suffix == ".json":
        return _from_squad(src, lang)
    raise InputError("not a source of training pairs; expected a train.jsonl, a BEIR folder (corpus.jsonl, "
                     "queries.jsonl, qrels/<split>.tsv) or a SQuAD-format .json file", src)


def translate_train(src: Path, out: Path, settings: JobSettings, split: str = "train", overwrite: bool = False,
                    world: World = SINGLE, show_progress: bool = True) -> Outcome:
    """OUT/train.jsonl (and OUT/translation.json) from the pairs of `src`."""
    translator = open_translator(settings)
    examples = read_pairs(src, settings.source, split)
    units = []
    for e in examples:
        units += [Unit(TRAIN_FILE, e.id, "query", e.query[settings.source]),
                  Unit(TRAIN_FILE, e.id, "positive", e.positive[settings.source]),
                  *(Unit(TRAIN_FILE, e.id, f"negatives[{i}]", n[settings.source]) for i, n in enumerate(e.negatives))]
    outcome = run(units, settings, translator, {src.name: src}, world, show_progress)
    if not world.main:
        return outcome
    done, langs = outcome.translations, settings.targets

    def versions(example_id: str, name: str, original: dict[str, str]) -> dict[str, str]:
        found = {lang: done.get((TRAIN_FILE, example_id, name, lang)) for lang in langs}
        return {**original, **{lang: text for lang, text in found.items() if text and text.strip()}}

    parallel = [ParallelExample(e.id, versions(e.id, "query", e.query), versions(e.id, "positive", e.positive),
                                [versions(e.id, f"negatives[{i}]", n) for i, n in enumerate(e.negatives)])
                for e in examples]
    with atomic_dir(out, overwrite) as staging:
        write_train(parallel, staging / TRAIN_FILE)
        (staging / MANIFEST).write_text(json.dumps(outcome.manifest, indent=1, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    return outcome
