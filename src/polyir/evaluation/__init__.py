"""Zero-shot evaluation: exact search, LAReQA settings (mono / cross / multi), standard and LAReQA metrics."""

from __future__ import annotations

from polyir.evaluate.harness import SETTINGS, TaskEvaluation, evaluate_embeddings, evaluate_task

__all__ = ["SETTINGS", "TaskEvaluation", "evaluate_embeddings", "evaluate_task"]
