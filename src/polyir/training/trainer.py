"""The training loop: AdamW with warm-up and linear decay, clipping, periodic dev evaluation, the best model kept
as model/, atomic resumable checkpoints. One call of `train(config)` is one run of `polyir train`."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from polyir import guard, provenance
from polyir.config import TrainConfig
from polyir.data import read_tasks, task_names
from polyir.data.mixture import read_mixture
from polyir.data.overlap import refuse_overlap
from polyir.distributed import init_world
from polyir.errors import InputError, ModelError
from polyir.evaluation import evaluate_task
from polyir.evaluation.harness import check_metric
from polyir.files import atomic_file, text_lines
from polyir.models.biencoder import BiEncoder
from polyir.models.packaged import resolve_model_path
from polyir.results import better
from polyir.training import checkpoints, kept
from polyir.training.loader import BatchLoader
from polyir.training.loss import InfoNCE
from polyir.training.memory import peak_memory_gib, reset_peak_memory
from polyir.training.randomness import generator_states, restore_generator_states
from polyir.training.retention import L2SP, Distillation, attach_lora, merged
from polyir.training.sampling import BatchSampler
from polyir.training.steps import make_step

log = logging.getLogger(__name__)
# what a resumed run may change: how long it trains and how often it is evaluated (checkpoint settings, which
# cannot change a result, are never part of a fingerprint)
SAFE_ON_RESUME = frozenset({"optim.max_steps", "optim.max_examples", "optim.max_seconds", "eval.every_steps",
                            "eval.every_examples"})


def run_fingerprint(config: TrainConfig, settings: dict | None = None, inputs: dict | None = None) -> dict:
    """What a run's results depend on: its settings but for paths, logging, checkpoint cadence, encoding batch
    size and what is only permitted (data.allow_overlap); the checksums of its data (and of its model, when it is a
    folder); `settings` and `inputs` add what a caller evaluates it on."""
    values = config.model_dump(mode="json", exclude={"output_dir": True, "checkpoint": True, "eval": {"batch_size"},
                                                     "data": {"train", "dev", "allow_overlap"}})
    values["model"] = config.model.model_dump(mode="json", exclude_unset=True)  # what the user set
    values["data"]["dev_tasks"] = task_names(config.data.dev)  # the names its dev results are keyed by
    sources = config.data.sources()
    train = {"data.train": sources[0].path} if isinstance(config.data.train, Path) else \
        {f"data.train[{i}]": source.path for i, source in enumerate(sources)}
    files = {**train, **{f"data.dev[{i}]": d for i, d in enumerate(config.data.dev)},
             **{f"retention.distill.texts.{lang}": path for lang, path in _distill_texts(config).items()}}
    model = Path(resolve_model_path(config.model.name_or_path))
    if model.is_dir():
        files["model"] = model
        values["model"].pop("name_or_path")
    return provenance.fingerprint({**values, **(settings or {})}, {**files, **(inputs or {})})


def _distill_texts(config: TrainConfig) -> dict:
    distill = config.retention.distill
    return dict(distill.texts) if distill else {}


def _empty_drawn() -> dict:
    return {"xx": 0, "xy": 0, "languages": {}}


def _count(drawn: dict, pairs, source_of: dict[str, str] | None = None) -> None:
    """Add a batch to `drawn`: pairs in one language (X-X) or two (X-Y), pairs per language pair, and in a
    mixture pairs per source."""
    for pair in pairs:
        if source_of is not None:
            sources = drawn.setdefault("sources", {})
            sources[source_of[pair.example.id]] = sources.get(source_of[pair.example.id], 0) + 1
        drawn["xy" if pair.query_lang != pair.passage_lang else "xx"] += 1
        key = pair.query_lang if pair.query_lang == pair.passage_lang else f"{pair.query_lang}->{pair.passage_lang}"
        drawn["languages"][key] = drawn["languages"].get(key, 0) + 1


class TrainingDiverged(ModelError):
    """The loss stopped being a finite number."""


def _autocast(config: TrainConfig, device: torch.device):
    if config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def _model(config: TrainConfig, device: torch.device) -> BiEncoder:
    """The bi-encoder to train, on its device, in the configured precision, compiled if asked."""
    model = BiEncoder.from_pretrained(config.model.name_or_path, **config.model.encoder_settings()).to(device)
    if config.model.inference_length:
        model.inference_lengths = dict.fromkeys(("max_query_length", "max_passage_length"),
                                                config.model.inference_length)
    if config.retention.lora:
        attach_lora(model, config.retention.lora)
    if config.optim.freeze_embeddings:
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    if config.precision == "bf16-weights":
        model.compute_in(torch.bfloat16)
    if config.compile:
        model.compile_encoder()
    return model


def _dev_tasks(config: TrainConfig) -> list:
    """The dev tasks, checked against the dev metric's setting."""
    tasks = read_tasks(config.data.dev, lang=config.data.dev_lang)
    check_metric(tasks, config.eval.metric)
    return tasks


