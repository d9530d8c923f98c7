"""A comparison grid: every (sampling, step, seed) cell is one training run with the same data, the same order of
examples where the strategy allows (the sampler's seed), and the same budget; its best model is then evaluated
zero-shot on the test tasks. Cells already complete are skipped; a half-finished cell resumes."""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pydantic import BaseModel, ValidationError

from polyir import guard, provenance
from polyir.config import (
    CompareConfig,
    CompareDataConfig,
    RetentionConfig,
    RunSettings,
    SamplingConfig,
    StepConfig,
    TrainConfig,
)
from polyir.data import read_tasks, task_names, write_beir, write_train
from polyir.data.mixture import read_mixture
from polyir.data.overlap import refuse_overlap
from polyir.errors import InputError
from polyir.evaluation import evaluate_task
from polyir.evaluation.harness import check_metric
from polyir.files import atomic_dir, atomic_file, finish_replacing
from polyir.models.biencoder import BiEncoder
from polyir.models.packaged import resolve_model_path
from polyir.results import CellResult, LogEntry, Untrained
from polyir.training.sampling import BatchSampler
from polyir.training.trainer import Trainer, run_fingerprint
from polyir.translate.protocol import with_translations

RESULT = "result.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    sampling: SamplingConfig
    step: StepConfig
    seed: int
    retention: RetentionConfig = field(default_factory=RetentionConfig)

    @property
    def strategy(self) -> str:
        """What the comparison compares: sampling, step strategy and retention (seeds are repetitions)."""
        return " + ".join(x for x in (self.sampling.label, self.step.label, self.retention.label) if x)

    @property
    def name(self) -> str:
        """A folder name: hybrid-a0.5__gradcache-512x64__seed0 (…__l2sp0.01 with a retention setting)."""
        return f"{self.sampling.slug}__{self.step.slug}__seed{self.seed}" + \
            (f"__{self.retention.slug}" if self.retention.slug else "")


def expand(config: CompareConfig) -> list[Cell]:
    cells = [Cell(s, t, seed, r) for r in (config.grid.retention or [config.retention]) for s in config.grid.sampling
             for t in config.grid.step for seed in config.grid.seeds]
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise InputError("the grid repeats a cell; expected distinct sampling, step, seed and retention entries")
    return cells


def _flores_folder(data_dir: str | Path | None) -> Path:
    """flores-sib200/ under the data folder (--data-dir or $POLYIR_DATA), else the bundled sample's."""
    from polyir.data.sources import SAMPLE

    root = data_dir if data_dir is not None else os.environ.get("POLYIR_DATA") or None
    if root is None:
        log.warning("dataset.bitext: no --data-dir; using the 200 FLORES-200 lines of the sample bundled with polyir")
        return SAMPLE / "flores-sib200"
    return Path(root) / "flores-sib200"


def prepare_data(config: CompareConfig, data_dir: str | Path | None, redo: bool = False
                 ) -> tuple[CompareDataConfig, str]:
    """The data every cell shares, and where it came from: given files, or XQuAD-R split by article (and a FLORES
    bitext task) written once into output_dir/data, with the fingerprint of its settings and source files, so
    that a folder made from other settings or data is never taken for this one (see provenance.reusable)."""
    if config.dataset is None:
        return _with_named_tests(config, config.data, data_dir), "the files of data.train, data.dev and data.test"
    from polyir.data.lareqa import article_count, evaluation_task, read_lareqa, training_examples
    from polyir.data.sources import SOURCES, is_sample, locate

    dataset, folder = config.dataset, Path(config.output_dir) / "data"
    test_tasks = [folder / "xquad-r-test"] + ([folder / "flores-bitext"] if dataset.bitext else [])
    dev_tasks = [folder / "xquad-r-dev"] + ([folder / "flores-dev"] if dataset.bitext and dataset.bitext_dev else [])
    prepared = CompareDataConfig(train=folder / "train.jsonl", languages=config.data.languages,
                                 dev=dev_tasks, test=test_tasks, allow_overlap=config.data.allow_overlap)
    located = locate(dataset.name, data_dir, dataset.languages)
    inputs = {f"{dataset.name}/{name}": located / name for name in SOURCES[dataset.name].needed(dataset.languages)}
    if dataset.bitext:
        flores = _flores_folder(data_dir)
        for name in [f"{code}.txt" for code in (dataset.bitext_pivot, *dataset.bitext)] + ["ids.txt"]:
            inputs[f"flores-sib200/{name}"] = flores / name
    source = (f"the {dataset.name} sample bundled with polyir ({located}), not the full data set"
              if is_sample(located) else f"{dataset.name} from {located}")
    expected = provenance.fingerprint({"dataset": dataset.model_dump(mode="json")}, inputs)
    if provenance.reusable(folder, expected, "the prepared data (output_dir/data)", redo):
        return _with_named_tests(config, prepared, data_dir), source
    by_lang = read_lareqa(located)
    if dataset.languages:
        by_lang = {lang: by_lang[lang] for lang in dataset.languages}
    order = list(range(article_count(by_lang)))
    random.Random(dataset.seed).shuffle(order)
    n_test, n_dev = round(dataset.test * len(order)), round(dataset.dev * len(order))
    test, dev, train = sorted(order[:n_test]), sorted(order[n_test:n_test + n_dev]), sorted(order[n_test + n_dev:])
    if not (test and dev and train):
        raise InputError(f"dataset.dev={dataset.dev} and dataset.test={dataset.test} leave an empty split of "
                         f"{len(order)} articles")
    bitext = _bitext_tasks(flores, dataset) if dataset.bitext else {}
    with atomic_dir(folder) as staging:
        write_train(training_examples(by_lang, train), staging / "train.jsonl")
        for name, articles in (("xquad-r-dev", dev), ("xquad-r-test", test)):
            (staging / name).mkdir()
            write_beir(evaluation_task(by_lang, articles, name), staging / name)
        for name, task in bitext.items():
            (staging / name).mkdir()
            write_beir(task, staging / name)
        provenance.write(staging, expected)
    return _with_named_tests(config, prepared, data_dir), source


