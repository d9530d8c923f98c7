"""Training data that reappears in an evaluation task: the same query (by id, or by its text in the same
language) makes "zero-shot" numbers a memory test. Found before training, refused unless the user allows it."""

from __future__ import annotations

from polyir.data.records import ParallelExample, RetrievalTask
from polyir.errors import InputError


def _text(text: str) -> str:
    return " ".join(text.split()).casefold()


def overlap(examples: list[ParallelExample], task: RetrievalTask) -> tuple[int, int]:
    """(queries of the task that are training queries by id, those that are by text in the same language)."""
    ids = {example.id for example in examples}
    texts = {(lang, _text(text)) for example in examples for lang, text in example.query.items()}
    by_id = by_text = 0
    for query in task.queries:
        if query.id in ids or query.id.removesuffix(f"-{query.lang}") in ids:
            by_id += 1
        elif (query.lang, _text(query.text)) in texts:
            by_text += 1
    return by_id, by_text


def refuse_overlap(examples: list[ParallelExample], tasks: dict[str, RetrievalTask], key: str) -> None:
    """InputError naming the first task (by its folder) whose queries are training queries; `key`: the option
    that allows it."""
    for folder, task in tasks.items():
        by_id, by_text = overlap(examples, task)
        if by_id or by_text:
            raise InputError(f"{by_id + by_text} of its {len(task.queries)} queries are training queries ({by_id} "
                             f"by id, {by_text} by their text in the same language): its scores would not be "
                             f"zero-shot; expected a task apart from the training data, or {key}: true to "
                             "evaluate on it anyway", folder)