def _optimizer(model: BiEncoder, config: TrainConfig, device: torch.device
               ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over the encoder's trained parameters (biases and normalisation weights get no weight decay), with linear
    warm-up and decay; a bf16 compute copy is refreshed after every update."""
    decay, no_decay = [], []
    for name, parameter in model.encoder.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "norm" in name.lower() else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": config.optim.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=config.optim.lr, fused=device.type == "cuda")
    if model.compute is not None:
        optimizer.register_step_post_hook(lambda *_: model.compute.refresh())
    return optimizer, get_linear_schedule_with_warmup(optimizer, config.optim.warmup_steps, config.optim.max_steps)


class Trainer:
    """One run: everything that can be checked is checked here, before the output folder is touched; the folder
    is then locked for the life of the run (`run` releases it)."""

    def __init__(self, config: TrainConfig, resume: bool = False, show_progress: bool = True,
                 fingerprint: dict | None = None, start_dev: dict | None = None):
        """`start_dev`: the dev summaries of this very starting model, when the caller has them (a comparison
        evaluates its model once for every cell), recorded at step 0 instead of evaluating again."""
        self.world = init_world()
        self.config, self.show_progress = config, show_progress and self.world.main
        self.start_dev = start_dev
        self.out = Path(config.output_dir)
        self.device = self.world.device
        self.world.check_divides(config.step)
        self.setting, self.metric = config.eval.metric.split("/")
        model_folder = Path(resolve_model_path(config.model.name_or_path))
        guard.check_output(self.out, [*(source.path for source in config.data.sources()), *config.data.dev,
                                      *_distill_texts(config).values(),
                                      *([model_folder] * model_folder.is_dir())])
        log = self.out / "log.jsonl"
        if log.exists() and not resume:
            raise InputError("output_dir already holds a run; pass --resume to continue it, or choose another "
                             "output_dir", self.out)
        self.fingerprint = fingerprint or run_fingerprint(config)
        self.changed_on_resume = self._resume_changes() if resume and log.exists() else {}
        random.seed(config.seed)
        torch.manual_seed(config.seed)
        mixture = read_mixture(config.data.sources(), config.data.temperature)
        self.examples, self.dev = mixture.examples, _dev_tasks(config)
        self.source_of = {e.id: mixture.names[s] for e, s in zip(mixture.examples, mixture.sources)} \
            if len(mixture.names) > 1 else None
        if not config.data.allow_overlap:
            refuse_overlap(self.examples, dict(zip(config.data.dev, self.dev)), "data.allow_overlap")
        self.model = _model(config, self.device)
        trained = [parameter for parameter in self.model.encoder.parameters() if parameter.requires_grad]
        self.l2sp = L2SP(trained, config.retention.l2sp) if config.retention.l2sp else None  # anchored at the start
        distill = config.retention.distill
        self.distill = Distillation(self.model, distill, config.seed, self.world) if distill else None
        self.sampler = BatchSampler.of(self.examples, config.sampling, config.step.batch_size, config.data.languages,
                                       config.seed, mixture.sources, mixture.probabilities)
        self.step_strategy = make_step(config.step, self.model, InfoNCE.of(config.optim), self.world)
        self.optimizer, self.scheduler = _optimizer(self.model, config, self.device)
        self.step, self.examples_seen, self.seconds, self.train_seconds = 0, 0, 0.0, 0.0
        self.drawn = _empty_drawn()  # what the sampler gave since the last evaluation
        self.best: dict | None = None
        self._recorded = False
        self.lock = ExitStack()
        if self.world.main:
            self.lock.enter_context(guard.exclusive(self.out))
        try:
            if resume:
                self._resume()
        except BaseException:
            self.lock.close()
            raise
        micro = config.step.micro_batch_size if config.step.strategy in ("accumulation", "contaccum") else None
        self.loader = BatchLoader(self.sampler, self.model, self.world, micro)
        self.writer = None

    def _resume_changes(self) -> dict:
        """The settings changed since the run began, when every one is safe to change on resume."""
        stored = provenance.read(self.out)
        if stored is None:
            raise InputError(f"no {provenance.FILE}: which settings produced this run is unknown, so it cannot be "
                             "resumed safely; start it again in another output_dir", self.out)
        changed = provenance.differences(stored, self.fingerprint)
        unsafe = {key: values for key, values in changed.items() if key not in SAFE_ON_RESUME}
        if unsafe:
            raise InputError(f"the run was started with other settings or data ({provenance.describe(unsafe)}); "
                             f"resume only changes {', '.join(sorted(SAFE_ON_RESUME))}. Restore the configuration, "
                             "or start a new run in another output_dir", self.out)
        if changed:
            log.info("%s: resuming with %s", self.out, provenance.describe(changed))
        return changed

    # -- state ----------------------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"step": self.step, "examples": self.examples_seen, "seconds": self.seconds,
                "train_seconds": self.train_seconds, "best": self.best, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "sampler": self.loader.position,
                "step_strategy": self.step_strategy.state_dict(), "drawn": self.drawn,
                "random": generator_states(), "world_size": self.world.size}

    def _resume(self) -> None:
        checkpoint = checkpoints.newest(self.out / "checkpoints")
        if checkpoint is None:
            log.warning("%s: no complete checkpoint, starting from the beginning", self.out)
            self._truncate_log(-1)
            if self.world.main:
                kept.repair(self.out, None)
            return
        state = checkpoints.load(checkpoint, self.model.backbone)
        if state["world_size"] != self.world.size:
            raise InputError(f"{checkpoint.name} was written by {state['world_size']} processes, this run has "
                             f"{self.world.size}; resume with the same world size", checkpoint)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        self.step_strategy.load_state_dict(state["step_strategy"])
        self.drawn = state["drawn"]
        restore_generator_states(state["random"])
        self.step, self.examples_seen = state["step"], state["examples"]
        self.seconds, self.train_seconds, self.best = state["seconds"], state["train_seconds"], state["best"]
        if self.model.compute is not None:  # once the whole checkpoint is in: a tied embedding may load last
            self.model.compute.refresh()
        self._truncate_log(self.step)
        if self.world.main:
            # the kept model is the best on dev, or without dev tasks the last one (staged at the final step)
            kept.repair(self.out, self.best["step"] if self.best else None if self.dev else self.step)
        log.info("%s: resuming from %s", self.out, checkpoint.name)

    def _truncate_log(self, step: int) -> None:
        """Drop log lines past the checkpoint (those steps will be run again), and a last line torn by a process
        that died while writing it."""
        path = self.out / "log.jsonl"
        if not (path.exists() and self.world.main):
            return
        lines = [(number, text) for number, text in text_lines(path) if text.strip()]
        kept = []
        for index, (number, text) in enumerate(lines):
            try:
                entry = json.loads(text)
            except json.JSONDecodeError:
                if index < len(lines) - 1:
                    raise InputError("malformed log line in the middle of the log; expected one JSON object per "
                                     "line", path, number) from None
                log.warning("%s: line %d was torn (the run died while writing it); dropped", path, number)
                continue
            if entry["step"] <= step:
                kept.append(text)
        with atomic_file(path) as out:
            out.write("".join(line + "\n" for line in kept))

    # -- loop -----------------------------------------------------------------------------------------------
    def run(self) -> Path:
        """Train until the budget is spent; under data parallelism only rank 0 writes logs, checkpoints and
        models (every rank holds the same weights)."""
        from torch.utils.tensorboard import SummaryWriter

        config, main = self.config, self.world.main
        log = None
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(config.model_dump_json(indent=2))
            provenance.write(self.out, self.fingerprint)
            self.writer = SummaryWriter(str(self.out / "tensorboard"), purge_step=self.step + 1)
            log = (self.out / "log.jsonl").open("a", encoding="utf-8")
        reset_peak_memory(self.device)
        started = time.perf_counter() - self.seconds
        bar = tqdm(total=config.optim.max_steps, initial=self.step, disable=not self.show_progress, unit="step")
        try:
            if self.step == 0 and self.dev and config.eval.at_start:
                entry = {"step": 0, "examples": 0, "loss": None, "dev": self._evaluate(self.start_dev)}
                entry["seconds"] = self.seconds = time.perf_counter() - started
                self._record(log, entry)
            while not self.finished:
                entry = self._train_step()
                entry["seconds"] = self.seconds = time.perf_counter() - started
                if self._evaluation_due(entry["examples"] - entry["batch"]) or self.finished:
                    entry["drawn"], self.drawn = self.drawn, _empty_drawn()
                    entry["dev"] = self._evaluate()
                    self.seconds = time.perf_counter() - started
                self._record(log, entry)
                bar.set_postfix(loss=f"{entry['loss']:.4f}", pairs_s=f"{entry['pairs_per_second']:.1f}")
                bar.update(1)
                if main and (self.step % config.checkpoint.every_steps == 0 or self.finished):
                    if not self.dev and self.finished:  # without dev tasks, the kept model is the last one
                        kept.stage(self.out, self._saveable(), {"step": self.step})
                    checkpoints.save(self.out / "checkpoints", self.step, self.model.backbone, self._state(),
                                     config.checkpoint.keep)
                    kept.promote(self.out)
        finally:
            self.loader.close()
            bar.close()
            if log is not None:
                log.close()
                self.writer.close()
            self.lock.close()
        self.world.barrier()
        return self.out / "model"

    def _record(self, log, entry: dict) -> None:
        if not self._recorded:  # the run's first line states the encoder settings used, and what resume changed
            entry["encoder"] = {key: {"value": value, "from": self.model.sources[key]}
                                for key, value in self.model.settings.model_dump(mode="json").items()}
            if self.changed_on_resume:
                entry["changed_on_resume"] = {key: list(values) for key, values in self.changed_on_resume.items()}
            self._recorded = True
        if log is not None:
            log.write(json.dumps(entry) + "\n")
            log.flush()
            self._tensorboard(entry)

    def _evaluation_due(self, examples_before: int) -> bool:
        every = self.config.eval.every_examples
        if every is None:
            return self.step % self.config.eval.every_steps == 0
        return self.examples_seen // every > examples_before // every

    @property
    def finished(self) -> bool:
        """The budget is spent: steps, or examples, or training seconds, whichever comes first."""
        optim = self.config.optim
        return (self.step >= optim.max_steps or (optim.max_examples is not None and
                                                 self.examples_seen >= optim.max_examples)
                or (optim.max_seconds is not None and self.train_seconds >= optim.max_seconds))

    def _train_step(self) -> dict:
        config = self.config
        start = time.perf_counter()
        pairs, batch = self.loader.next()
        _count(self.drawn, pairs, self.source_of)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(config, self.device):
            distilled = self.distill.backward(self.step + 1) if self.distill else None
            loss = float(self.step_strategy.backward(batch, len(pairs)))  # the host waits here, at the end
        self.world.sum_gradients(self.model.encoder.parameters())
        if not math.isfinite(loss):
            last = checkpoints.newest(self.out / "checkpoints")
            raise TrainingDiverged(f"loss is {loss} at step {self.step + 1}; training stopped. The last good "
                                   f"checkpoint is {last or 'none (no checkpoint was written yet)'}")
        penalty = self.l2sp.apply() if self.l2sp else None
        norm = (torch.nn.utils.clip_grad_norm_(self.model.encoder.parameters(), config.optim.max_grad_norm)
                if config.optim.max_grad_norm else None)
        self.optimizer.step()
        self.scheduler.step()
        elapsed = time.perf_counter() - start
        self.step += 1
        self.examples_seen += len(pairs)
        self.train_seconds += elapsed
        entry = {"step": self.step, "examples": self.examples_seen, "batch": len(pairs), "loss": loss,
                 "lr": self.scheduler.get_last_lr()[0], "pairs_per_second": len(pairs) / elapsed,
                 "train_seconds": self.train_seconds, "peak_memory_gib": peak_memory_gib(self.device),
                 "negatives": self.step_strategy.audit.mean()}
        if norm is not None:
            entry["grad_norm"] = float(norm)
        if penalty is not None:
            entry["l2sp"] = float(penalty)
        if distilled is not None:
            entry["distill"] = float(self.world.sum(distilled))
        return entry

    def _evaluate(self, known: dict | None = None) -> dict:
        """Dev summaries (`known` ones, or evaluated now); when the configured metric improves, the model is staged
        to become model/ with the next checkpoint."""
        config = self.config
        summaries = known or {task.name: evaluate_task(self.model, task, config.eval.depth, config.eval.batch_size,
                                                       show_progress=False, world=self.world).table.summary
                              for task in self.dev}
        values = [s[self.setting][self.metric] for s in summaries.values() if self.metric in s.get(self.setting, {})]
        if values:
            score = sum(values) / len(values)
            if self.best is None or better(self.metric, score, self.best["score"]):
                self.best = {"step": self.step, "score": score, "metric": config.eval.metric}
                if self.world.main:
                    kept.stage(self.out, self._saveable(), self.best)
        return summaries

    def _saveable(self) -> BiEncoder:
        """The model as it is saved: with LoRA adapters merged in, so that it loads like any model."""
        return merged(self.model) if self.config.retention.lora else self.model

    def _tensorboard(self, entry: dict) -> None:
        for key in ("loss", "lr", "pairs_per_second", "peak_memory_gib", "grad_norm"):
            if entry.get(key) is not None:
                self.writer.add_scalar(f"train/{key}", entry[key], entry["step"])
        for task, summary in entry.get("dev", {}).items():
            for setting, metrics in summary.items():
                for metric, value in metrics.items():
                    self.writer.add_scalar(f"dev/{task}/{setting}/{metric}", value, entry["step"])


def train(config: TrainConfig | str | Path, resume: bool = False, show_progress: bool = True) -> Path:
    """Fine-tune a bi-encoder from a TrainConfig or its YAML file; returns the folder of the kept model."""
    settings = config if isinstance(config, TrainConfig) else TrainConfig.load(config)
    return Trainer(settings, resume, show_progress).run()
