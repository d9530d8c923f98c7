"""Bad input: exit code 2, a message naming the file, the line and what was expected, and no output left."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

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


def read_error(read, *args) -> str:
    """The message of the InputError that `read(*args)` raises (any other exception fails the test)."""
    from polyir.errors import InputError

    with pytest.raises(InputError) as caught:
        read(*args)
    return str(caught.value)


def test_qrels_rules(tmp_path):
    """A headerless first line keeps its judgement (also written as 1.0); a pair judged twice, a relevant
    document with the query's own id, and judgements that are all 0 are errors naming the line."""
    from polyir.data.beir import read_qrels

    path = tmp_path / "test.tsv"
    path.write_text("q1\td1\t1.0\nq1\td2\t0\n")
    assert read_qrels(path, {"q1"}, {"d1", "d2"}) == {"q1": {"d1": 1, "d2": 0}}
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t2\n")
    message = read_error(read_qrels, path, {"q1"}, {"d1"})
    assert "test.tsv:3" in message and "judged again (first on line 2)" in message
    path.write_text("q1\tq1\t1\n")
    assert "same id" in read_error(read_qrels, path, {"q1"}, {"q1"})
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t0\n")
    assert "no relevant document" in read_error(read_qrels, path, {"q1"}, {"d1"})
    path.write_text("q1\td1\t0.5\n")
    assert "test.tsv:1" in read_error(read_qrels, path, {"q1"}, {"d1"})


@pytest.mark.parametrize(("name", "content", "where", "what"), [
    ("corpus.jsonl", b'{"_id": "d1", "text": "one"}\n{"_id": "d2", "text": "t\xe9o"}\n', "corpus.jsonl:2",
     "not UTF-8"),
    ("corpus.jsonl", b'{"_id": "d 1", "text": "one"}\n', "corpus.jsonl:1", "white space"),
    ("corpus.jsonl", b'{"_id": "d1", "text": "one", "text": "two"}\n', "corpus.jsonl:1", "duplicate key 'text'"),
    ("queries.jsonl", b'{"_id": "q1", "text": "what"}\n\xff\n', "queries.jsonl:2", "not UTF-8"),
    ("qrels/test.tsv", b"q1\td1\t1\nq1\td\xc3\n", "test.tsv:2", "not UTF-8"),
])
def test_beir_readers_reject_bad_bytes_and_ids(name, content, where, what, tmp_path):
    from polyir.data import read_beir

    folder = beir_folder(tmp_path / "task", ['{"_id": "d1", "text": "one"}'], ['{"_id": "q1", "text": "what"}'],
                         ["q1\td1\t1"])
    (folder / name).write_bytes(content)
    message = read_error(read_beir, folder, "test", "en")
    assert where in message and what in message, message


def test_a_bom_and_crlf_line_ends_are_read_as_text(tmp_path):
    from polyir.data import read_beir

    folder = beir_folder(tmp_path / "task", [], [], [])
    (folder / "corpus.jsonl").write_bytes('\ufeff{"_id": "d1", "text": "one"}\r\n'.encode())
    (folder / "queries.jsonl").write_bytes('\ufeff{"_id": "q1", "text": "what"}\r\n'.encode())
    (folder / "qrels" / "test.tsv").write_bytes("\ufeffq1\td1\t1\r\n".encode())
    task = read_beir(folder, "test", "en")
    assert [d.id for d in task.corpus] == ["d1"] and task.qrels == {"q1": {"d1": 1}}


