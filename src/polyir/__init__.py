"""polyir: train and evaluate multilingual dense retrievers.

The public API, importable from here (loaded on first use, so that `import polyir` stays cheap):
`BiEncoder`, `train`, `evaluate`, `compare`, the readers `read_beir` and `read_train`, and the configuration
models (`TrainConfig`, `CompareConfig` and their sections). docs/architecture.md maps the rest of the package."""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_PUBLIC = {
    "BiEncoder": "polyir.models.biencoder",
    "train": "polyir.training.trainer",
    "evaluate": ("polyir.evaluation.harness", "evaluate_task"),
    "compare": "polyir.comparison",
    "read_beir": "polyir.data",
    "read_train": "polyir.data",
    **{name: "polyir.config" for name in (
        "TrainConfig", "CompareConfig", "ModelConfig", "EncoderSettings", "DataConfig", "SamplingConfig",
        "StepConfig", "OptimConfig", "EvalConfig", "CheckpointConfig", "DatasetConfig", "CompareDataConfig",
        "GridConfig", "BudgetConfig", "TestConfig", "TranslateConfig", "TranslatedSet")},
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'polyir' has no attribute {name!r}")
    module, attribute = _PUBLIC[name] if isinstance(_PUBLIC[name], tuple) else (_PUBLIC[name], name)
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
