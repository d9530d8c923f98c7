"""Training mixtures: several train.jsonl sources (XQuAD-R pairs, FLORES bitext from `prepare bitext --train`,
translated SQuAD from `translate train` ...), each drawn with a weight, or by one temperature over their sizes
(p ∝ n^α, as mContriever does), read as one list of examples in which one language has one code: the code the
first source that has it uses (XQuAD-R's en, then FLORES's eng_Latn is en too)."""

from __future__ import annotations

from dataclasses import dataclass

from polyir.config import TrainSource
from polyir.data.records import ParallelExample
from polyir.data.trainset import read_train
from polyir.errors import InputError
from polyir.languages import language_key


@dataclass
class Mixture:
    examples: list[ParallelExample]
    sources: list[int]  # each example's source
    names: list[str]  # each source's file name, for logs and reports
    probabilities: list[float] | None  # each source's share of the draws; None: every example once per epoch


def read_mixture(sources: list[TrainSource], temperature: float | None = None) -> Mixture:
    """Every source's examples with their language codes made one per language, and the sources' shares."""
    codes: dict[tuple, str] = {}
    examples, of_source, ids = [], [], {}
    sizes = []
    for index, source in enumerate(sources):
        read = read_train(source.path)
        sizes.append(len(read))
        for example in read:
            if example.id in ids:
                raise InputError(f"example id '{example.id}' is also in {sources[ids[example.id]].path}; expected "
                                 "distinct ids across the sources of a mixture", source.path)
            ids[example.id] = index
            examples.append(_recoded(example, codes, source))
            of_source.append(index)
    if len(sources) > 1 and sources[0].weight is not None:
        total = sum(source.weight for source in sources)
        probabilities = [source.weight / total for source in sources]
    elif len(sources) > 1 and temperature is not None:
        scaled = [size ** temperature for size in sizes]
        probabilities = [value / sum(scaled) for value in scaled]
    else:
        probabilities = None
    names = [source.path.name for source in sources]
    if len(set(names)) < len(names):  # two train.jsonl in other folders: named by their paths
        names = [str(source.path) for source in sources]
    return Mixture(examples, of_source, names, probabilities)


def _recoded(example: ParallelExample, codes: dict[tuple, str], source: TrainSource) -> ParallelExample:
    """`example` with every language code replaced by the mixture's code for that language."""
    def recode(texts: dict[str, str], what: str) -> dict[str, str]:
        out = {}
        for lang, text in texts.items():
            code = codes.setdefault(language_key(lang), lang)
            if code in out:
                raise InputError(f"example '{example.id}' has its {what} twice in one language ({code} and {lang})",
                                 source.path)
            out[code] = text
        return out

    return ParallelExample(example.id, recode(example.query, "query"), recode(example.positive, "positive"),
                           [recode(negative, "negative") for negative in example.negatives])