def _with_named_tests(config: CompareConfig, data: CompareDataConfig, data_dir: str | Path | None
                      ) -> CompareDataConfig:
    """`data` with the named tasks of test.suite and test.tasks among its test tasks (those whose files are here
    or downloadable; the others are skipped with a warning that says what is missing)."""
    from polyir.evaluation.benchmark import gather, load_suite

    specs = [*(load_suite(config.test.suite).tasks if config.test.suite else []), *config.test.tasks]
    if not specs:
        return data
    found, missing = gather(specs, Path(data_dir) if data_dir is not None else None)
    for spec, message in missing.items():
        log.warning("test task %s skipped: %s", spec, message)
    names = task_names(data.test) + [named.folder.name for named in found]
    if len(set(names)) != len(names):
        raise InputError(f"two test tasks share a name ({', '.join(names)}); expected distinct tasks")
    return data.model_copy(update={"test": [*data.test, *(named.folder for named in found)],
                                   "test_splits": {**data.test_splits,
                                                   **{n.folder.name: n.split for n in found if n.split != "test"}}})


def _bitext_tasks(flores: Path, dataset) -> dict:
    """The FLORES test task (each language against the pivot) and, with `bitext_dev`, a pooled dev task on a
    seeded share of the lines that the test task never sees."""
    from polyir.data.bitext import bitext_task, read_bitext

    count = len(read_bitext(flores, [dataset.bitext_pivot])[0])
    order = list(range(count))
    random.Random(dataset.seed).shuffle(order)
    n_dev = round(dataset.bitext_dev * count)
    if dataset.bitext_dev and not 0 < n_dev < count:
        raise InputError(f"dataset.bitext_dev={dataset.bitext_dev} leaves an empty split of {count} lines")
    tasks = {"flores-bitext": bitext_task(flores, dataset.bitext_pivot, dataset.bitext, name="flores-bitext",
                                          lines=sorted(order[n_dev:]))}
    if n_dev:
        tasks["flores-dev"] = bitext_task(flores, dataset.bitext_pivot, dataset.bitext, pooled=True,
                                          name="flores-dev", lines=sorted(order[:n_dev]))
    return tasks


def train_config(config: CompareConfig, cell: Cell, data: CompareDataConfig) -> TrainConfig:
    """The TrainConfig of one cell: shared settings, the cell's strategies and seed, the budget."""
    optim = config.optim.model_copy()
    budget = config.budget
    if budget.steps is not None:
        optim.max_steps = budget.steps
    elif budget.examples is not None:
        optim.max_examples = budget.examples
        optim.max_steps = math.ceil(budget.examples / cell.step.batch_size)
    else:
        optim.max_seconds = budget.seconds  # the schedule's horizon stays optim.max_steps
    shared = {name: getattr(config, name) for name in RunSettings.model_fields}
    return TrainConfig(**{**shared, "optim": optim, "retention": cell.retention},
                       output_dir=Path(config.output_dir) / "runs" / cell.name,
                       seed=cell.seed, data={"train": data.train, "temperature": data.temperature,
                                             "languages": data.languages, "dev": data.dev,
                                             "dev_lang": data.dev_lang, "allow_overlap": data.allow_overlap},
                       sampling=cell.sampling, step=cell.step)


def cell_fingerprint(config: CompareConfig, train: TrainConfig, data: CompareDataConfig) -> dict:
    """A cell's run fingerprint with what its result.json also depends on: the test tasks and their depth."""
    return run_fingerprint(train, {"test": _test_settings(config, data)},
                           {f"data.test[{i}]": path for i, path in enumerate(data.test)})


