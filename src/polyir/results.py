"""Typed records of what polyir produces, from one task's metrics to the comparison's summary. Each is the schema
of a file the README documents: `TaskMetrics` a task's entry in metrics.json, `LogEntry` a line of log.jsonl,
`CellResult` a run's result.json, `Summary` a comparison's results.json."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

SETTINGS = ("mono", "cross", "multi")
METRICS = ("map", "ndcg@10", "recall@1", "recall@10", "recall@100", "mrr@10", "rank_distance")
MULTI_ONLY = frozenset({"rank_distance"})  # needs several relevant documents per query: the pooled corpus
LOWER_IS_BETTER = frozenset({"rank_distance"})

Values = dict[str, float]  # metric -> value ("n", the query count, too, in per-language entries)
Table = dict[str, Values]  # language ("de") or ordered pair ("de->en") -> values
PerQuery = dict[str, dict[str, dict[str, Values]]]  # setting -> language or pair -> query id -> values
MeanStd = tuple[float, float]  # mean and standard deviation over seeds


def better(metric: str, a: float, b: float) -> bool:
    """Whether score `a` beats `b` on `metric`."""
    return a < b if metric in LOWER_IS_BETTER else a > b


def best(metric: str, values):
    """The best of `values` on `metric`."""
    return (min if metric in LOWER_IS_BETTER else max)(values)


class Record(BaseModel):
    # NaN stays NaN in the JSON files (as the json module writes it), not null
    model_config = ConfigDict(ser_json_inf_nan="constants")


class TaskMetrics(Record):
    """One task's metrics per setting and language (or pair), and their macro averages."""

    summary: dict[str, Values] = Field(default_factory=dict)  # setting -> macro-averaged values
    mono: Table = Field(default_factory=dict)
    cross: Table = Field(default_factory=dict)
    multi: Table = Field(default_factory=dict)

    def setting(self, name: str) -> Table:
        return getattr(self, name)

    @property
    def settings(self) -> list[str]:
        """The settings the task's languages allow, in SETTINGS order."""
        return [name for name in SETTINGS if self.setting(name)]

    def as_json(self) -> dict:
        """metrics.json's layout: `summary`, then only the settings that apply."""
        return self.model_dump(mode="json", exclude={name for name in SETTINGS if not self.setting(name)})


class TaskEvaluation(Record):
    """A task's metrics and the per-query values behind them (the units of the significance tests)."""

    table: TaskMetrics = Field(default_factory=TaskMetrics)
    per_query: PerQuery = Field(default_factory=dict)


class LogEntry(Record):
    """One line of log.jsonl: a training step, or step 0 (the untrained model's dev scores, `loss` None)."""

    model_config = ConfigDict(extra="allow", ser_json_inf_nan="constants")
    step: int
    examples: int
    seconds: float
    loss: float | None = None
    batch: int | None = None
    lr: float | None = None
    pairs_per_second: float | None = None
    train_seconds: float | None = None
    peak_memory_gib: float | None = None
    grad_norm: float | None = None
    negatives: dict[str, float] | None = None  # per query of the step, by kind (training.negatives.FIELDS)
    drawn: dict | None = None  # on evaluation steps: pairs drawn since the last one (xx, xy, languages)
    dev: dict[str, dict[str, Values]] = Field(default_factory=dict)  # dev task -> its metrics.json summary
    encoder: dict[str, dict] | None = None  # on a session's first line: each encoder setting's value and source
    changed_on_resume: dict[str, list] | None = None  # settings a resume changed: key -> [old, new]


class CellResult(Record):
    """result.json of one grid cell: its training log and its best model's test evaluations."""

    cell: str
    strategy: str
    seed: int
    log: list[LogEntry]
    test: dict[str, TaskEvaluation]


class Untrained(Record):
    """untrained/result.json of a comparison: the starting model's dev and test scores, read against every cell."""

    dev: dict[str, dict[str, Values]]  # dev task -> its metrics.json summary (every cell's step 0)
    test: dict[str, TaskEvaluation]


class CurvePoint(Record):
    step: int
    examples: int
    seconds: float
    value: float  # the dev metric, averaged over dev tasks


class Convergence(Record):
    """When a run first reached the target (None: never), on each axis; the mean dev score over the steps covered
    (area under the curve / steps: higher is faster and better); the best dev score."""

    step: int | None = None
    examples: int | None = None
    seconds: float | None = None
    auc: float | None = None
    best: float | None = None


