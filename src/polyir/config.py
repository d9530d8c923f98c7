"""Validated configuration: YAML or JSON in, typed settings out, and a message naming the key when it is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

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
