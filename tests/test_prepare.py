"""`polyir prepare` on real XQuAD-R and FLORES data (the bundled sample; all of XQuAD-R where it is beside), and
the readers behind it."""

from __future__ import annotations

import json

from polyir.data import read_beir, read_train
from polyir.data.lareqa import article_count, read_lareqa, split_articles
from tests.helpers import polyir


def question_count(path) -> int:
    """Distinct question ids in a SQuAD-format file, read apart from polyir's reader."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return len({qa["id"] for article in data for paragraph in article["paragraphs"] for qa in paragraph["qas"]})


def test_full_xquad_r_prepares_all_1190_questions_in_11_languages(full_data, tmp_path):
    out = tmp_path / "xq"
    assert polyir("prepare", "lareqa", full_data / "xquad-r", out, "--holdout", "0").returncode == 0
    examples = read_train(out / "train.jsonl")
    assert len(examples) == question_count(full_data / "xquad-r" / "en.json") == 1190
    assert all(len(e.languages) == 11 for e in examples)


def test_lareqa_split_is_by_article_and_complete(data_dir, tmp_path):
    out = tmp_path / "xq"
    result = polyir("prepare", "lareqa", data_dir / "xquad-r", out, "--holdout", "0.33", "--seed", "3")
    assert result.returncode == 0, result.stderr
    train = read_train(out / "train.jsonl")
    task = read_beir(out / "eval")
    by_lang = read_lareqa(data_dir / "xquad-r")
    assert len(by_lang) == 6 and article_count(by_lang) == 12  # the bundled sample
    train_articles, eval_articles = split_articles(12, 0.33, 3)
    assert len(eval_articles) == 4 and len(train_articles) == 8
    eval_question_ids = {q.id.rsplit("-", 1)[0] for q in task.queries}
    assert not eval_question_ids & {e.id for e in train}, "a question is on both sides of the split"
    assert len(train) + len(eval_question_ids) == question_count(data_dir / "xquad-r" / "en.json")
    assert all(len(e.languages) == 6 for e in train)
    assert task.corpus_languages == sorted(by_lang) and task.query_languages == sorted(by_lang)
    # every query has exactly one relevant sentence per language, and it holds the answer
    first = task.queries[0]
    relevant = task.qrels[first.id]
    assert len(relevant) == 6 and {doc_id.split("-")[0] for doc_id in relevant} == set(by_lang)
    english = next(e for e in train if "How many" in e.query["en"])
    assert english.positive["en"].strip()
    # the corpus holds every sentence of the held-out articles
    n_sentences = sum(len(by_lang[lang][a].sentences) for lang in by_lang for a in eval_articles)
    assert len(task.corpus) == n_sentences


def test_lareqa_answer_sentence_contains_the_answer(data_dir, tmp_path):
    out = tmp_path / "xq"
    assert polyir("prepare", "lareqa", data_dir / "xquad-r", out, "--holdout", "0").returncode == 0
    assert not (out / "eval").exists()
    raw = json.loads((data_dir / "xquad-r" / "en.json").read_text())
    answers = {qa["id"]: qa["answers"][0]["text"] for article in raw["data"] for paragraph in article["paragraphs"]
               for qa in paragraph["qas"]}
    examples = read_train(out / "train.jsonl")
    assert len(examples) == len(answers) == 322
    inside = sum(answers[e.id] in e.positive["en"] for e in examples)
    assert inside / len(examples) > 0.98  # answers that cross a sentence break are the rare exception


def test_lareqa_split_is_deterministic(data_dir, tmp_path):
    for name in ("a", "b"):
        assert polyir("prepare", "lareqa", data_dir / "xquad-r", tmp_path / name, "--holdout", "0.5",
                      "--seed", "7").returncode == 0
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == (tmp_path / "b" / "train.jsonl").read_bytes()
    assert polyir("prepare", "lareqa", data_dir / "xquad-r", tmp_path / "c", "--holdout", "0.5",
                  "--seed", "8").returncode == 0
    assert (tmp_path / "a" / "train.jsonl").read_bytes() != (tmp_path / "c" / "train.jsonl").read_bytes()


def test_bitext_pivot_and_pooled(data_dir, tmp_path):
    langs = "swh_Latn,yor_Latn,amh_Ethi"
    result = polyir("prepare", "bitext", data_dir / "flores-sib200", tmp_path / "pivot", "--pivot", "eng_Latn",
                    "--langs", langs)
    assert result.returncode == 0, result.stderr
    task = read_beir(tmp_path / "pivot")
    assert task.corpus_languages == ["eng_Latn"]
    assert task.query_languages == ["amh_Ethi", "swh_Latn", "yor_Latn"]
    assert len(task.queries) == 3 * 200 and len(task.corpus) == 200  # the sample: 200 lines
    ids = (data_dir / "flores-sib200" / "ids.txt").read_text().split()
    assert task.qrels[f"swh_Latn-{ids[5]}"] == {f"eng_Latn-{ids[5]}": 1}
    assert polyir("prepare", "bitext", data_dir / "flores-sib200", tmp_path / "pooled", "--pivot", "eng_Latn",
                  "--langs", langs, "--pooled").returncode == 0
    pooled = read_beir(tmp_path / "pooled")
    assert len(pooled.corpus) == 4 * 200 and len(pooled.queries) == 4 * 200
    assert set(pooled.qrels[f"yor_Latn-{ids[0]}"]) == {f"{c}-{ids[0]}" for c in ("eng_Latn", "swh_Latn", "amh_Ethi")}
