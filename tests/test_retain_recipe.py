"""configs/retain.yaml, the recipe that does no harm: it runs from a checkout's root after the README's two
prepare commands, trains on what it says and never on what it tests, and it is the very cell bench/retain.yaml
measured."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from polyir.comparison.grid import expand, train_config
from polyir.config import CompareConfig, TrainConfig
from polyir.data import read_beir, read_train
from tests.helpers import polyir

ROOT = Path(__file__).resolve().parents[1]
RECIPE, MEASURED = ROOT / "configs" / "retain.yaml", ROOT / "bench" / "retain.yaml"


def prepare(data_dir: Path, root: Path) -> None:
    """The README's two commands, run in `root` on `data_dir` (../shared/data, or the bundled sample)."""
    for command in (("lareqa", data_dir / "xquad-r", "data/xquad", "--holdout", "0.25"),
                    ("bitext", data_dir / "flores-sib200", "data/flores", "--pivot", "eng_Latn", "--train",
                     "--holdout", "0.5")):
        result = polyir("prepare", *command, cwd=root)
        assert result.returncode == 0, result.stderr


def test_the_recipe_runs_from_the_root_after_the_readme_commands(data_dir, tmp_path):
    """The shipped file, shortened to 2 steps, on the bundled sample."""
    prepare(data_dir, tmp_path)
    config = yaml.safe_load(RECIPE.read_text())
    config["optim"].update(max_steps=2, max_examples=64, warmup_steps=1)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "retain.yaml").write_text(yaml.safe_dump(config))
    result = polyir("train", "--config", "configs/retain.yaml", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = tmp_path / config["output_dir"]
    assert (run / "model" / "model.safetensors").is_file()
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    drawn = [entry["drawn"] for entry in log if entry.get("drawn")][-1]
    assert set(drawn["sources"]) <= {"data/xquad/train.jsonl", "data/flores/train.jsonl"} and drawn["sources"]
    never = {"el", "vi", "tel_Telu", "ben_Beng", "te", "bn"}  # the zero-shot languages of the bundled sample
    assert not never & {lang for key in drawn["languages"] for lang in key.split("->")}
    saved = json.loads((run / "model" / "polyir_config.json").read_text())
    assert saved["max_passage_length"] == 512 and saved["training"]["max_passage_length"] == 48


def test_training_never_reads_a_test_line(data_dir, tmp_path):
    """The recipe's training files hold none of the held-out articles' questions and sentences nor the held-out
    FLORES lines it is tested on (and the distillation texts bench/retain.yaml measured beside it neither)."""
    prepare(data_dir, tmp_path)
    config = TrainConfig.load(RECIPE)
    tested = set()
    for source in config.data.train:
        test = read_beir((tmp_path / source.path).parent / "eval")
        tested |= {q.text for q in test.queries} | {d.text for d in test.corpus}
    for source in config.data.train:
        trained = {text for e in read_train(tmp_path / source.path) for side in (e.query, e.positive)
                   for text in side.values()}
        assert trained and not tested & trained, source.path
    measured = CompareConfig.load(MEASURED)
    for retention in measured.grid.retention:
        for path in (retention.distill.texts.values() if retention.distill else []):
            lines = set((tmp_path / path).read_text(encoding="utf-8").splitlines())
            assert lines and not tested & lines, path


def test_the_recipe_is_the_measured_cell():
    """The cell of bench/retain.yaml with the recipe's retention (none) trains exactly what configs/retain.yaml
    trains, but where it writes and its one dev evaluation after the last step: bench/RESULTS.md's figures are the
    recipe's (its weights matched SHA-256 for SHA-256 when measured)."""
    recipe = TrainConfig.load(RECIPE)
    measured = CompareConfig.load(MEASURED)
    cells = [cell for cell in expand(measured) if cell.retention == recipe.retention]
    assert len(cells) == 1
    cell = train_config(measured, cells[0], measured.data)
    assert cell.eval.at_start is False and cell.eval.every_examples == cell.optim.max_examples  # last model kept
    ignored = {"output_dir": True, "eval": True, "checkpoint": True, "data": {"dev"}}
    assert cell.model_dump(exclude=ignored) == recipe.model_dump(exclude=ignored)
