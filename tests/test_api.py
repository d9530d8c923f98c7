"""The public API: what `polyir` exposes gives the same model and the same numbers as the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from safetensors.torch import load_file

import polyir
from tests.helpers import polyir as run


def test_import_is_cheap_and_every_public_name_resolves():
    loaded = subprocess.run([sys.executable, "-c", "import sys, polyir; print('torch' in sys.modules)"],
                            capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"
    for name in polyir.__all__:
        assert getattr(polyir, name) is not None, name
    assert polyir.evaluate.__name__ == "evaluate_task" and polyir.compare.__module__ == "polyir.comparison"
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        polyir.trian  # noqa: B018


def test_train_and_evaluate_from_python_equal_the_command_line(tiny_m2m100, small_xquad, tmp_path):
    settings = {
        "seed": 0,
        "model": {"name_or_path": str(tiny_m2m100), "max_query_length": 24, "max_passage_length": 48},
        "data": {"train": str(small_xquad / "train.jsonl"), "languages": ["de", "en", "es"],
                 "dev": [str(small_xquad / "eval")]},
        "sampling": {"strategy": "hybrid", "alpha": 0.5},
        "step": {"strategy": "gradcache", "batch_size": 8, "chunk_size": 3},
        "optim": {"lr": 1e-3, "warmup_steps": 1, "max_steps": 3},
        "eval": {"every_steps": 3, "depth": 20},
    }
    from_python = polyir.train(polyir.TrainConfig(output_dir=tmp_path / "api", **settings), show_progress=False)
    (tmp_path / "cli.yaml").write_text(yaml.safe_dump({"output_dir": str(tmp_path / "cli"), **settings}))
    trained = run("train", "--config", tmp_path / "cli.yaml", "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert from_python == tmp_path / "api" / "model"
    ours, theirs = load_file(from_python / "model.safetensors"), load_file(tmp_path / "cli" / "model" /
                                                                            "model.safetensors")
    assert ours.keys() == theirs.keys() and all(ours[k].equal(theirs[k]) for k in ours)

    result = polyir.evaluate(polyir.BiEncoder.from_pretrained(from_python), polyir.read_beir(small_xquad / "eval"),
                             depth=20, show_progress=False)
    evaluated = run("evaluate", "--model", tmp_path / "cli" / "model", "--task", small_xquad / "eval", "--depth",
                    "20", "--out", tmp_path / "E", "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads((tmp_path / "E" / "metrics.json").read_text())["eval"] == result.table.as_json()
