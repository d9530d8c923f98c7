"""Zero-shot evaluation: exact search (search.py), LAReQA settings (mono / cross / multi) and their tables
(harness.py), standard and LAReQA metrics (metrics.py), BM25 and its fusion with a dense model (lexical.py), and
models × named tasks (benchmark.py)."""

from __future__ import annotations

from polyir.evaluation.harness import SETTINGS, TaskEvaluation, evaluate_embeddings, evaluate_task

__all__ = ["SETTINGS", "TaskEvaluation", "evaluate_embeddings", "evaluate_task"]
