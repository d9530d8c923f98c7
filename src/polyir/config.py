"""Validated configuration: YAML or JSON in, typed settings out, and a message naming the key when it is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from polyir.errors import InputError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EncoderSettings(Strict):
    """How a backbone becomes a sentence encoder; saved beside the weights as polyir_config.json."""

    pooling: Literal["mean", "cls"] = "mean"
    normalize: bool = True
    query_prefix: str = "Query: "
    passage_prefix: str = "Passage: "
    max_query_length: PositiveInt = 64
    max_passage_length: PositiveInt = 256
    lang_map: dict[str, str | None] = Field(
        default_factory=dict,
        description="dataset code -> model language code; null = no language token (explicit fallback)",
    )


class ModelConfig(EncoderSettings):
    name_or_path: str


def describe(error: ValidationError, path: str | Path | None) -> InputError:
    """Turn pydantic's report into one line per wrong key: `model.pooling: expected 'mean' or 'cls'`."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{key}: {item['msg']}" + (f" (got {item['input']!r})" if item["type"] != "missing" else ""))
    return InputError("invalid configuration\n  " + "\n  ".join(lines), path)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError("config file not found", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise InputError(f"malformed YAML: {getattr(error, 'problem', error)}", path,
                         mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping of configuration keys at the top level", path)
    return data


class DataConfig(Strict):
    train: Path
    languages: list[str] | None = Field(default=None, description="training languages (default: all in the data)")
    dev: list[Path] = Field(default_factory=list, description="BEIR folders evaluated during training")
    dev_lang: str | None = Field(default=None, description="language of dev folders without `lang` fields")


class SamplingConfig(Strict):
    strategy: Literal["xx-mono", "xx", "xy", "hybrid"] = "hybrid"
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    weighting: Literal["uniform", "proportional"] = "uniform"


class StepConfig(Strict):
    strategy: Literal["full", "accumulation", "gradcache"] = "full"
    batch_size: PositiveInt = 32
    micro_batch_size: PositiveInt | None = None
    chunk_size: PositiveInt | None = None

    @model_validator(mode="after")
    def _sizes(self) -> StepConfig:
        if self.strategy == "accumulation" and self.micro_batch_size is None:
            raise ValueError("step.micro_batch_size is required for strategy 'accumulation'")
        if self.strategy == "gradcache" and self.chunk_size is None:
            raise ValueError("step.chunk_size is required for strategy 'gradcache'")
        return self


class OptimConfig(Strict):
    lr: PositiveFloat = 3e-5
    weight_decay: NonNegativeFloat = 0.01
    warmup_steps: NonNegativeInt = 0
    max_steps: PositiveInt = 1000
    temperature: PositiveFloat = 0.05
    symmetric: bool = False
    max_grad_norm: PositiveFloat | None = 1.0


class EvalConfig(Strict):
    every_steps: PositiveInt = 100
    at_start: bool = Field(default=True, description="evaluate before the first step: the curve's origin")
    metric: str = Field(default="multi/map", pattern=r"^(mono|cross|multi)/[a-z0-9@_]+$")
    depth: PositiveInt = 100
    batch_size: PositiveInt = 128


class CheckpointConfig(Strict):
    every_steps: PositiveInt = 500
    keep: PositiveInt = 2


class TrainConfig(Strict):
    output_dir: Path
    seed: int = 0
    model: ModelConfig
    data: DataConfig
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    step: StepConfig = Field(default_factory=StepConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    precision: Literal["auto", "fp32", "bf16"] = "auto"

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Validate a YAML file; relative paths in it are taken from the current directory."""
        try:
            return cls(**load_yaml(path))
        except ValidationError as error:
            raise describe(error, path) from None