def _test_settings(config: CompareConfig, data: CompareDataConfig) -> dict:
    """What every test result depends on but the tasks' files: the depth, and the names results are keyed by."""
    return {"depth": config.test.depth, "tasks": task_names(data.test)}


def _test(model, config: CompareConfig, data: CompareDataConfig) -> dict:
    return {task.name: evaluate_task(model, task, config.test.depth, config.eval.batch_size, show_progress=False)
            for task in read_tasks(data.test, lang=data.dev_lang, splits=data.test_splits)}


def run_untrained(config: CompareConfig, data: CompareDataConfig, redo: bool = False) -> Untrained:
    """The starting model on the dev and test tasks, once for the whole grid (untrained/result.json): every
    cell's step 0, and the row each strategy is read against in the report."""
    folder = Path(config.output_dir) / "untrained"
    settings = {"model": config.model.model_dump(mode="json"), "eval": {"depth": config.eval.depth},
                "test": _test_settings(config, data), "dev_tasks": task_names(data.dev), "dev_lang": data.dev_lang}
    model_folder = Path(resolve_model_path(config.model.name_or_path))
    inputs = {**{f"data.dev[{i}]": path for i, path in enumerate(data.dev)},
              **{f"data.test[{i}]": path for i, path in enumerate(data.test)},
              **({"model": model_folder} if model_folder.is_dir() else {})}

    def evaluate() -> Untrained:
        model = BiEncoder.from_pretrained(config.model.name_or_path, **config.model.encoder_settings())
        model.to("cuda" if torch.cuda.is_available() else "cpu")
        dev = {task.name: evaluate_task(model, task, config.eval.depth, config.eval.batch_size,
                                        show_progress=False).table.summary
               for task in read_tasks(data.dev, lang=data.dev_lang)}
        return Untrained(dev=dev, test=_test(model, config, data))

    return _once(folder, provenance.fingerprint(settings, inputs), "the untrained model's scores", redo, evaluate)


def run_lexical(config: CompareConfig, data: CompareDataConfig, redo: bool = False) -> Untrained | None:
    """BM25 on the test tasks, once for the whole grid (bm25/result.json): the lexical row of the report."""
    if not config.test.lexical:
        return None
    from polyir.evaluation.lexical import BM25

    lexical = BM25()
    expected = provenance.fingerprint({"bm25": lexical.revision, "test": _test_settings(config, data),
                                       "dev_lang": data.dev_lang},
                                      {f"data.test[{i}]": path for i, path in enumerate(data.test)})
    return _once(Path(config.output_dir) / "bm25", expected, "BM25's scores", redo,
                 lambda: Untrained(dev={}, test=_test(lexical, config, data)))


def _kept(path: Path, record: type[BaseModel]):
    """A result polyir wrote, or None when there is none or it is damaged (torn, edited): then, with a warning, it
    is made again, since polyir can."""
    if not path.is_file():
        return None
    try:
        return record.model_validate_json(path.read_bytes())
    except ValidationError as error:
        log.warning("%s is damaged (%s); making it again", path, error.errors()[0]["msg"])
        return None


def _once(folder: Path, expected: dict, what: str, redo: bool, evaluate) -> Untrained:
    """A grid-wide evaluation kept in folder/result.json with its fingerprint: reused only for the same settings
    and data (provenance.reusable), else `evaluate()`d and written all-or-nothing."""
    if provenance.reusable(folder, expected, f"{what} (output_dir/{folder.name})", redo) and \
            (kept := _kept(folder / RESULT, Untrained)) is not None:
        return kept
    log.info("%s: evaluating", what)
    result = evaluate()
    with atomic_dir(folder, overwrite=True) as staging:
        (staging / RESULT).write_text(result.model_dump_json())
        provenance.write(staging, expected)
    return result