def test_bitext_yaml_and_lareqa_bad_bytes_name_their_line(data_dir, tmp_path):
    from polyir.config import load_yaml
    from polyir.data.bitext import read_bitext
    from polyir.data.lareqa import read_language

    (tmp_path / "bitext").mkdir()
    (tmp_path / "bitext" / "en.txt").write_bytes(b"one\ntw\xffo\n")
    assert "en.txt:2" in read_error(read_bitext, tmp_path / "bitext")
    (tmp_path / "c.yaml").write_bytes(b"seed: 0\noutput_dir: caf\xe9\n")
    assert "c.yaml:2" in read_error(load_yaml, tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("seed: 0\noptim: {lr: 1}\nseed: 1\n")
    message = read_error(load_yaml, tmp_path / "d.yaml")
    assert "d.yaml:3" in message and "duplicate key 'seed' (first on line 1)" in message
    raw = (data_dir / "xquad-r" / "en.json").read_bytes()
    (tmp_path / "en.json").write_bytes(raw[:5000] + b"\x80" + raw[5000:])
    assert "en.json:1" in read_error(read_language, tmp_path / "en.json", "en")


@pytest.mark.parametrize(("change", "what"), [
    (lambda p: p.update(sentences=[1] + p["sentences"][1:]), "sentences[0]' must be a non-empty string"),
    (lambda p: p.update(sentence_breaks=[[0, "9"]] + p["sentence_breaks"][1:]), "pair of integers"),
    (lambda p: p["qas"][0].update(question="  "), "question' is empty"),
])
def test_lareqa_fields_of_the_wrong_kind(change, what, data_dir, tmp_path):
    from polyir.data.lareqa import read_language

    data = json.loads((data_dir / "xquad-r" / "en.json").read_text(encoding="utf-8"))
    change(data["data"][0]["paragraphs"][0])
    (tmp_path / "en.json").write_text(json.dumps(data))
    assert what in read_error(read_language, tmp_path / "en.json", "en")


def test_model_folders_that_cannot_be_loaded(tmp_path, tiny_bert):
    task = beir_folder(tmp_path / "task", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    empty = tmp_path / "empty-model"
    empty.mkdir()
    no_weights = tmp_path / "no-weights"
    shutil.copytree(tiny_bert, no_weights)
    for weights in no_weights.glob("*.safetensors"):
        weights.unlink()
    bad_settings = tmp_path / "bad-settings"
    shutil.copytree(tiny_bert, bad_settings)
    (bad_settings / "polyir_config.json").write_text('{"pooling": "max"}')
    for model, what in ((empty, "cannot load"), (no_weights, "cannot load"), (bad_settings, "pooling")):
        result = polyir("evaluate", "--model", model, "--task", task, "--out", tmp_path / "out", "--quiet")
        assert result.returncode == 2 and what in result.stderr and "Traceback" not in result.stderr, result.stderr
    result = polyir("evaluate", "--model", tiny_bert, "--task", task, "--out", tmp_path / "out", "--device", "cuda")
    assert result.returncode == 2 and "no CUDA device" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("change", "what"), [
    ({"optim.temperature": float("inf")}, "optim.temperature"),
    ({"step": {"strategy": "accumulation", "batch_size": 8, "micro_batch_size": 16}}, "exceeds step.batch_size"),
    ({"data.languages": ["de", "sw"]}, "data.languages: sw not in the training data"),
    ({"eval.metric": "multi/ndcg@20"}, "eval.metric"),
    ({"eval.metric": "mono/rank_distance"}, "only in the multi setting"),
])
def test_configs_found_wrong_before_training(change, what, tiny_m2m100, small_xquad, tmp_path):
    from tests.test_train import write_config

    config = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_m2m100, small_xquad, **change)
    result = polyir("train", "--config", config, "--quiet")
    assert result.returncode == 2 and what in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "run").exists()


def test_cells_that_differ_only_in_weighting_are_two_cells(tmp_path):
    from polyir.comparison.grid import expand
    from polyir.config import CompareConfig

    config = CompareConfig(output_dir=tmp_path, model={"name_or_path": "m"}, budget={"steps": 1},
                           data={"train": "t.jsonl", "dev": ["d"], "test": ["e"]},
                           grid={"sampling": [{"strategy": "xx-mono"}, {"strategy": "xx-mono",
                                                                        "weighting": "proportional"}],
                                 "step": [{"strategy": "full", "batch_size": 8}]})
    cells = expand(config)
    assert [c.name for c in cells] == ["xx-mono__full-8__seed0", "xx-mono-proportional__full-8__seed0"]
    assert cells[1].strategy == "xx-mono(proportional) + full(8)"


def test_an_output_polyir_may_not_write_exits_2(tmp_path):
    """/sys is read-only for files in a container (and in most Linux systems): no traceback, exit 2."""
    import os

    try:
        os.mkdir("/sys/polyir-probe")
    except OSError:
        pass
    else:
        os.rmdir("/sys/polyir-probe")
        pytest.skip("/sys is writable here")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "en.txt").write_text("one\n")
    (tmp_path / "src" / "sw.txt").write_text("moja\n")
    result = polyir("prepare", "bitext", tmp_path / "src", "/sys/polyir-out", "--pivot", "en")
    assert result.returncode == 2 and "/sys/" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_dev_metric_no_dev_task_can_give_stops_before_any_work(tiny_m2m100, small_xquad, data_dir, tmp_path):
    """Bitext dev lines (Swahili queries, an English corpus) have no mono setting: training on mono/map would
    follow no score and keep no model; a comparison would fail in every cell, on every rerun."""
    from tests.test_train import write_config

    bitext = tmp_path / "sw-en"
    assert polyir("prepare", "bitext", data_dir / "flores-sib200", bitext, "--pivot", "eng_Latn", "--langs",
                  "eng_Latn,swh_Latn").returncode == 0
    config = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_m2m100, small_xquad,
                          **{"eval.metric": "mono/map", "data.dev": [str(bitext)]})
    result = polyir("train", "--config", config, "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "eval.metric mono/map needs the mono setting, which dev task sw-en" in result.stderr
    assert "expected a setting among cross" in result.stderr and not (tmp_path / "run").exists()
    compare = tmp_path / "compare.yaml"
    compare.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "grid"), "model": {"name_or_path": str(tiny_m2m100)},
        "data": {"train": str(small_xquad / "train.jsonl"), "dev": [str(bitext)], "test": [str(small_xquad / "eval")]},
        "grid": {"sampling": [{"strategy": "xy"}], "step": [{"strategy": "full", "batch_size": 8}]},
        "budget": {"steps": 1}, "eval": {"metric": "mono/map"}}))
    result = polyir("compare", "--config", compare, "--quiet")
    assert result.returncode == 2 and "needs the mono setting" in result.stderr, result.stderr
    assert not (tmp_path / "grid").exists()


