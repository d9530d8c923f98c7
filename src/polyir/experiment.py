"""A comparison grid: every (sampling, step, seed) cell is one training run with the same data, the same order of
examples where the strategy allows (the sampler's seed), and the same budget; its best model is then evaluated
zero-shot on the test tasks. Cells already complete are skipped; a half-finished cell resumes."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from polyir.config import CompareConfig, CompareDataConfig, RunSettings, SamplingConfig, StepConfig, TrainConfig
from polyir.data import read_beir, write_beir, write_train
from polyir.errors import InputError
from polyir.evaluate import evaluate_task
from polyir.files import atomic_dir, atomic_file
from polyir.model import BiEncoder
from polyir.results import CellResult, LogEntry
from polyir.train import Trainer

RESULT = "result.json"
SOURCE = "SOURCE"  # in the prepared data folder: where its text came from

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    sampling: SamplingConfig
    step: StepConfig
    seed: int

    @property
    def strategy(self) -> str:
        """What the comparison compares: sampling and step strategy (seeds are repetitions)."""
        return f"{self.sampling.label} + {self.step.label}"

    @property
    def name(self) -> str:
        """A folder name: hybrid-a0.5__gradcache-512x64__seed0."""
        return f"{self.sampling.slug}__{self.step.slug}__seed{self.seed}"


def expand(config: CompareConfig) -> list[Cell]:
    cells = [Cell(s, t, seed) for s in config.grid.sampling for t in config.grid.step for seed in config.grid.seeds]
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise InputError("the grid repeats a cell; expected distinct sampling, step and seed entries")
    return cells


def prepare_data(config: CompareConfig, data_dir: str | Path | None) -> tuple[CompareDataConfig, str]:
    """The data every cell shares, and where it came from: given files, or XQuAD-R split by article (and a FLORES
    bitext task) written once into output_dir/data."""
    if config.dataset is None:
        return config.data, "the files of data.train, data.dev and data.test"
    from polyir.data.bitext import bitext_task
    from polyir.data.lareqa import article_count, evaluation_task, read_lareqa, training_examples
    from polyir.data.sources import is_sample, locate

    dataset, folder = config.dataset, Path(config.output_dir) / "data"
    languages = config.data.languages
    test_tasks = [folder / "xquad-r-test"] + ([folder / "flores-bitext"] if dataset.bitext else [])
    prepared = CompareDataConfig(train=folder / "train.jsonl", languages=languages, dev=[folder / "xquad-r-dev"],
                                 test=test_tasks)
    if folder.is_dir():
        return prepared, (folder / SOURCE).read_text().strip() if (folder / SOURCE).is_file() else str(folder)
    located = locate(dataset.name, data_dir, dataset.languages)
    source = (f"the {dataset.name} sample bundled with polyir ({located}), not the full data set"
              if is_sample(located) else f"{dataset.name} from {located}")
    by_lang = read_lareqa(located)
    if dataset.languages:
        unknown = sorted(set(dataset.languages) - set(by_lang))
        if unknown:
            raise InputError(f"dataset.languages: {', '.join(unknown)} not in {dataset.name} ({', '.join(by_lang)})")
        by_lang = {lang: by_lang[lang] for lang in dataset.languages}
    order = list(range(article_count(by_lang)))
    random.Random(dataset.seed).shuffle(order)
    n_test, n_dev = round(dataset.test * len(order)), round(dataset.dev * len(order))
    test, dev, train = sorted(order[:n_test]), sorted(order[n_test:n_test + n_dev]), sorted(order[n_test + n_dev:])
    if not (test and dev and train):
        raise InputError(f"dataset.dev={dataset.dev} and dataset.test={dataset.test} leave an empty split of "
                         f"{len(order)} articles")
    if dataset.bitext and data_dir is None:
        raise InputError("dataset.bitext needs --data-dir with a flores-sib200/ folder")
    with atomic_dir(folder) as staging:
        (staging / SOURCE).write_text(source + "\n")
        write_train(training_examples(by_lang, train), staging / "train.jsonl")
        for name, articles in (("xquad-r-dev", dev), ("xquad-r-test", test)):
            (staging / name).mkdir()
            write_beir(evaluation_task(by_lang, articles, name), staging / name)
        if dataset.bitext:
            (staging / "flores-bitext").mkdir()
            write_beir(bitext_task(Path(data_dir) / "flores-sib200", dataset.bitext_pivot, dataset.bitext),
                       staging / "flores-bitext")
    return prepared, source


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
    return TrainConfig(**{**shared, "optim": optim}, output_dir=Path(config.output_dir) / "runs" / cell.name,
                       seed=cell.seed, data={"train": data.train, "languages": data.languages, "dev": data.dev,
                                             "dev_lang": data.dev_lang},
                       sampling=cell.sampling, step=cell.step)


def run_cell(config: CompareConfig, cell: Cell, data: CompareDataConfig, show_progress: bool = True) -> CellResult:
    """Train (or resume) one cell, evaluate its best model on the test tasks, and record both in result.json."""
    train = train_config(config, cell, data)
    folder = Path(train.output_dir)
    if (folder / RESULT).is_file():
        return CellResult.model_validate_json((folder / RESULT).read_text())
    Trainer(train, resume=(folder / "log.jsonl").exists(), show_progress=show_progress).run()
    model = BiEncoder.from_pretrained(folder / "model").to("cuda" if torch.cuda.is_available() else "cpu")
    test = {}
    for path in data.test:
        task = read_beir(path, lang=data.dev_lang)
        test[task.name] = evaluate_task(model, task, config.test.depth, config.eval.batch_size, show_progress=False)
    entries = [LogEntry.model_validate_json(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    result = CellResult(cell=cell.name, strategy=cell.strategy, seed=cell.seed, log=entries, test=test)
    with atomic_file(folder / RESULT) as out:
        out.write(result.model_dump_json())
    return result


def run_grid(config: CompareConfig, data_dir: str | Path | None = None, show_progress: bool = True
             ) -> tuple[CompareDataConfig, list[CellResult], str]:
    """Every cell's result, the data they shared and where it came from."""
    data, source = prepare_data(config, data_dir)
    cells = expand(config)
    results = []
    for index, cell in enumerate(cells, start=1):
        log.info("[%d/%d] %s", index, len(cells), cell.name)
        results.append(run_cell(config, cell, data, show_progress))
    return data, results, source
