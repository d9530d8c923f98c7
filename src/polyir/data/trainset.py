"""Read and write `train.jsonl`: one parallel example per line, every text keyed by its language."""

from __future__ import annotations

from pathlib import Path

from polyir.data.records import ParallelExample
from polyir.errors import InputError
from polyir.files import read_jsonl, require, write_jsonl


def _texts(value: object, what: str, path: Path, line: int) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise InputError(f"'{what}' must be a non-empty object {{language: text}}", path, line)
    for lang, text in value.items():
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"'{what}.{lang}' must be a non-empty string", path, line)
    return value


def read_train(path: str | Path) -> list[ParallelExample]:
    path = Path(path)
    examples, seen = [], {}
    for line, record in read_jsonl(path):
        example_id = str(require(record, "id", (str, int), path, line))
        if example_id in seen:
            raise InputError(f"duplicate id '{example_id}' (first on line {seen[example_id]})", path, line)
        seen[example_id] = line
        query = _texts(require(record, "query", dict, path, line), "query", path, line)
        positive = _texts(require(record, "positive", dict, path, line), "positive", path, line)
        negatives = record.get("negatives", [])
        if not isinstance(negatives, list):
            raise InputError("'negatives' must be a list of objects {language: text}", path, line)
        negatives = [_texts(n, f"negatives[{i}]", path, line) for i, n in enumerate(negatives)]
        example = ParallelExample(example_id, query, positive, negatives)
        if not example.languages:
            raise InputError("'query' and 'positive' share no language; expected at least one in both", path, line)
        examples.append(example)
    return examples


def write_train(examples: list[ParallelExample], path: Path) -> None:
    def record(example: ParallelExample) -> dict:
        out = {"id": example.id, "query": example.query, "positive": example.positive}
        if example.negatives:
            out["negatives"] = example.negatives
        return out

    write_jsonl(path, (record(e) for e in examples))