def test_dev_and_test_tasks_that_hold_training_queries_are_refused(tiny_m2m100, small_xquad, data_dir, tmp_path):
    """Training on four articles and evaluating on all twelve: 'zero-shot' numbers on questions seen in training."""
    from polyir.data import read_beir, read_train, write_beir
    from polyir.data.records import Query, RetrievalTask
    from tests.test_train import write_config

    everything = tmp_path / "all"
    prepared = polyir("prepare", "lareqa", data_dir / "xquad-r", everything, "--holdout", "1")
    assert prepared.returncode == 0, prepared.stderr
    trained = {example.id for example in read_train(small_xquad / "train.jsonl")}
    queries = read_beir(everything / "eval").queries
    seen = [q for q in queries if q.id.removesuffix(f"-{q.lang}") in trained]
    assert 0 < len(seen) < len(queries)
    config = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_m2m100, small_xquad,
                          **{"data.dev": [str(everything / "eval")]})
    result = polyir("train", "--config", config, "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert (f"{everything / 'eval'}: {len(seen)} of its {len(queries)} queries are training queries ({len(seen)} by "
            "id, 0 by their text in the same language)") in result.stderr
    assert "data.allow_overlap: true" in result.stderr and not (tmp_path / "run").exists()
    # the same questions under other ids are found by their text (in a language trained on)
    asked = [q for q in seen if q.lang == "de"][:3]
    corpus = read_beir(small_xquad / "eval").corpus
    renamed = RetrievalTask("renamed", corpus, [Query(f"x{i}", q.text, q.lang) for i, q in enumerate(asked)],
                            {f"x{i}": {corpus[0].id: 1} for i in range(len(asked))})
    (tmp_path / "renamed").mkdir()
    write_beir(renamed, tmp_path / "renamed")
    config = write_config(tmp_path / "c2.yaml", tmp_path / "run2", tiny_m2m100, small_xquad,
                          **{"data.dev": [str(tmp_path / "renamed")]})
    result = polyir("train", "--config", config, "--quiet")
    assert result.returncode == 2 and "3 of its 3 queries are training queries (0 by id, 3 by" in result.stderr
    allowed = write_config(tmp_path / "c3.yaml", tmp_path / "run3", tiny_m2m100, small_xquad,
                           **{"data.dev": [str(everything / "eval")], "data.allow_overlap": True,
                              "optim.max_steps": 1})
    result = polyir("train", "--config", allowed, "--quiet")
    assert result.returncode == 0, result.stderr
    compare = tmp_path / "compare.yaml"
    compare.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "grid"), "model": {"name_or_path": str(tiny_m2m100)},
        "data": {"train": str(small_xquad / "train.jsonl"), "dev": [str(small_xquad / "eval")],
                 "test": [str(everything / "eval")]},
        "grid": {"sampling": [{"strategy": "xy"}], "step": [{"strategy": "full", "batch_size": 8}]},
        "budget": {"steps": 1}}))
    result = polyir("compare", "--config", compare, "--quiet")
    assert result.returncode == 2 and f"{everything / 'eval'}: {len(seen)} of its" in result.stderr, result.stderr
    assert not (tmp_path / "grid").exists()


def test_a_damaged_sentence_transformers_folder_names_its_file(minilm, tmp_path):
    import os

    task = beir_folder(tmp_path / "task", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    for damaged, what in (('[{"idx": 0, "type": "sentence_transformers.models.Transformer"', "malformed JSON"),
                          ('[{"idx": 0}]', "each with a 'type' and a 'path'"),
                          ('{"0": "Transformer"}', "a JSON dict; expected sentence-transformers' list of modules")):
        copy = tmp_path / "model"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(minilm, copy, copy_function=os.link)  # hard links: no copy of the weights
        (copy / "modules.json").unlink()
        (copy / "modules.json").write_text(damaged)
        result = polyir("evaluate", "--model", copy, "--task", task, "--out", tmp_path / "out", "--quiet")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"{copy / 'modules.json'}" in result.stderr and what in result.stderr, result.stderr
        assert not (tmp_path / "out").exists()
