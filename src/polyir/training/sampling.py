"""Batch samplers for parallel training data: X-X-mono, X-X, X-Y and hybrid (Elmahdy et al. 2024).

A batch is a list of (example, query language, passage language) pairs. No example appears twice in a batch, so
two translations of one example are never each other's in-batch negatives (they would be false negatives).
Batches are a pure function of (seed, epoch): resuming replays the epoch's plan and skips what was consumed."""

from __future__ import annotations

import random
from dataclasses import dataclass

from polyir.config import SamplingConfig, SamplingName, Weighting
from polyir.data.records import ParallelExample
from polyir.errors import InputError
from polyir.languages import language_key


@dataclass(frozen=True)
class Pair:
    example: ParallelExample
    query_lang: str
    passage_lang: str

    @property
    def query(self) -> str:
        return self.example.query[self.query_lang]

    @property
    def passage(self) -> str:
        return self.example.positive[self.passage_lang]

    @property
    def negative(self) -> str | None:
        """The first hard negative in the passage language, when the example has one."""
        return next((n[self.passage_lang] for n in self.example.negatives if self.passage_lang in n), None)


class BatchSampler:
    """An endless, resumable stream of batches (next_batch); next_planned also tells the batch's kind:
    'mono', 'xx' or 'xy'."""

    def __init__(self, examples: list[ParallelExample], batch_size: int, strategy: SamplingName = "hybrid",
                 alpha: float = 0.5, languages: list[str] | None = None, weighting: Weighting = "uniform",
                 seed: int = 0, sources: list[int] | None = None, probabilities: list[float] | None = None):
        """`sources` and `probabilities` (a mixture, data/mixture.py): each example's source, and each source's
        share of the draws; without them every example is drawn once per epoch."""
        self.sources, self.probabilities = sources, probabilities
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"sampling.alpha must lie in [0, 1], got {alpha}")
        self.batch_size, self.strategy, self.alpha, self.weighting, self.seed = (
            batch_size, strategy, alpha, weighting, seed)
        present = sorted({lang for e in examples for lang in e.languages})
        code_of = {language_key(lang): lang for lang in present}  # any code of a language names it: en, eng_Latn
        wanted = {code_of.get(language_key(lang), lang) for lang in languages} if languages else None
        if wanted and not wanted <= set(present):
            raise InputError(f"data.languages: {', '.join(sorted(wanted - set(present)))} not in the training data "
                             f"(its languages: {', '.join(present)})")
        self.langs = [sorted(set(e.languages) & wanted) if wanted else e.languages for e in examples]
        self.examples = examples
        self.languages = sorted({lang for langs in self.langs for lang in langs})
        if not self.languages:
            raise InputError(f"no training example has both a query and a positive in {sorted(wanted or [])}")
        if len(examples) < batch_size:
            raise InputError(f"batch size {batch_size} exceeds the {len(examples)} training examples")
        self._check_kinds()
        self.epoch, self.consumed = 0, 0
        self._plan: list[tuple[str, list[Pair]]] | None = None

    def _check_kinds(self) -> None:
        """Every kind of batch the strategy draws can be filled: said before training, not at the first batch."""
        kinds = {"xx-mono": ["mono"], "xx": ["xx"], "xy": ["xy"],
                 "hybrid": (["mono"] if self.alpha > 0 else []) + (["xy"] if self.alpha < 1 else [])}[self.strategy]
        for kind in kinds:
            if kind == "mono":
                most = max(sum(lang in langs for langs in self.langs) for lang in self.languages)
                enough, what = most >= self.batch_size, f"at most {most} examples share a language"
            else:
                count = sum(self._eligible(i, kind, None) for i in range(len(self.examples)))
                enough = count >= self.batch_size
                what = f"{count} examples have {'two languages or more' if kind == 'xy' else 'a language'}"
            if not enough:
                raise InputError(f"no '{kind}' batch of {self.batch_size} pairs can be formed for sampling "
                                 f"'{self.strategy}': {what} (languages {', '.join(self.languages)})")

    @classmethod
    def of(cls, examples: list[ParallelExample], sampling: SamplingConfig, batch_size: int,
           languages: list[str] | None = None, seed: int = 0, sources: list[int] | None = None,
           probabilities: list[float] | None = None) -> BatchSampler:
        return cls(examples, batch_size, sampling.strategy, sampling.alpha, languages, sampling.weighting, seed,
                   sources, probabilities)

    # -- planning -------------------------------------------------------------------------------------------
    def _kind(self, rng: random.Random) -> str:
        if self.strategy == "hybrid":
            return "mono" if rng.random() < self.alpha else "xy"
        return {"xx-mono": "mono", "xx": "xx", "xy": "xy"}[self.strategy]

    def _mono_language(self, rng: random.Random, pending: list[int]) -> str:
        if self.weighting == "uniform":
            return rng.choice(self.languages)
        counts = [sum(lang in self.langs[i] for i in pending) for lang in self.languages]
        return rng.choices(self.languages, weights=counts)[0]

    def plan_epoch(self, epoch: int) -> list[tuple[str, list[Pair]]]:
        """Every batch of an epoch, drawn from random.Random(f'{seed}-{epoch}'); the epoch ends when the next
        batch can no longer be filled from the examples left."""
        rng = random.Random(f"{self.seed}-{epoch}")
        pending = self._epoch_order(rng)
        plan = []
        while True:
            kind = self._kind(rng)
            lang = self._mono_language(rng, pending) if kind == "mono" else None
            chosen, positions, taken = [], set(), set()
            for position, i in enumerate(pending):
                if i not in taken and self._eligible(i, kind, lang):  # a mixture may draw an example twice
                    chosen.append(i)
                    positions.add(position)
                    taken.add(i)
                    if len(chosen) == self.batch_size:
                        break
            if len(chosen) < self.batch_size:
                return plan
            pending = [i for position, i in enumerate(pending) if position not in positions]
            plan.append((kind, [self._pair(i, kind, lang, rng) for i in chosen]))

    def _epoch_order(self, rng: random.Random) -> list[int]:
        """The examples an epoch walks through: each once, shuffled; in a mixture, as many draws, each from a
        source picked by its probability, a source's examples in shuffled turns (a small source with a large
        share comes round again within the epoch, a large one with a small share does not come round whole)."""
        order = list(range(len(self.examples)))
        if self.probabilities is None:
            rng.shuffle(order)
            return order
        queues: list[list[int]] = [[] for _ in self.probabilities]
        for i in order:
            queues[self.sources[i]].append(i)
        turns = [list(queue) for queue in queues]
        for turn in turns:
            rng.shuffle(turn)
        picked = rng.choices(range(len(queues)), weights=self.probabilities, k=len(order))
        drawn = []
        for source in picked:
            if not turns[source]:
                turns[source] = list(queues[source])
                rng.shuffle(turns[source])
            drawn.append(turns[source].pop())
        return drawn

    def _eligible(self, index: int, kind: str, lang: str | None) -> bool:
        langs = self.langs[index]
        return lang in langs if kind == "mono" else len(langs) >= (2 if kind == "xy" else 1)

    def _pair(self, index: int, kind: str, lang: str | None, rng: random.Random) -> Pair:
        langs = self.langs[index]
        if kind == "mono":
            return Pair(self.examples[index], lang, lang)
        x = rng.choice(langs)
        return Pair(self.examples[index], x, x if kind == "xx" else rng.choice([y for y in langs if y != x]))

    # -- iteration and resume -------------------------------------------------------------------------------
    def next_batch(self) -> list[Pair]:
        return self.next_planned()[1]

    def next_planned(self) -> tuple[str, list[Pair]]:
        """(batch kind, pairs) of the next batch; moves to the next epoch when this one is spent."""
        if self._plan is None:
            self._plan = self.plan_epoch(self.epoch)
            if not self._plan:
                raise InputError(f"no '{self.strategy}' batch of {self.batch_size} can be formed from the data")
        if self.consumed >= len(self._plan):
            self.epoch, self.consumed, self._plan = self.epoch + 1, 0, None
            return self.next_planned()
        self.consumed += 1
        return self._plan[self.consumed - 1]

    def state_dict(self) -> dict:
        return {"seed": self.seed, "strategy": self.strategy, "alpha": self.alpha, "batch_size": self.batch_size,
                "epoch": self.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict) -> None:
        for key in ("seed", "strategy", "alpha", "batch_size"):
            if state[key] != getattr(self, key):
                raise InputError(f"checkpoint sampler has {key}={state[key]!r} but the configuration says "
                                 f"{getattr(self, key)!r}; resume with the configuration of the run")
        self.epoch, self.consumed, self._plan = state["epoch"], state["consumed"], None