def run_cell(config: CompareConfig, cell: Cell, data: CompareDataConfig, show_progress: bool = True,
             redo: bool = False, start_dev: dict | None = None) -> CellResult:
    """Train (or resume) one cell, evaluate its best model on the test tasks, and record both in result.json. A
    cell folder holding a run of other settings or data is an error, or with `redo` is made again."""
    train = train_config(config, cell, data)
    folder = Path(train.output_dir)
    expected = cell_fingerprint(config, train, data)
    started = (folder / "log.jsonl").exists() or (folder / RESULT).exists()
    if started and provenance.reusable(folder, expected, f"cell {cell.name}", redo) and \
            (kept := _kept(folder / RESULT, CellResult)) is not None:
        return kept
    Trainer(train, resume=(folder / "log.jsonl").exists(), show_progress=show_progress, fingerprint=expected,
            start_dev=start_dev).run()
    # tested with the settings the untrained model was tested with (a saved model declares its inference lengths)
    model = BiEncoder.from_pretrained(folder / "model", **config.model.encoder_settings())
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    test = _test(model, config, data)
    entries = [LogEntry.model_validate_json(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    result = CellResult(cell=cell.name, strategy=cell.strategy, seed=cell.seed, log=entries, test=test)
    with atomic_file(folder / RESULT) as out:
        out.write(result.model_dump_json())
    return result


def run_interpolations(config: CompareConfig, cell: Cell, data: CompareDataConfig, redo: bool = False
                       ) -> dict[str, Untrained]:
    """The cell's kept model interpolated with the starting one at every `test.interpolate` weight, tested
    (runs/<cell>/interpolated-<w>/result.json, reused while the cell and the weight are the same)."""
    from polyir.models.merge import interpolate

    train = train_config(config, cell, data)
    folder = Path(train.output_dir)
    cell_expected = cell_fingerprint(config, train, data)
    out = {}
    for weight in config.test.interpolate:
        def evaluate(weight: float = weight) -> Untrained:
            settings = config.model.encoder_settings()
            start = BiEncoder.from_pretrained(config.model.name_or_path, **settings)
            merged = interpolate(start, BiEncoder.from_pretrained(folder / "model", **settings), weight)
            merged.to("cuda" if torch.cuda.is_available() else "cpu")
            return Untrained(dev={}, test=_test(merged, config, data))

        expected = {**cell_expected, "settings": {**cell_expected["settings"], "interpolated": weight}}
        out[f"{weight:g}"] = _once(folder / f"interpolated-{weight:g}", expected,
                                   f"cell {cell.name} interpolated at {weight:g}", redo, evaluate)
    return out


def validate(config: CompareConfig, data: CompareDataConfig, cells: list[Cell]) -> None:
    """What can be checked before the first step: the test tasks read, every cell's batches can be drawn from
    the training data, the dev tasks can give the dev metric, and no dev or test query is a training query."""
    tests = dict(zip(data.test, read_tasks(data.test, lang=data.dev_lang, splits=data.test_splits)))
    mixture = read_mixture(data.sources(), data.temperature)
    examples = mixture.examples
    for cell in cells:
        BatchSampler.of(examples, cell.sampling, cell.step.batch_size, data.languages, cell.seed, mixture.sources,
                        mixture.probabilities)
    devs = dict(zip(data.dev, read_tasks(data.dev, lang=data.dev_lang)))
    check_metric(list(devs.values()), config.eval.metric)
    if not data.allow_overlap:
        refuse_overlap(examples, {**devs, **tests}, "data.allow_overlap")


def run_grid(config: CompareConfig, data_dir: str | Path | None = None, show_progress: bool = True,
             redo: bool = False) -> tuple[CompareDataConfig, list[CellResult], Untrained, Untrained | None, str,
                                          dict[str, dict[str, Untrained]]]:
    """Every cell's result, the untrained model's, BM25's, the data they shared and where it came from, and each
    cell's interpolations with the starting model by weight. The output folder is locked for the run; one this call
    created is removed again when bad input stops it before any cell has trained."""
    out = Path(config.output_dir)
    model_folder = Path(resolve_model_path(config.model.name_or_path))
    specs = [config.translate.train, *config.translate.test] if config.translate else []
    translation_sources = [Path(spec.source) for spec in specs if spec is not None and Path(spec.source).exists()]
    inputs = (data_dir, *(source.path for source in config.data.sources()), *config.data.dev, *config.data.test,
              *translation_sources,
              model_folder if model_folder.is_dir() else None)
    guard.check_output(out, [path for path in inputs if path])
    cells = expand(config)
    created = not out.exists()
    try:
        with guard.exclusive(out):
            if out.is_dir():
                finish_replacing(out)  # a report that a kill left half-replaced is finished first
            data, source = prepare_data(config, data_dir, redo)
            data, translated = with_translations(config, data, Path(data_dir) if data_dir else None, redo,
                                                 show_progress)
            source = f"{source}; {translated}" if translated else source
            validate(config, data, cells)
            untrained = run_untrained(config, data, redo)
            lexical = run_lexical(config, data, redo)
            results, interpolated = [], {}
            for index, cell in enumerate(cells, start=1):
                log.info("[%d/%d] %s", index, len(cells), cell.name)
                start = untrained.dev if config.eval.at_start else None
                results.append(run_cell(config, cell, data, show_progress, redo, start))
                interpolated[cell.name] = run_interpolations(config, cell, data, redo)
    except InputError:
        if created and not any(out.glob("runs/*/log.jsonl")):
            shutil.rmtree(out, ignore_errors=True)
        raise
    return data, results, untrained, lexical, source, interpolated
