"""The kept model (output_dir/model/) and the report are one state with what records them: a kill at any moment
leaves the old state or the new one, and a resume or rerun finishes what the kill left half-done. Kills are
injected in-process at the exact moment (a real SIGKILL cannot be aimed between two renames)."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file

import polyir
from polyir.files import replace_together
from polyir.training import checkpoints, kept
from tests.test_train import write_config


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs but `finally` blocks, which write nothing here."""


def weights(folder):
    return load_file(folder / "model.safetensors")


def same(a, b):
    """Equal weights; a checkpoint stores a tied tensor under another of its names than save_pretrained does, so
    the encoder's tensors (all of them, in both) are compared."""
    encoder = {k for k in a if k.startswith("encoder.")}
    return encoder and encoder == {k for k in b if k.startswith("encoder.")} and \
        all(torch.equal(a[k], b[k]) for k in encoder)


@pytest.fixture
def every_evaluation_improves(monkeypatch):
    """Every dev evaluation is a new best, so that a new kept model is staged at every step."""
    monkeypatch.setattr("polyir.training.trainer.better", lambda *_: True)


def config_of(tmp_path, name, tiny_m2m100, small_xquad):
    return write_config(tmp_path / f"{name}.yaml", tmp_path / name, tiny_m2m100, small_xquad,
                        **{"optim.max_steps": 4, "eval.every_steps": 1,
                           "checkpoint": {"every_steps": 1, "keep": 10}})


def test_a_kill_before_the_checkpoint_leaves_model_as_the_checkpoint_says(every_evaluation_improves, monkeypatch,
                                                                          tiny_m2m100, small_xquad, tmp_path):
    reference = polyir.train(config_of(tmp_path, "reference", tiny_m2m100, small_xquad), show_progress=False)
    save = checkpoints.save

    def killed_at_step_4(folder, step, *args):
        if step == 4:
            raise Killed  # step 4's model is staged as the new best; its checkpoint is never written
        return save(folder, step, *args)

    monkeypatch.setattr(checkpoints, "save", killed_at_step_4)
    config = config_of(tmp_path, "killed", tiny_m2m100, small_xquad)
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        polyir.train(config, show_progress=False)
    newest = checkpoints.newest(out / "checkpoints")
    best = torch.load(newest / checkpoints.STATE, weights_only=False)["best"]
    assert newest.name == "step-00000003" and best["step"] == 3
    assert kept.record_of(out / "model")["step"] == 3, "model/ is the model the newest checkpoint records"
    assert same(weights(out / "model"), weights(newest)), "model/ holds step 3's weights, not step 4's"
    monkeypatch.setattr(checkpoints, "save", save)
    resumed = polyir.train(config, resume=True, show_progress=False)
    assert same(weights(resumed), weights(reference)) and kept.record_of(resumed)["step"] == 4
    assert not (out / kept.PENDING).exists()


def test_a_kill_between_the_two_renames_is_finished_on_resume(every_evaluation_improves, monkeypatch, tiny_m2m100,
                                                              small_xquad, tmp_path):
    reference = polyir.train(config_of(tmp_path, "reference", tiny_m2m100, small_xquad), show_progress=False)
    replace = os.replace

    def killed_before_the_pending_model_moves_in(source, target):
        if str(source).endswith(kept.PENDING) and kept.record_of(source)["step"] == 4:
            raise Killed  # model/ has moved aside; the final model is not yet in its place
        replace(source, target)

    monkeypatch.setattr(kept.os, "replace", killed_before_the_pending_model_moves_in)
    config = config_of(tmp_path, "killed", tiny_m2m100, small_xquad)
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        polyir.train(config, show_progress=False)
    assert not (out / "model").exists() and (out / kept.OLD).is_dir() and (out / kept.PENDING).is_dir()
    monkeypatch.setattr(kept.os, "replace", replace)
    resumed = polyir.train(config, resume=True, show_progress=False)  # the run is done: only the repair runs
    assert same(weights(resumed), weights(reference)) and kept.record_of(resumed)["step"] == 4
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".polyir.lock"]


def test_a_kill_before_any_checkpoint_keeps_no_model(every_evaluation_improves, monkeypatch, tiny_m2m100,
                                                    small_xquad, tmp_path):
    """The untrained model is the best at step 0, but no checkpoint records it yet: model/ must not exist, since a
    resume starts over and its log will not mention it."""
    monkeypatch.setattr(checkpoints, "save", lambda *_: (_ for _ in ()).throw(Killed))
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        polyir.train(config_of(tmp_path, "killed", tiny_m2m100, small_xquad), show_progress=False)
    assert not (out / "model").exists() and kept.record_of(out / kept.PENDING)["step"] == 1


def test_files_replaced_together_survive_a_kill_at_every_point(tmp_path, monkeypatch):
    """report.md, results.json and plots/ change as one: a kill after any rename leaves a journal that the next
    writer (or the repair at the start of a rerun) finishes, so no reader is left with report.md of one run beside
    results.json of another once a command has started again."""
    replace = os.replace
    old = {"results.json": "old numbers", "report.md": "old lr", "plots/a.png": "old plot", "plots/b.png": "gone"}
    new = {"results.json": "new numbers", "report.md": "new lr", "plots/a.png": "new plot"}

    def state(folder):
        return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}

    moves = 0
    for kill_at in range(1, 10):
        folder = tmp_path / str(kill_at)
        for name, text in old.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        calls = 0

        def counting(source, target, kill_at=kill_at):
            nonlocal calls
            calls += 1
            if calls == kill_at:
                raise Killed
            replace(source, target)

        monkeypatch.setattr("polyir.files.os.replace", counting)
        try:
            with replace_together(folder) as staging:
                for name, text in new.items():
                    (staging / name).parent.mkdir(parents=True, exist_ok=True)
                    (staging / name).write_text(text)
            moves = calls
        except Killed:
            pass
        monkeypatch.setattr("polyir.files.os.replace", replace)
        with replace_together(folder):
            pass  # the next writer: it finishes (or drops) what the kill left, then changes nothing
        assert state(folder) in (old, new), (kill_at, state(folder))
    assert moves > 0, "some kill point lay beyond the last rename"