class RunSummary(Record):
    cell: str
    strategy: str
    seed: int
    curve: list[CurvePoint]
    convergence: Convergence
    pairs_per_second: float
    peak_memory_gib: float | None
    negatives: dict[str, float] = Field(default_factory=dict)  # per query, mean over the run's steps, by kind
    drawn: dict = Field(default_factory=dict)  # pairs drawn over the run: xx, xy, languages
    test: dict[str, dict[str, Values]]  # task -> setting -> macro averages


class StrategySummary(Record):
    """A strategy over its seeds: means to target (None unless every seed reached it), mean ± std of scores."""

    seeds: int
    step_to_target: float | None
    examples_to_target: float | None
    seconds_to_target: float | None
    auc: MeanStd
    best_dev: MeanStd
    pairs_per_second: float
    peak_memory_gib: float
    negatives: dict[str, float] = Field(default_factory=dict)  # per query, mean over runs and steps, by kind
    test: dict[str, dict[str, dict[str, MeanStd]]]  # task -> setting -> metric -> mean ± std

    def to_target(self, axis: str) -> float | None:
        return getattr(self, f"{axis}_to_target")


class PairedTest(Record):
    n: int
    difference: float  # mean of strategy - reference over the shared units
    p: float


class BelowStart(Record):
    """A test language (or pair) where a strategy ends below the model it started from: forgetting."""

    strategy: str
    task: str
    setting: str
    key: str
    value: float  # map, mean over seeds
    untrained: float


class Change(Record):
    """A strategy's change against the untrained model on one test language (or pair): per-query map difference,
    mean over seeds, with a 95% bootstrap interval and p-values (raw, and Holm-adjusted over the report)."""

    strategy: str
    task: str
    setting: str
    key: str
    trained: bool  # every language of the key was trained on
    difference: float
    low: float
    high: float
    p: float
    p_holm: float = float("nan")


def sum_drawn(parts: list[dict]) -> dict:
    """`drawn` records (log.jsonl: pairs per evaluation interval; or per run) added up: X-X, X-Y, per language
    (pair) and per source; {} for none."""
    total: dict = {"xx": 0, "xy": 0, "languages": {}, "sources": {}}
    for drawn in parts:
        total["xx"] += drawn["xx"]
        total["xy"] += drawn["xy"]
        for part in ("languages", "sources"):
            for key, count in drawn.get(part, {}).items():
                total[part][key] = total[part].get(key, 0) + count
    return total if parts else {}


class InterpolationPoint(Record):
    """A strategy's kept model interpolated with the starting one, (1 − weight)·start + weight·trained (weight 0:
    the untrained model, 1: the strategy as trained): its test scores, mean over seeds."""

    strategy: str
    weight: float
    test: dict[str, dict[str, float]]  # task -> setting -> the test metric (macro average)
    trained: float | None  # mean map per language over the test languages every one of whose sides was trained
    unseen: float | None  # mean map per language over the entries with a language never trained on


class Summary(Record):
    """Every number of a comparison (results.json); `answer` is the report's words on them."""

    question: str
    metric: str
    target_share: float
    target: float
    reference: str
    training_languages: list[str] | None
    data: str  # where the prepared data came from
    encoder: dict[str, dict] | None = None  # setting -> {"value", "from": user | model | default}, as trained
    runs: list[RunSummary]
    strategies: dict[str, StrategySummary]
    significance: dict[str, dict[str, dict[str, PairedTest]]]  # task -> setting -> strategy -> test
    per_language: dict[str, dict[str, dict[str, dict[str, float]]]]  # task -> setting -> key -> strategy -> map
    untrained: dict[str, dict[str, Values]] = Field(default_factory=dict)  # task -> setting -> macro averages
    untrained_per_language: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)  # task->setting->key
    below_untrained: list[BelowStart] = Field(default_factory=list)
    lexical: dict[str, dict[str, Values]] = Field(default_factory=dict)  # BM25: task -> setting -> macro averages
    lexical_per_language: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)
    interpolation: list[InterpolationPoint] = Field(default_factory=list)  # WiSE-FT curves, when asked
    changes: list[Change] = Field(default_factory=list)  # each strategy against the untrained model, per language
    machine: str
    date: str
    answer: list[str] = Field(default_factory=list)
