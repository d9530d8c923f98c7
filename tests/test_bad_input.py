"""Bad input: exit code 2, a message naming the file, the line and what was expected, and no output left."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import polyir


def beir_folder(root: Path, corpus: list[str], queries: list[str], qrels: list[str]) -> Path:
    root.mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(line + "\n" for line in corpus))
    (root / "queries.jsonl").write_text("".join(line + "\n" for line in queries))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("".join(line + "\n" for line in qrels))
    return root


GOOD_CORPUS = ['{"_id": "d1", "title": "", "text": "one", "lang": "en"}',
               '{"_id": "d2", "title": "", "text": "two", "lang": "de"}']
GOOD_QUERIES = ['{"_id": "q1", "text": "what", "lang": "en"}']
GOOD_QRELS = ["query-id\tcorpus-id\tscore", "q1\td2\t1"]

BEIR_CASES = {
    "malformed json": (["{\"_id\": \"d1\", \"text\": \"one\", \"lang\": \"en\"}", "{oops"], GOOD_QUERIES, GOOD_QRELS,
                       "corpus.jsonl:2", "malformed JSON"),
    "missing text": (GOOD_CORPUS, ['{"_id": "q1", "lang": "en"}'], GOOD_QRELS, "queries.jsonl:1",
                     "missing field 'text'"),
    "duplicate id": (GOOD_CORPUS + ['{"_id": "d1", "text": "again", "lang": "en"}'], GOOD_QUERIES, GOOD_QRELS,
                     "corpus.jsonl:3", "duplicate _id 'd1'"),
    "unknown corpus id": (GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS + ["q1\tnope\t1"], "test.tsv:3",
                          "unknown corpus-id 'nope'"),
    "unknown query id": (GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS + ["q9\td1\t1"], "test.tsv:3",
                         "unknown query-id 'q9'"),
    "bad score": (GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS + ["q1\td1\thigh"], "test.tsv:3", "integer"),
    "empty corpus": ([], GOOD_QUERIES, GOOD_QRELS, "corpus.jsonl", "empty file"),
    "lang on some lines only": (GOOD_CORPUS + ['{"_id": "d3", "text": "three"}'], GOOD_QUERIES, GOOD_QRELS,
                                "corpus.jsonl:3", "'lang' is present on line 1 but missing on line 3"),
}


@pytest.mark.parametrize("case", list(BEIR_CASES))
def test_evaluate_rejects_bad_beir_folders(case, tmp_path, tiny_bert):
    corpus, queries, qrels, where, what = BEIR_CASES[case]
    task = beir_folder(tmp_path / "task", corpus, queries, qrels)
    result = polyir("evaluate", "--model", tiny_bert, "--task", task, "--out", tmp_path / "out", "--quiet")
    assert result.returncode == 2, result.stderr
    assert where in result.stderr and what in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir()), "temporary output left behind"


TRAIN_CASES = {
    "malformed json": ('{"id": "a", "query": {"en": "q"}, "positive": {"en": "p"}}\n{"id": ', "train.jsonl:2",
                       "malformed JSON"),
    "missing positive": ('{"id": "a", "query": {"en": "q"}}\n', "train.jsonl:1", "missing field 'positive'"),
    "duplicate id": ('{"id": "a", "query": {"en": "q"}, "positive": {"en": "p"}}\n' * 2, "train.jsonl:2",
                     "duplicate id 'a'"),
    "no shared language": ('{"id": "a", "query": {"en": "q"}, "positive": {"de": "p"}}\n', "train.jsonl:1",
                           "share no language"),
    "empty text": ('{"id": "a", "query": {"en": ""}, "positive": {"en": "p"}}\n', "train.jsonl:1",
                   "'query.en' must be a non-empty string"),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_train_reader_names_file_and_line(case, tmp_path):
    from polyir.data import read_train
    from polyir.errors import InputError

    text, where, what = TRAIN_CASES[case]
    (tmp_path / "train.jsonl").write_text(text)
    with pytest.raises(InputError) as caught:
        read_train(tmp_path / "train.jsonl")
    assert where in str(caught.value) and what in str(caught.value)


def test_bitext_files_of_different_lengths(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "en.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "src" / "sw.txt").write_text("moja\nmbili\n")
    result = polyir("prepare", "bitext", tmp_path / "src", tmp_path / "out", "--pivot", "en")
    assert result.returncode == 2
    assert "sw.txt" in result.stderr and "2 lines, but en.txt has 3" in result.stderr
    assert not (tmp_path / "out").exists()


def test_bitext_blank_line(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "en.txt").write_text("one\n\nthree\n")
    (tmp_path / "src" / "sw.txt").write_text("moja\nmbili\ntatu\n")
    result = polyir("prepare", "bitext", tmp_path / "src", tmp_path / "out", "--pivot", "en")
    assert result.returncode == 2 and "en.txt:2" in result.stderr and "blank line" in result.stderr


def test_lareqa_broken_json_and_missing_field(data_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(data_dir / "xquad-r" / "en.json", src / "en.json")
    (src / "de.json").write_text('{"data": [\n  {"paragraphs": [}\n]}')
    result = polyir("prepare", "lareqa", src, tmp_path / "out", "--holdout", "0.5")
    assert result.returncode == 2 and "de.json:2" in result.stderr and "malformed JSON" in result.stderr
    data = json.loads((data_dir / "xquad-r" / "en.json").read_text())
    del data["data"][1]["paragraphs"][0]["sentences"]
    (src / "de.json").write_text(json.dumps(data))
    result = polyir("prepare", "lareqa", src, tmp_path / "out", "--holdout", "0.5")
    assert result.returncode == 2
    assert "de.json" in result.stderr and "missing 'sentences' at data[1].paragraphs[0]" in result.stderr
    assert not (tmp_path / "out").exists()


def test_bad_holdout_and_existing_output(data_dir, tmp_path):
    result = polyir("prepare", "lareqa", data_dir / "xquad-r", tmp_path / "out", "--holdout", "1.5")
    assert result.returncode == 2 and "--holdout must lie in [0, 1]" in result.stderr
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    result = polyir("prepare", "lareqa", data_dir / "xquad-r", tmp_path / "out", "--holdout", "1")
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_unknown_language_for_m2m100(tmp_path, tiny_m2m100):
    task = beir_folder(tmp_path / "task", ['{"_id": "d1", "text": "one", "lang": "tel_Telu"}'],
                       ['{"_id": "q1", "text": "what", "lang": "tel_Telu"}'], ["q1\td1\t1"])
    result = polyir("evaluate", "--model", tiny_m2m100, "--task", task, "--out", tmp_path / "out", "--quiet")
    assert result.returncode == 2 and "language 'tel_Telu'" in result.stderr and "lang_map" in result.stderr
    result = polyir("evaluate", "--model", tiny_m2m100, "--task", task, "--out", tmp_path / "out", "--quiet",
                    "--lang-map", "tel_Telu=ta")
    assert result.returncode == 0, result.stderr
    result = polyir("evaluate", "--model", tiny_m2m100, "--task", task, "--out", tmp_path / "out2", "--quiet",
                    "--lang-map", "tel_Telu=")
    assert result.returncode == 0, result.stderr


def test_missing_model_and_usage_errors(tmp_path):
    task = beir_folder(tmp_path / "task", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    result = polyir("evaluate", "--model", tmp_path / "nowhere", "--task", task, "--out", tmp_path / "out")
    assert result.returncode == 2 and "nowhere" in result.stderr
    assert polyir("evaluate", "--task", task).returncode == 2
    result = polyir("evaluate", "--model", tmp_path, "--task", task, "--out", tmp_path / "o", "--search", "annoy")
    assert result.returncode == 2 and "--search must be 'exact' or 'faiss'" in result.stderr
    result = polyir("evaluate", "--model", tmp_path, "--task", task, "--out", tmp_path / "o", "--dtype", "float16")
    assert result.returncode == 2 and "--dtype must be 'float32' or 'bfloat16', got 'float16'" in result.stderr
    assert not (tmp_path / "o").exists()
    assert polyir("prepare", "lareqa", "--help").returncode == 0
