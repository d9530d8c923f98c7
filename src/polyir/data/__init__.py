"""Data records, readers and writers: parallel training examples and BEIR retrieval tasks."""

from __future__ import annotations

from polyir.data.beir import read_beir, read_tasks, task_names, write_beir
from polyir.data.records import Document, ParallelExample, Query, RetrievalTask
from polyir.data.trainset import read_train, write_train

__all__ = [
    "Document", "ParallelExample", "Query", "RetrievalTask", "read_beir", "read_tasks", "read_train", "task_names",
    "write_beir", "write_train",
]
