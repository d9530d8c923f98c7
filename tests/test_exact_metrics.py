"""One ranking feeds the runs and the metrics: every number in metrics.json equals what an independent scorer
computes from the written run, ties included, and every @k measure is cut at k."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import ir_measures
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from polyir.data import read_beir
from polyir.data.records import Document, Query, RetrievalTask
from polyir.evaluation.harness import evaluate_embeddings
from polyir.evaluation.metrics import measures_at_cuts
from tests.helpers import polyir
from tests.reference_metrics import read_run, setting_metrics

LANGS = ("en", "sw", "yo")


def check_against_run(task: RetrievalTask, table, run_path: Path) -> int:
    """Every entry of every setting equals the reference computed from the run; returns how many were checked."""
    ranking = read_run(run_path)
    query_lang = {q.id: q.lang for q in task.queries}
    doc_lang = {d.id: d.lang for d in task.corpus}
    checked = 0
    for setting in table.settings:
        for key, entry in table.setting(setting).items():
            expected, n = setting_metrics(ranking, task.qrels, query_lang, doc_lang, setting, key)
            assert entry["n"] == n, (setting, key)
            assert {name: entry[name] for name in expected} == pytest.approx(expected, abs=1e-12), (setting, key)
            assert set(entry) - {"n"} == set(expected), (setting, key)
            checked += 1
    return checked


@st.composite
def tied_tasks(draw):
    """Small tasks whose scores tie a lot: embeddings of -1, 0 and 1, documents and queries in three languages,
    graded judgements."""
    n_docs, n_queries = draw(st.integers(1, 24)), draw(st.integers(1, 6))
    corpus = [Document(f"d{i}", "", draw(st.sampled_from(LANGS))) for i in range(n_docs)]
    queries = [Query(f"q{i}", "", draw(st.sampled_from(LANGS))) for i in range(n_queries)]
    qrels = {}
    for query in queries:
        judged = draw(st.dictionaries(st.integers(0, n_docs - 1), st.integers(0, 2), min_size=1, max_size=n_docs))
        judged[draw(st.integers(0, n_docs - 1))] = draw(st.integers(1, 2))  # one relevant document at least
        qrels[query.id] = {f"d{i}": grade for i, grade in judged.items()}
    cell = st.integers(-1, 1)
    docs = torch.tensor(draw(st.lists(st.lists(cell, min_size=2, max_size=2), min_size=n_docs, max_size=n_docs)))
    query_emb = torch.tensor(draw(st.lists(st.lists(cell, min_size=2, max_size=2), min_size=n_queries,
                                           max_size=n_queries)))
    return RetrievalTask("t", corpus, queries, qrels), query_emb.float(), docs.float()


@settings(max_examples=150, deadline=None)
@given(tied_tasks(), st.integers(1, 5), st.integers(1, 7))
def test_metrics_of_every_setting_equal_a_brute_force_scorer_of_the_run(case, query_chunk, doc_chunk):
    task, query_emb, doc_emb = case
    with tempfile.TemporaryDirectory() as folder:
        whole, top = Path(folder) / "whole.trec", Path(folder) / "top.trec"
        result = evaluate_embeddings(task, query_emb, doc_emb, depth=0, run_path=whole,
                                     chunks=(query_chunk, doc_chunk))
        check_against_run(task, result.table, whole)
        # a shallower run is the same ranking cut short, ties at the cut included
        evaluate_embeddings(task, query_emb, doc_emb, depth=3, run_path=top, chunks=(query_chunk, doc_chunk))
        deep, shallow = read_run(whole), read_run(top)
        assert shallow == {qid: docs[:3] for qid, docs in deep.items()}


def test_every_cut_by_hand():
    # relevant documents (grades 2 and 1) at ranks 3 and 16, a third (grade 1) at rank 120
    ranks, valid = torch.tensor([[3, 16, 120]]), torch.ones(1, 3, dtype=torch.bool)
    values = {name: float(v) for name, v in measures_at_cuts(ranks, valid, torch.tensor([[2.0, 1.0, 1.0]])).items()}
    ideal = 2 + 1 / 1.584962500721156 + 1 / 2
    assert values == pytest.approx({"ndcg@10": (2 / 2) / ideal, "recall@1": 0.0, "recall@10": 1 / 3,
                                    "recall@100": 2 / 3, "mrr@10": 1 / 3}, abs=1e-15)
    # the first relevant document at rank 16: reciprocal rank at 10 is 0, not 1/16
    late = measures_at_cuts(torch.tensor([[16]]), torch.ones(1, 1, dtype=torch.bool), torch.ones(1, 1))
    assert float(late["mrr@10"]) == 0.0 and float(late["recall@100"]) == 1.0


def test_cuts_agree_with_trec_eval_where_ties_cannot_matter():
    generator = torch.Generator().manual_seed(3)
    scores = torch.randn(40, 300, generator=generator, dtype=torch.float64)  # no ties
    qrels, ranks, grades = {}, [], []
    for q in range(40):
        chosen = torch.randperm(300, generator=generator)[:5].tolist()
        graded = {d: 1 + (d % 3 == 0) for d in chosen}
        qrels[str(q)] = {str(d): g for d, g in graded.items()}
        order = scores[q].argsort(descending=True).tolist()
        ranked = sorted((order.index(d) + 1, g) for d, g in graded.items())
        ranks.append([r for r, _ in ranked])
        grades.append([g for _, g in ranked])
    ours = measures_at_cuts(torch.tensor(ranks), torch.ones(40, 5, dtype=torch.bool), torch.tensor(grades))
    run = {str(q): {str(d): float(scores[q, d]) for d in range(300)} for q in range(40)}
    top10 = {q: dict(sorted(docs.items(), key=lambda item: -item[1])[:10]) for q, docs in run.items()}
    library = {"ndcg@10": (ir_measures.nDCG @ 10, run), "recall@1": (ir_measures.R @ 1, run),
               "recall@10": (ir_measures.R @ 10, run), "recall@100": (ir_measures.R @ 100, run),
               "mrr@10": (ir_measures.RR, top10)}  # trec_eval's RR has no cut-off: cut the run instead
    for name, (measure, given_run) in library.items():
        expected = {m.query_id: m.value for m in ir_measures.iter_calc([measure], qrels, given_run)}
        assert ours[name].tolist() == pytest.approx([expected[str(q)] for q in range(40)], abs=1e-12), name


def test_bm25_metrics_equal_its_own_run_on_real_bitext(data_dir, tmp_path):
    """Cross-lingual BM25 is mostly ties: FLORES-200 lines of Swahili and Yoruba against English."""
    folder = tmp_path / "flores"
    prepared = polyir("prepare", "bitext", data_dir / "flores-sib200", folder, "--pivot", "eng_Latn", "--langs",
                      "eng_Latn,swh_Latn,yor_Latn,hau_Latn")
    assert prepared.returncode == 0, prepared.stderr
    result = polyir("evaluate", "--model", "bm25", "--task", folder, "--depth", "0", "--out", tmp_path / "E",
                    "--quiet")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "E" / "metrics.json").read_text())["flores"]
    task = read_beir(folder)
    ranking = read_run(tmp_path / "E" / "runs" / "flores.trec")
    query_lang, doc_lang = {q.id: q.lang for q in task.queries}, {d.id: d.lang for d in task.corpus}
    for key, entry in metrics["cross"].items():
        expected, n = setting_metrics(ranking, task.qrels, query_lang, doc_lang, "cross", key)
        assert entry["n"] == n == 200
        assert {name: entry[name] for name in expected} == pytest.approx(expected, abs=1e-12), key
    assert 0.2 < metrics["summary"]["cross"]["ndcg@10"] < 0.8


def test_non_finite_embeddings_are_an_error_naming_model_and_task(tiny_bert, data_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    broken.mkdir()
    for path in tiny_bert.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    weights = load_file(broken / "model.safetensors")
    name = next(key for key in weights if key.endswith("LayerNorm.weight"))
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, broken / "model.safetensors")
    folder = tmp_path / "flores"
    assert polyir("prepare", "bitext", data_dir / "flores-sib200", folder, "--pivot", "eng_Latn", "--langs",
                  "eng_Latn,swh_Latn").returncode == 0
    result = polyir("evaluate", "--model", broken, "--task", folder, "--out", tmp_path / "E", "--quiet")
    assert result.returncode == 1, result.stderr
    assert "non-finite" in result.stderr and str(broken) in result.stderr and "task flores" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "E").exists()
