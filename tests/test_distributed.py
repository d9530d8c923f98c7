"""Data parallelism on CPU with gloo: two processes under torchrun train exactly as one process does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from polyir.data.records import ParallelExample
from polyir.distributed import World
from polyir.training.sampling import BatchSampler
from tests.test_train import log_of, write_config


def torchrun(*args, processes: int = 2) -> subprocess.CompletedProcess:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                           "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "polyir", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


def single(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "polyir", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


def final_weights(output_dir):
    return load_file(sorted((output_dir / "checkpoints").glob("step-*"))[-1] / "model.safetensors")


@pytest.mark.parametrize("step", [
    {"strategy": "full", "batch_size": 8},
    {"strategy": "gradcache", "batch_size": 8, "chunk_size": 3},
    {"strategy": "accumulation", "batch_size": 8, "micro_batch_size": 4},
    {"strategy": "contaccum", "batch_size": 8, "micro_batch_size": 4, "bank_size": 12},
])
def test_two_processes_equal_one_process(step, tiny_m2m100_no_dropout, small_xquad, tmp_path):
    overrides = {"step": step, "optim.max_steps": 3, "optim.lr": 5e-3, "sampling.strategy": "hybrid"}
    one = write_config(tmp_path / "one.yaml", tmp_path / "one", tiny_m2m100_no_dropout, small_xquad, **overrides)
    two = write_config(tmp_path / "two.yaml", tmp_path / "two", tiny_m2m100_no_dropout, small_xquad, **overrides)
    result = single("train", "--config", one, "--quiet")
    assert result.returncode == 0, result.stderr
    result = torchrun("train", "--config", two, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    reference, parallel = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    start = load_file(tiny_m2m100_no_dropout / "model.safetensors")
    names = sorted(set(reference) & set(start))  # safetensors keeps one name of tied weights
    ref = torch.cat([reference[n].flatten() for n in names])
    par = torch.cat([parallel[n].flatten() for n in names])
    initial = torch.cat([start[n].flatten() for n in names])
    assert float((par - ref).norm() / ref.norm()) <= 1e-5
    # stricter: the difference is tiny next to what training changed
    assert float((par - ref).norm() / (ref - initial).norm()) <= 1e-4
    assert float((ref - initial).norm() / initial.norm()) > 1e-3, "training changed the weights"
    for a, b in zip(log_of(tmp_path / "one"), log_of(tmp_path / "two")):
        assert a["examples"] == b["examples"]
        if "negatives" in a:  # every process's queries counted: the same audit, but for where the negatives were
            cross = b["negatives"].pop("cross_device")
            moved = {k: a["negatives"][k] - b["negatives"][k] for k in ("in_batch_same_language",
                                                                        "in_batch_other_language")}
            assert cross == pytest.approx(sum(moved.values())) and cross > 0
            assert {k: v for k, v in a["negatives"].items() if k not in moved and k != "cross_device"} == \
                pytest.approx({k: v for k, v in b["negatives"].items() if k not in moved})
        assert (a["loss"] is None and b["loss"] is None) or abs(a["loss"] - b["loss"]) < 1e-5
        if "dev" in a:  # evaluation sharded over the two ranks gives the same metrics; the weights agree up to
            # float rounding, which can swap two near-tied documents: a few millionths of map
            assert a["dev"]["eval"]["multi"]["map"] == pytest.approx(b["dev"]["eval"]["multi"]["map"], abs=1e-4)


def test_resume_with_another_world_size_is_refused(tiny_m2m100_no_dropout, small_xquad, tmp_path):
    config = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_m2m100_no_dropout, small_xquad,
                          **{"optim.max_steps": 2})
    assert torchrun("train", "--config", config, "--quiet").returncode == 0
    config = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_m2m100_no_dropout, small_xquad,
                          **{"optim.max_steps": 4})
    result = single("train", "--config", config, "--quiet", "--resume")
    assert result.returncode == 2 and "written by 2 processes" in result.stderr
    assert "same world size" in result.stderr


def test_shards_partition_the_global_batch_and_keep_its_language():
    examples = [ParallelExample(str(i), {"en": "q", "de": "q", "sw": "q"}, {"en": "p", "de": "p", "sw": "p"})
                for i in range(200)]
    sampler = BatchSampler(examples, 24, "hybrid", seed=3)
    for _ in range(30):
        kind, pairs = sampler.next_planned()
        for unit in (24, 8):  # whole batch, or micro-batches of 8 under accumulation
            parts = World(size=4).shares(pairs, unit)
            assert sorted(p.example.id for part in parts for p in part) == sorted(p.example.id for p in pairs)
            assert all(len(part) == 6 for part in parts)
            for j in range(0, 24, unit):  # each micro-batch is split evenly over the ranks
                micro = {p.example.id for p in pairs[j:j + unit]}
                assert all(len(micro & {p.example.id for p in part}) == unit // 4 for part in parts)
            if kind == "mono":
                assert len({p.query_lang for part in parts for p in part}) == 1


def test_bad_world_size_for_the_batch(tiny_m2m100_no_dropout, small_xquad, tmp_path):
    config = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_m2m100_no_dropout, small_xquad,
                          step={"strategy": "full", "batch_size": 7})
    result = torchrun("train", "--config", config, "--quiet")
    assert result.returncode != 0 and "must be a multiple of the 2 processes" in result.stderr


@pytest.mark.parametrize("micro", [None, 4])
def test_every_rank_knows_every_ranks_row_counts(micro, tiny_m2m100, parallel_examples):
    """The counts that spare exchanging row counts before each gather (a host wait) match what every rank's
    share holds, for the whole batch and for each micro-batch, negatives included (some pairs have one)."""
    from polyir.distributed import World
    from polyir.models.biencoder import BiEncoder
    from polyir.training.loader import BatchLoader

    model = BiEncoder.from_pretrained(tiny_m2m100)
    batches = []
    for rank in range(2):
        loader = BatchLoader(BatchSampler(parallel_examples, 12, "xy", seed=1), model, World(rank, 2), micro)
        try:
            batches.append(loader.next()[1])
        finally:
            loader.close()
    parts = [b.split(micro // 2) if micro else [b] for b in batches]
    assert any(n is not None for b in batches for n in b.negatives)
    for rank, mine in enumerate(parts):
        for index, part in enumerate(mine):
            actual = {"query": len(part), "passage": len(part),
                      "negative": sum(n is not None for n in part.negatives)}
            for kind, count in actual.items():
                assert part.rows(kind)[rank] == count
                assert part.rows(kind) == parts[1 - rank][index].rows(kind)  # both ranks agree
