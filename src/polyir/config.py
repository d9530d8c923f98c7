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
    field_validator,
    model_validator,
)

from polyir.errors import InputError
from polyir.files import read_text
from polyir.results import METRICS, MULTI_ONLY, SETTINGS

ENCODE_BATCH_SIZE = 128  # texts per encoding batch in evaluation, wherever none is given
SamplingName = Literal["xx-mono", "xx", "xy", "hybrid"]  # sampling.BatchSampler
StepName = Literal["full", "accumulation", "gradcache"]  # steps.make_step
Weighting = Literal["uniform", "proportional"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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


def validated(cls: type[BaseModel], data: dict, path: str | Path):
    try:
        return cls(**data)
    except ValidationError as error:
        raise describe(error, path) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError("config file not found", path)
    try:
        data = yaml.load(read_text(path), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
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
    strategy: SamplingName = "hybrid"
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    weighting: Weighting = "uniform"

    @property
    def label(self) -> str:
        """For tables: hybrid(α=0.5), xy, xx-mono(proportional)."""
        name = f"hybrid(α={self.alpha:g})" if self.strategy == "hybrid" else self.strategy
        return name if self.weighting == "uniform" else f"{name}({self.weighting})"

    @property
    def slug(self) -> str:
        """For folder names: hybrid-a0.5, xy, xx-mono-proportional."""
        name = f"hybrid-a{self.alpha:g}" if self.strategy == "hybrid" else self.strategy
        return name if self.weighting == "uniform" else f"{name}-{self.weighting}"


class StepConfig(Strict):
    strategy: StepName = "full"
    batch_size: PositiveInt = 32
    micro_batch_size: PositiveInt | None = None
    chunk_size: PositiveInt | Literal["auto"] | None = Field(
        default=None, description="texts per forward pass: gradcache's chunk (default 'auto': passes bounded "
        "in padded positions, from free GPU memory), the length buckets of full (default 64 on CPU, 256 on a "
        "GPU) and accumulation (default: the micro-batch)")
    memory_gib: PositiveFloat | None = Field(
        default=None, description="GPU memory the whole step may use, for gradcache's 'auto' chunk (default: "
        "what is free)")

    @model_validator(mode="after")
    def _sizes(self) -> StepConfig:
        if self.strategy == "accumulation" and self.micro_batch_size is None:
            raise ValueError("step.micro_batch_size is required for strategy 'accumulation'")
        if self.micro_batch_size is not None and self.micro_batch_size > self.batch_size:
            raise ValueError(f"step.micro_batch_size {self.micro_batch_size} exceeds step.batch_size "
                             f"{self.batch_size}; expected at most the batch")
        if self.chunk_size == "auto" and self.strategy != "gradcache":
            raise ValueError("step.chunk_size 'auto' is for strategy 'gradcache'; give a number of texts")
        if self.strategy == "gradcache" and self.chunk_size is None:
            self.chunk_size = "auto"
        return self

    @property
    def label(self) -> str:
        """For tables: full(16), accumulation(4×16), gradcache(64, chunk 16)."""
        if self.strategy == "accumulation":
            return f"accumulation({-(-self.batch_size // self.micro_batch_size)}×{self.micro_batch_size})"
        if self.strategy == "gradcache":
            return f"gradcache({self.batch_size}, chunk {self.chunk_size})"
        return f"full({self.batch_size})"

    @property
    def slug(self) -> str:
        """For folder names: full-16, accumulation-64x16, gradcache-64x16."""
        inner = {"full": None, "accumulation": self.micro_batch_size, "gradcache": self.chunk_size}[self.strategy]
        return f"{self.strategy}-{self.batch_size}" + (f"x{inner}" if inner else "")


class OptimConfig(Strict):
    lr: PositiveFloat = 3e-5
    weight_decay: NonNegativeFloat = 0.01
    warmup_steps: NonNegativeInt = 0
    max_steps: PositiveInt = 1000
    max_examples: PositiveInt | None = Field(default=None, description="also stop after this many pairs")
    max_seconds: PositiveFloat | None = Field(default=None, description="also stop after this much training "
                                              "time (evaluation and checkpoints excluded)")
    temperature: PositiveFloat = 0.05
    symmetric: bool = False
    max_grad_norm: PositiveFloat | None = 1.0
    freeze_embeddings: bool = Field(default=False, description="keep the input token embeddings as they are: "
                                    "tokens of languages never trained on keep their pretrained vectors (no weight "
                                    "decay either), and a large vocabulary costs no gradient or optimiser state")


class EvalConfig(Strict):
    every_steps: PositiveInt = 100
    every_examples: PositiveInt | None = Field(default=None, description="evaluate each time this many more "
                                               "examples have been seen (instead of every_steps)")
    at_start: bool = Field(default=True, description="evaluate before the first step: the curve's origin")
    metric: str = Field(default="multi/map", description="SETTING/METRIC of the dev curve and the kept model")
    depth: PositiveInt = 100
    batch_size: PositiveInt = ENCODE_BATCH_SIZE

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        setting, _, metric = value.partition("/")
        if setting not in SETTINGS or metric not in METRICS:
            raise ValueError(f"expected SETTING/METRIC with SETTING one of {', '.join(SETTINGS)} and METRIC one of "
                             f"{', '.join(METRICS)}")
        if metric in MULTI_ONLY and setting != "multi":
            raise ValueError(f"{metric} exists only in the multi setting (several relevant documents per query)")
        return value


class CheckpointConfig(Strict):
    every_steps: PositiveInt = 500
    keep: PositiveInt = 2


class RunSettings(Strict):
    """What a single `polyir train` and every run of a `polyir compare` grid are configured by alike."""

    model: ModelConfig
    optim: OptimConfig = Field(default_factory=OptimConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    precision: Literal["auto", "fp32", "bf16", "bf16-weights"] = Field(
        default="auto", description="auto: bf16 on CUDA, fp32 elsewhere; bf16: autocast over float32 weights; "
        "bf16-weights: forward and backward on a bf16 copy of the weights, float32 master weights and gradient "
        "sums (precision.py)")
    compile: bool = Field(default=False, description="torch.compile the encoder (pays little, and only without "
                          "M2M-100's layer drop, whose Python branch breaks the graph at every layer)")


class TrainConfig(RunSettings):
    output_dir: Path
    seed: int = 0
    data: DataConfig
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    step: StepConfig = Field(default_factory=StepConfig)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Validate a YAML file; relative paths in it are taken from the current directory."""
        return validated(cls, load_yaml(path), path)


class DatasetConfig(Strict):
    """XQuAD-R split by article into train / dev / test, prepared by polyir inside the comparison's folder."""

    name: Literal["xquad-r"] = "xquad-r"
    languages: list[str] | None = Field(default=None, description="subset of the data set's languages")
    dev: float = Field(default=0.1, gt=0.0, lt=1.0, description="share of articles for dev")
    test: float = Field(default=0.25, gt=0.0, lt=1.0, description="share of articles for test")
    seed: int = 0
    bitext: list[str] | None = Field(default=None, description="FLORES codes for a bitext test task")
    bitext_pivot: str = "eng_Latn"
    bitext_dev: float = Field(default=0.0, ge=0.0, lt=1.0, description="share of the bitext lines kept apart as a "
                              "dev task (every language pooled), so that the kept model is chosen on those "
                              "languages too; the test task has the other lines")

    @model_validator(mode="after")
    def _bitext_dev(self) -> DatasetConfig:
        if self.bitext_dev and not self.bitext:
            raise ValueError("dataset.bitext_dev needs dataset.bitext (the FLORES codes whose lines it splits)")
        return self


class CompareDataConfig(Strict):
    train: Path | None = None
    languages: list[str] | None = Field(default=None, description="training languages; others are zero-shot")
    dev: list[Path] = Field(default_factory=list)
    test: list[Path] = Field(default_factory=list)
    dev_lang: str | None = None
    test_splits: dict[str, str] = Field(default_factory=dict, description="test folder name -> qrels split, "
                                        "where not 'test' (named tasks such as MIRACL's dev)")


class TranslatedSet(Strict):
    """A data set the comparison makes by machine translation (polyir translate), once, under output_dir/data."""

    source: str = Field(description="a path (train: train.jsonl, BEIR folder or SQuAD .json; test: BEIR folder) or, "
                        "for a test set, a named task of the registry (beir-scifact)")
    languages: list[str] = Field(min_length=1, description="target languages")
    source_language: str = "en"
    model: str = "facebook/m2m100_418M"
    what: Literal["queries", "corpus", "both"] = Field(default="both", description="test sets: what is translated")
    split: str = Field(default="train", description="train sets from a BEIR folder: the qrels split of the pairs")
    name: str | None = Field(default=None, description="folder (and test task) name; default from the source")


class TranslateConfig(Strict):
    """Generation settings shared by every translated set, and the sets: training data and test collections."""

    backend: Literal["huggingface", "ctranslate2"] = "huggingface"
    precision: Literal["auto", "float32", "bfloat16", "int8"] = "auto"
    beam_size: PositiveInt = 5
    max_input_tokens: int = Field(default=200, ge=8)
    max_new_tokens: PositiveInt = 256
    batch_size: PositiveInt = 32
    drop: list[Literal["empty", "copy", "loop", "length-ratio", "wrong-script", "wrong-language", "round-trip"]] = \
        Field(default_factory=list, description="quality flags that drop a translation")
    language_id: Literal["accurate", "fast", "off"] = "accurate"
    cache: Path | None = None
    train: TranslatedSet | None = None
    test: list[TranslatedSet] = Field(default_factory=list)


class GridConfig(Strict):
    sampling: list[SamplingConfig] = Field(min_length=1)
    step: list[StepConfig] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)


class BudgetConfig(Strict):
    """The same budget for every run: optimiser steps, examples seen, or training seconds (one of them)."""

    steps: PositiveInt | None = None
    examples: PositiveInt | None = None
    seconds: PositiveFloat | None = None

    @model_validator(mode="after")
    def _one(self) -> BudgetConfig:
        if sum(v is not None for v in (self.steps, self.examples, self.seconds)) != 1:
            raise ValueError("give exactly one of budget.steps, budget.examples, budget.seconds")
        return self


class TestConfig(Strict):
    depth: PositiveInt = 100
    metric: Literal[METRICS] = Field(default="map", description="metric of the significance tests")
    suite: str | None = Field(default=None, description="a benchmark suite (name or YAML file) whose named tasks "
                              "are test tasks too; tasks whose files are absent are skipped with a warning")
    tasks: list[str] = Field(default_factory=list, description="named tasks NAME[:LANG,...] tested too")
    lexical: bool = Field(default=True, description="BM25 (polyir.lexical) evaluated once on the test tasks, a row "
                          "of every zero-shot table: the lexical baseline")


class CompareConfig(RunSettings):
    output_dir: Path
    dataset: DatasetConfig | None = None
    data: CompareDataConfig = Field(default_factory=CompareDataConfig)
    grid: GridConfig
    budget: BudgetConfig
    test: TestConfig = Field(default_factory=TestConfig)
    translate: TranslateConfig | None = None
    target: float = Field(default=0.95, gt=0.0, le=1.0, description="share of the grid's best dev score to reach")

    @model_validator(mode="after")
    def _data(self) -> CompareConfig:
        translated = self.translate or TranslateConfig()
        if self.dataset is None and ((self.data.train is None and translated.train is None) or not self.data.dev
                                     or not (self.data.test or translated.test)):
            raise ValueError("give either dataset (prepared by polyir) or data.train (or translate.train), data.dev "
                             "and data.test (or translate.test)")
        return self

    @classmethod
    def load(cls, path: str | Path, **overrides) -> CompareConfig:
        """Validate a YAML file; `overrides` are dotted keys (model.name_or_path=...) applied first."""
        data = load_yaml(path)
        for dotted, value in overrides.items():
            *parents, leaf = dotted.split(".")
            node = data
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        return validated(cls, data, path)
