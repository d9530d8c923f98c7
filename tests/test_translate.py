"""polyir translate: tiny random M2M-100 and NLLB-200 translators (the output is noise, the pipeline is real) on
real English text of XQuAD-R. Target tokens, pieces, ids and qrels, the cache, resume after a kill, quality flags
and the manifest."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polyir.data import read_beir, read_train
from polyir.data.beir import write_beir
from polyir.data.lareqa import evaluation_task, read_lareqa, training_examples
from polyir.data.records import RetrievalTask
from polyir.errors import InputError
from polyir.files import sha256
from polyir.testing import build_tiny_m2m100, build_tiny_nllb
from polyir.translate.backends import CTranslate2, Generation, HuggingFace
from polyir.translate.cache import TranslationCache
from polyir.translate.engine import Request, translate
from polyir.translate.quality import Checked, LanguageIdentifier, check
from polyir.translate.segment import join, split
from tests.helpers import polyir
from tests.test_train import log_of, write_config

FAST = ["--max-new-tokens", "6", "--beam-size", "2", "--language-id", "fast", "--quiet"]


@pytest.fixture(scope="session")
def m2m_translator(tmp_path_factory) -> Path:
    return build_tiny_m2m100(tmp_path_factory.mktemp("m2m-translator"), translator=True)


@pytest.fixture(scope="session")
def nllb_translator(tmp_path_factory) -> Path:
    return build_tiny_nllb(tmp_path_factory.mktemp("nllb-translator"))


@pytest.fixture(scope="session")
def english_beir(data_dir, tmp_path_factory) -> Path:
    """12 English XQuAD-R questions, their answer sentences and 6 other sentences, as a BEIR folder with train
    and test qrels (a judged non-relevant document in train)."""
    task = evaluation_task(read_lareqa(data_dir / "xquad-r", languages=["en"]), [0])
    queries = task.queries[:12]
    qrels = {q.id: task.qrels[q.id] for q in queries}
    relevant = {doc for judged in qrels.values() for doc in judged}
    corpus = [d for d in task.corpus if d.id in relevant] + [d for d in task.corpus if d.id not in relevant][:6]
    corpus = [type(d)(d.id, d.text, d.lang, "Super Bowl 50" if n % 3 == 0 else "") for n, d in enumerate(corpus)]
    folder = tmp_path_factory.mktemp("english") / "en"
    folder.mkdir()
    write_beir(RetrievalTask("en", corpus, queries, qrels), folder)
    first = queries[0].id
    unrelated = next(d.id for d in corpus if d.id not in qrels[first])
    (folder / "qrels" / "train.tsv").write_text(f"query-id\tcorpus-id\tscore\n{first}\t{next(iter(qrels[first]))}\t1"
                                                f"\n{first}\t{unrelated}\t0\n")
    return folder


def settings(**overrides) -> Generation:
    return Generation(**{"beam_size": 2, "max_new_tokens": 6, **overrides})


def test_every_text_starts_with_its_own_language_tokens(m2m_translator, nllb_translator, tmp_path):
    """One batch, three target languages: each output begins with its target token, each input with the source
    token, for M2M-100 (__sw__) and NLLB (swh_Latn), in Hugging Face and CTranslate2."""
    nllb_codes = ["swh_Latn", "yor_Latn", "amh_Ethi"]
    for model, codes in ((m2m_translator, ["sw", "yo", "am"]), (nllb_translator, nllb_codes)):
        for translator in (HuggingFace(str(model), settings(), "cpu"),
                           CTranslate2(str(model), settings(precision="int8"), "cpu", tmp_path)):
            tokenizer = translator.tokenizer
            source = translator.code("en", "--from")
            ids = translator.encode(["The Panthers won.", "Peyton Manning was named MVP.", "Denver won."], source)
            assert {row[0] for row in ids} == {tokenizer.convert_tokens_to_ids(translator.token(source))}
            targets = [translator.code(lang, "--to") for lang in ("sw", "yo", "am")]
            assert targets == codes
            out = translator.sequences(ids, targets)
            assert [row[1] for row in out] == [tokenizer.convert_tokens_to_ids(translator.token(t)) for t in targets]
            languages = {tokenizer.convert_tokens_to_ids(translator.token(c)) for c in translator.languages.supported}
            assert not languages & {token for row in out for token in row[2:]}  # (a random model's favourite)


def test_long_texts_are_split_into_sentences_and_pieces_and_rejoined(m2m_translator, tmp_path):
    amharic = "ሰላም ነው። እንዴት ነህ? ደህና ነኝ።"
    assert split(amharic, "am", len, 100) == ["ሰላም ነው።", "እንዴት ነህ?", "ደህና ነኝ።"]
    words = " ".join(f"word{n}" for n in range(40))
    pieces = split(words + ".", "en", lambda text: len(text.split()), 8)
    assert all(len(piece.split()) <= 8 for piece in pieces) and " ".join(pieces) == words + "."
    assert join(["我很好。", "你呢？"], "zh") == "我很好。你呢？" and join(["a.", "b."], "sw") == "a. b."
    translator = HuggingFace(str(m2m_translator), settings(max_input_tokens=8), "cpu")
    cache = TranslationCache(tmp_path / "cache", str(m2m_translator), translator.revision)
    text = ("The Panthers defense gave up just 308 points, ranking sixth in the league. Pro Bowl defensive tackle "
            "Kawann Short led the team in sacks with 11, while also forcing three fumbles and recovering two.")
    done, stats = translate([Request(text, "en", "sw")], translator, cache, show_progress=False)
    entries = [json.loads(line) for line in (tmp_path / "cache" / "entries-0.jsonl").read_text().splitlines()]
    assert stats.pieces == len(entries) > 2  # two sentences, the second cut under 8 tokens
    assert " ".join(entry["text"] for entry in entries if entry["text"] in text) != ""
    assert all(translator.length(entry["text"]) <= 8 for entry in entries)
    assert sorted(text.replace(" ", "")) == sorted("".join(entry["text"] for entry in entries).replace(" ", ""))
    order = split(text, "en", translator.length, 8)
    by_text = {entry["text"]: entry["translation"] for entry in entries}
    assert done[Request(text, "en", "sw")] == join([by_text[piece] for piece in order], "sw")


def test_translated_beir_holds_every_judgement_in_every_language(english_beir, m2m_translator, tmp_path):
    out = tmp_path / "sw-yo"
    result = polyir("translate", "beir", english_beir, out, "--to", "sw,yo", "--model", m2m_translator,
                    "--cache", tmp_path / "cache", *FAST)
    assert result.returncode == 0, result.stderr
    source = read_beir(english_beir)
    task = read_beir(out)
    langs = ["en", "sw", "yo"]
    assert task.query_languages == task.corpus_languages == sorted(langs)
    assert {q.id for q in task.queries} == {f"{q.id}-{lang}" for q in source.queries for lang in langs}
    assert {d.id for d in task.corpus} == {f"{d.id}-{lang}" for d in source.corpus for lang in langs}
    for query_id, judged in source.qrels.items():
        for lq in langs:
            assert task.qrels[f"{query_id}-{lq}"] == {f"{d}-{ld}": g for d, g in judged.items() for ld in langs}
    titled = {d.id for d in source.corpus if d.title}
    assert all(bool(d.title) == (d.id.rsplit("-", 1)[0] in titled) for d in task.corpus)
    english = {q.id: q.text for q in source.queries}
    assert all(q.text == english[q.id[:-3]] for q in task.queries if q.lang == "en")
    train = read_beir(out, split="train")
    assert sum(len(judged) for judged in train.qrels.values()) == 2 * 9
    evaluated = polyir("evaluate", "--model", m2m_translator, "--task", out, "--out", tmp_path / "eval", "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["sw-yo"]
    assert set(metrics["summary"]) == {"mono", "cross", "multi"}
    assert set(metrics["cross"]) == {f"{x}->{y}" for x in langs for y in langs if x != y}
    assert all(metrics["mono"][lang]["n"] == 12 for lang in langs)


def test_queries_only_gives_the_cross_lingual_variant(english_beir, m2m_translator, tmp_path):
    out = tmp_path / "queries"
    assert polyir("translate", "beir", english_beir, out, "--to", "ha", "--what", "queries", "--model",
                  m2m_translator, "--cache", tmp_path / "cache", *FAST).returncode == 0
    task = read_beir(out)
    assert task.corpus_languages == ["en"] and task.query_languages == ["en", "ha"]
    assert [d.text for d in task.corpus] == [d.text for d in read_beir(english_beir).corpus]


def test_the_cache_translates_once_and_a_new_language_only_what_is_new(english_beir, m2m_translator, tmp_path):
    cache = tmp_path / "cache"
    run = lambda out, to: polyir("translate", "beir", english_beir, tmp_path / out, "--to", to, "--model",  # noqa: E731
                                 m2m_translator, "--cache", cache, *FAST)
    first = run("a", "sw")
    assert first.returncode == 0, first.stderr
    total = int(first.stderr.split(" pieces")[0].rsplit(" ", 1)[1])
    assert f"{total} generated, 0 from the cache" in first.stderr
    again = run("b", "sw")
    assert f"0 generated, {total} from the cache" in again.stderr
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "translation.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    more = run("c", "sw,zu")
    assert f"{total} generated, {total} from the cache" in more.stderr
    other = polyir("translate", "beir", english_beir, tmp_path / "d", "--to", "sw", "--model", m2m_translator,
                   "--cache", cache, *FAST[:-3], "--beam-size", "1", "--language-id", "fast", "--quiet")
    assert f"{total} generated, 0 from the cache" in other.stderr  # other settings: nothing reused


def _launch(args: list) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "polyir", *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_killed_run_resumes_to_the_bytes_of_an_uninterrupted_run(english_beir, m2m_translator, tmp_path):
    args = ["translate", "beir", english_beir, None, "--to", "sw,yo,am", "--model", m2m_translator,
            "--batch-size", "1", "--max-new-tokens", "48", "--beam-size", "4", "--language-id", "fast", "--quiet"]
    one_thread = {"OMP_NUM_THREADS": "1"}  # as the killed run: the same arithmetic, so the same bytes
    whole = polyir(*[tmp_path / "whole" if a is None else a for a in args], "--cache", tmp_path / "cache-whole",
                   env=one_thread)
    assert whole.returncode == 0, whole.stderr
    entries = tmp_path / "cache" / "entries-0.jsonl"
    victim = _launch([tmp_path / "resumed" if a is None else a for a in args] + ["--cache", tmp_path / "cache"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not entries.is_file() or entries.read_text().count("\n") < 10):
        time.sleep(0.05)
    assert victim.poll() is None, "the run ended before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "resumed").exists()
    with entries.open("a") as torn:  # a write cut short by the kill
        torn.write('{"key": "0123", "transl')
    resumed = polyir(*[tmp_path / "resumed" if a is None else a for a in args], "--cache", tmp_path / "cache",
                     env=one_thread)
    assert resumed.returncode == 0, resumed.stderr
    generated = int(resumed.stderr.split(" generated")[0].rsplit(" ", 1)[1])
    assert 0 < generated < int(whole.stderr.split(" generated")[0].rsplit(" ", 1)[1])
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "translation.json"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "resumed" / name).read_bytes()


def test_two_processes_write_the_bytes_of_one(english_beir, m2m_translator, tmp_path):
    from tests.test_distributed import torchrun

    args = ["translate", "beir", english_beir, None, "--to", "sw,yo", "--model", m2m_translator, "--batch-size", "4",
            *FAST]
    one = polyir(*[tmp_path / "one" if a is None else a for a in args], "--cache", tmp_path / "cache-one",
                 env={"OMP_NUM_THREADS": "1"})  # as torchrun's ranks
    assert one.returncode == 0, one.stderr
    two = torchrun(*[tmp_path / "two" if a is None else a for a in args], "--cache", tmp_path / "cache-two")
    assert two.returncode == 0, two.stderr
    assert sorted(p.name for p in (tmp_path / "cache-two").glob("entries-*.jsonl")) == ["entries-0.jsonl",
                                                                                         "entries-1.jsonl"]
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "translation.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_quality_flags_constructed_bad_outputs():
    source = "The Panthers defense gave up just 308 points, ranking sixth in the league."
    good_sw = "Ulinzi wa Panthers ulitoa alama 308 tu, ukishika nafasi ya sita katika ligi."
    items = [Checked("1", "q", "sw", source, good_sw, len(good_sw) / len(source)),
             Checked("2", "q", "sw", source, "", 0.0),
             Checked("3", "q", "sw", source, source, 1.0),
             Checked("4", "q", "sw", source, "ligi ligi ligi ligi ligi ligi", 0.4),
             Checked("5", "q", "sw", source, "Panthers.", 0.12),
             Checked("6", "q", "sw", source, "The defence of the Panthers gave away only 308 points in the league.",
                     0.95),
             Checked("7", "q", "am", source, "Panthers defence only 308 points", 0.45),
             Checked("8", "q", "am", source, "የፓንተርስ መከላከያ 308 ነጥቦችን ብቻ ሰጥቷል።", 0.45, chrf=12.0),
             Checked("9", "q", "sw", source, good_sw, 1.05, chrf=55.0)]
    check(items, LanguageIdentifier(fast=False), length_tolerance=3.0, min_chrf=20.0)
    flags = {item.id: item.flags for item in items}
    assert flags["1"] == [] and flags["9"] == []
    assert flags["2"] == ["empty"]
    assert "copy" in flags["3"] and "wrong-language" in flags["3"]
    assert "loop" in flags["4"]
    assert "length-ratio" in flags["5"]
    assert flags["6"] == ["wrong-language"]
    assert flags["7"] == ["wrong-script"]
    assert flags["8"] == ["round-trip"]


def test_manifest_lists_flags_and_sources_and_drop_keeps_qrels_consistent(english_beir, m2m_translator, tmp_path):
    out = tmp_path / "dropped"
    result = polyir("translate", "beir", english_beir, out, "--to", "sw,am", "--model", m2m_translator,
                    "--cache", tmp_path / "cache", "--drop", "wrong-script", "--round-trip", *FAST)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "translation.json").read_text())
    assert manifest["model"]["id"] == str(m2m_translator) and manifest["model"]["revision"].startswith("sha256:")
    assert manifest["generation"] == {"beam_size": 2, "max_input_tokens": 200, "max_new_tokens": 6,
                                      "backend": "huggingface", "precision": "float32"}
    assert manifest["sources"]["corpus.jsonl"] == sha256(english_beir / "corpus.jsonl")
    assert manifest["polyir"] and manifest["target_languages"] == ["sw", "am"]
    source = read_beir(english_beir)
    texts = len(source.queries) + len(source.corpus) + sum(bool(d.title) for d in source.corpus)
    assert manifest["texts"] == texts
    for lang in ("sw", "am"):
        numbers = manifest["languages"][lang]
        assert numbers["texts"] == texts and "round_trip_chrf" in numbers
        assert numbers["flagged"] == sum(1 for f in manifest["flagged"] if f["lang"] == lang)
        assert numbers["length_ratio"]["p5"] <= numbers["length_ratio"]["median"] <= numbers["length_ratio"]["p95"]
    dropped = {(f["id"], f["lang"]) for f in manifest["flagged"] if "wrong-script" in f["flags"]}
    assert manifest["languages"]["am"]["dropped"] > 0  # random output is not in Ethiopic script
    task = read_beir(out)
    present = {q.id for q in task.queries} | {d.id for d in task.corpus}
    for record, lang in dropped:
        assert f"{record}-{lang}" not in present
    for query_id, judged in task.qrels.items():
        assert query_id in present and all(doc in present for doc in judged)


def test_translate_train_from_train_jsonl_beir_and_squad(english_beir, parallel_examples, m2m_translator, data_dir,
                                                         tiny_m2m100, tmp_path):
    from polyir.data import write_train
    from polyir.data.records import ParallelExample

    english = [ParallelExample(e.id, {"en": e.query["en"]}, {"en": e.positive["en"]},
                               [{"en": n["en"]} for n in e.negatives]) for e in parallel_examples[:10]]
    write_train(english, tmp_path / "en.jsonl")
    sources = {"jsonl": tmp_path / "en.jsonl", "beir": english_beir, "squad": data_dir / "xquad-r" / "en.json"}
    for name, src in sources.items():
        out = tmp_path / name
        result = polyir("translate", "train", src, out, "--to", "sw,yo", "--model", m2m_translator, "--cache",
                        tmp_path / "cache", *FAST)
        assert result.returncode == 0, result.stderr
        examples = read_train(out / "train.jsonl")
        assert examples and all(set(e.query) == set(e.positive) == {"en", "sw", "yo"} for e in examples
                                if all(e.query.values()))
        assert json.loads((out / "translation.json").read_text())["sources"][src.name]
    jsonl = read_train(tmp_path / "jsonl" / "train.jsonl")
    assert [e.query["en"] for e in jsonl] == [e.query["en"] for e in english]
    assert [len(e.negatives) for e in jsonl] == [len(e.negatives) for e in english]
    assert any(set(n) == {"en", "sw", "yo"} for e in jsonl for n in e.negatives)
    beir = read_train(tmp_path / "beir" / "train.jsonl")
    assert len(beir) == 1 and len(beir[0].negatives) == 1  # the judged non-relevant document
    squad = read_train(tmp_path / "squad" / "train.jsonl")
    by_lang = read_lareqa(data_dir / "xquad-r", languages=["en"])
    answers = {e.id: e.positive["en"] for e in training_examples(by_lang, list(range(len(by_lang["en"]))))}
    assert {e.id: e.positive["en"] for e in squad} == answers  # the sentence that holds the answer
    config = write_config(tmp_path / "train.yaml", tmp_path / "run", tiny_m2m100, tmp_path / "squad",
                          **{"data.languages": ["en", "sw", "yo"], "data.dev": [str(english_beir)],
                             "data.allow_overlap": True,  # the dev folder holds the same questions: a smoke test
                             "optim.max_steps": 2, "eval.metric": "mono/map"})
    trained = polyir("train", "--config", config, "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert [entry["step"] for entry in log_of(tmp_path / "run") if "loss" in entry][-1] == 2


def test_bad_input_exits_2_and_writes_nothing(english_beir, m2m_translator, tmp_path):
    cache = tmp_path / "cache"
    cases = {
        "xx": (["beir", english_beir, "--to", "sw,xx"], "--to 'xx'"),
        "from": (["beir", english_beir, "--to", "sw", "--from", "qq"], "--from 'qq'"),
        "notbeir": (["beir", tmp_path / "plain", "--to", "sw"], "not a BEIR folder"),
        "notsquad": (["train", tmp_path / "bad.json", "--to", "sw"], "SQuAD-format"),
        "what": (["beir", english_beir, "--to", "sw", "--what", "titles"], "--what"),
        "drop": (["beir", english_beir, "--to", "sw", "--drop", "ugly"], "--drop ugly"),
        "twice": (["beir", english_beir, "--to", "sw,yo,swh_Latn"], "--to swh_Latn is the language of --to sw"),
        "source": (["beir", english_beir, "--to", "sw,eng_Latn"], "--to eng_Latn is the language of --from en"),
        "inert": (["beir", english_beir, "--to", "sw", "--drop", "round-trip"], "round-trip needs --round-trip"),
    }
    (tmp_path / "bad.json").write_text(json.dumps({"version": "1.1", "articles": []}))
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("not a collection\n")
    for name, (args, expected) in cases.items():
        out = tmp_path / "out" / name
        result = polyir("translate", *args[:2], out, *args[2:], "--model", m2m_translator, "--cache", cache, *FAST)
        assert result.returncode == 2, (name, result.stderr)
        assert expected in result.stderr and "Traceback" not in result.stderr, (name, result.stderr)
        assert not out.exists()
    assert not cache.exists()  # refused before anything was written
    assert polyir("translate", "beir", english_beir, tmp_path / "out" / "good", "--to", "sw", "--model",
                  m2m_translator, "--cache", cache, *FAST).returncode == 0
    again = polyir("translate", "beir", english_beir, tmp_path / "out" / "slash", "--to", "sw", "--model",
                   f"{m2m_translator}/", "--cache", cache, *FAST)  # the same model, written another way
    assert again.returncode == 0, again.stderr
    assert "0 generated" in again.stderr
    other = build_tiny_m2m100(tmp_path / "other", dropout=0.0, translator=True)  # another revision
    result = polyir("translate", "beir", english_beir, tmp_path / "out" / "other", "--to", "sw", "--model", other,
                    "--cache", cache, *FAST)
    assert result.returncode == 2 and "this cache was written by" in result.stderr
    assert str(cache / "cache.json") in result.stderr and not (tmp_path / "out" / "other").exists()


def test_nllb_and_ctranslate2_translate_a_folder(english_beir, nllb_translator, tmp_path):
    for backend in ("huggingface", "ctranslate2"):
        out = tmp_path / backend
        result = polyir("translate", "beir", english_beir, out, "--to", "swh_Latn,yor_Latn", "--model",
                        nllb_translator, "--backend", backend, "--cache", tmp_path / "cache", *FAST)
        assert result.returncode == 0, result.stderr
        assert read_beir(out).query_languages == ["en", "swh_Latn", "yor_Latn"]
        assert json.loads((out / "translation.json").read_text())["generation"]["precision"] == (
            "int8" if backend == "ctranslate2" else "float32")


def test_prepare_bitext_train_writes_parallel_examples_and_held_out_lines(data_dir, tmp_path):
    out = tmp_path / "flores"
    result = polyir("prepare", "bitext", data_dir / "flores-sib200", out, "--pivot", "eng_Latn", "--langs",
                    "eng_Latn,swh_Latn,hau_Latn", "--train", "--holdout", "0.25")
    assert result.returncode == 0, result.stderr
    examples = read_train(out / "train.jsonl")
    held_out = read_beir(out / "eval")
    lines = (data_dir / "flores-sib200" / "swh_Latn.txt").read_text().splitlines()
    assert len(examples) + len(held_out.queries) // 2 == len(lines)
    assert all(set(e.query) == {"eng_Latn", "swh_Latn", "hau_Latn"} and e.query == e.positive for e in examples)
    trained = {e.query["swh_Latn"] for e in examples}
    assert not trained & {q.text for q in held_out.queries if q.lang == "swh_Latn"}
    # the training lines again as a line-aligned folder: distillation texts that are no test line
    assert (out / "train-lines" / "swh_Latn.txt").read_text(encoding="utf-8").splitlines() == [
        e.query["swh_Latn"] for e in examples]
    assert (out / "train-lines" / "ids.txt").read_text().split() == [e.id for e in examples]
    assert sorted(p.name for p in (out / "train-lines").iterdir()) == [
        "eng_Latn.txt", "hau_Latn.txt", "ids.txt", "swh_Latn.txt"]


def test_compare_builds_translated_sets_once_and_names_languages_never_trained(english_beir, tiny_m2m100,
                                                                               m2m_translator, data_dir, tmp_path):
    """The paper's protocol in miniature: training pairs translated from English SQuAD-format QA (the sample's
    XQuAD-R questions), an English BEIR folder translated as a test collection, XQuAD-R articles as dev/test."""
    import yaml

    from tests.test_compare import GRID

    out = tmp_path / "cmp"
    translate = {"max_new_tokens": 6, "beam_size": 1, "language_id": "fast", "cache": str(tmp_path / "cache"),
                 "train": {"source": str(data_dir / "xquad-r" / "en.json"), "languages": ["de", "es"],
                           "model": str(m2m_translator)},
                 "test": [{"source": str(english_beir), "languages": ["sw", "yo"], "model": str(m2m_translator),
                           "name": "en-mt"}]}
    config = dict(GRID, output_dir=str(out), model=dict(GRID["model"], name_or_path=str(tiny_m2m100)),
                  dataset={"name": "xquad-r", "languages": ["de", "en", "el"], "dev": 0.1, "test": 0.1},
                  data={"allow_overlap": True},  # the miniature translates all 12 articles, dev and test ones too
                  translate=translate,
                  grid={"sampling": [{"strategy": "xy"}], "step": [{"strategy": "full", "batch_size": 4}],
                        "seeds": [0]}, budget={"examples": 8}, test={"lexical": False})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir, "--quiet")
    assert result.returncode == 0, result.stderr
    built = out / "data" / "translated"
    assert sorted(p.name for p in built.iterdir()) == ["en-mt", "train"]
    train = read_train(built / "train" / "train.jsonl")
    assert {lang for e in train for lang in e.languages} == {"de", "en", "es"}
    results = json.loads((out / "results.json").read_text())
    assert set(results["runs"][0]["test"]) == {"xquad-r-test", "en-mt"}
    assert set(results["per_language"]["en-mt"]["cross"]) >= {"sw->en", "en->yo", "sw->yo"}
    report = (out / "report.md").read_text()
    assert "never seen in training by any cell: el, sw, yo" in report
    assert f"training pairs from {data_dir / 'xquad-r' / 'en.json'} translated by" in report
    stamps = {p: p.stat().st_mtime_ns for p in built.rglob("*") if p.is_file()}
    again = polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir, "--quiet")
    assert again.returncode == 0, again.stderr
    assert stamps == {p: p.stat().st_mtime_ns for p in built.rglob("*") if p.is_file()}  # reused, not remade
    config["translate"]["train"]["languages"] = ["de"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    changed = polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir, "--quiet")
    assert changed.returncode == 2 and "the translated train set was produced by other settings" in changed.stderr


def test_a_damaged_cache_header_is_named_not_a_traceback(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    for damaged, what in (('{"format": 1, "model"', "malformed JSON"), ("[]", "a JSON list; expected the cache's")):
        (folder / "cache.json").write_text(damaged)
        with pytest.raises(InputError, match=re.escape(what)) as raised:
            TranslationCache(folder, "m", "r")
        assert str(folder / "cache.json") in str(raised.value)


def test_a_changed_cache_entry_is_translated_again_not_served(m2m_translator, tmp_path, caplog):
    """Every entry carries the SHA-256 of its key and translation: an entry edited (or damaged) since it was written
    is left out with a warning and translated again; a cache of polyir 0.1 (no checksums) is rebuilt."""
    translator = HuggingFace(str(m2m_translator), settings(), "cpu")
    folder = tmp_path / "cache"
    requests = [Request("The river is wide.", "en", "sw"), Request("A small village.", "en", "sw")]
    first, stats = translate(requests, translator, TranslationCache(folder, str(m2m_translator), translator.revision),
                             show_progress=False)
    assert stats.generated == 2
    entries = folder / "entries-0.jsonl"
    rows = [json.loads(line) for line in entries.read_text().splitlines()]
    rows[0]["translation"] = "a translation nobody made"
    entries.write_text("".join(json.dumps(row) + "\n" for row in rows))
    cache = TranslationCache(folder, str(m2m_translator), translator.revision)
    assert rows[0]["key"] not in cache and rows[1]["key"] in cache
    assert f"{entries}: 1 entries (line 1) do not match their checksum" in caplog.text
    again, stats = translate(requests, translator, cache, show_progress=False)
    assert again == first and stats.generated == 1
    header = json.loads((folder / "cache.json").read_text())
    (folder / "cache.json").write_text(json.dumps({**header, "format": 1}))
    old = TranslationCache(folder, str(m2m_translator), translator.revision)
    assert not old.entries and "written by polyir 0.1" in caplog.text and not entries.exists()
    assert json.loads((folder / "cache.json").read_text())["format"] == 2
