"""The registry of named tasks: converters on hand-written files in each publisher's format, pinned checksums
and downloads through a local file:// mirror, offline and missing-file messages."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from polyir.data import read_beir
from polyir.data.converters import convert
from polyir.data.fetch import Missing, Unreachable, download, in_cache, mirrored
from polyir.data.lareqa import read_lareqa
from polyir.data.named import available_tasks, named_tasks
from polyir.data.registry import Remote, lookup, parse, registry, remotes
from polyir.errors import InputError
from polyir.files import sha256

from .helpers import polyir

FIXTURES = Path(__file__).parent / "fixtures" / "publishers"
TATOEBA = "https://raw.githubusercontent.com/facebookresearch/LASER/74bc6ae7ffb7cba670fe0f428d0ede9f666fb821/"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("POLYIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POLYIR_MIRROR", raising=False)
    return tmp_path / "cache"


def write(path: Path, text: str, compress: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())


def test_every_entry_is_complete_and_its_paths_are_distinct():
    for entry in registry().values():
        assert entry.license and entry.citation and entry.homepage and entry.languages, entry.name
        paths = [r.path for lang in entry.languages for r in remotes(entry, lang)]
        assert len(paths) == len(set(paths)), entry.name  # each language's files have their own place
        for spec in entry.files.values():
            if isinstance(spec.sha256, dict):
                assert set(spec.sha256) == set(entry.languages), entry.name
    assert {"miracl", "mrtydi", "ciral", "africlirmatrix", "tatoeba", "xquad-r", "mlqa-r", "flores-200",
            "beir-nl-scifact", "beir-pl-scifact"} <= set(registry())
    assert {"sw", "yo", "te", "bn", "hi", "th"} <= set(lookup("miracl").languages)
    assert set(lookup("ciral").languages) == {"ha", "so", "sw", "yo"}
    assert len(lookup("africlirmatrix").languages) == 15 and len(lookup("tatoeba").languages) == 112
    # judged queries, as counted in the publisher's pinned qrels (castorini/africlirmatrix at 5b301c2): Igbo's
    # topics file has 1,000 queries, its qrels judge 500 of them
    judged = {"afr": 1500, "amh": 1500, "ary": 500, "arz": 1500, "hau": 1500, "ibo": 500, "nso": 500, "sna": 500,
              "som": 1000, "swa": 1500, "tir": 50, "twi": 250, "wol": 250, "yor": 1000, "zul": 1000}
    assert {lang: info.queries for lang, info in lookup("africlirmatrix").languages.items()} == judged


def test_a_damaged_converted_task_is_converted_again(tmp_path, cache, data_dir, caplog):
    (first,) = named_tasks("flores-200:swh_Latn", data_dir)
    corpus = (first.folder / "corpus.jsonl").read_text()
    (first.folder / "corpus.jsonl").write_text("".join(corpus.splitlines(keepends=True)[:10]))  # truncated
    with caplog.at_level("WARNING"):
        (again,) = named_tasks("flores-200:swh_Latn", data_dir)
    assert again.folder == first.folder and (again.folder / "corpus.jsonl").read_text() == corpus
    assert "the converted task was damaged (flores-200/corpus.jsonl has changed" in caplog.text
    (first.folder / "extra.jsonl").write_text("{}\n")
    with caplog.at_level("WARNING"):
        named_tasks("flores-200:swh_Latn", data_dir)
    assert "flores-200/extra.jsonl was added" in caplog.text and not (first.folder / "extra.jsonl").exists()


def test_miracl_hindi_and_telugu_corpora_come_in_two_shards_and_a_missing_one_says_so(tmp_path):
    entry = lookup("miracl")
    for lang, shards in (("hi", 2), ("te", 2), ("th", 2), ("sw", 1)):
        corpus = [r.path for r in remotes(entry, lang) if r.path.startswith("miracl-corpus")]
        assert corpus == [f"miracl-corpus-v1.0-{lang}/docs-{i}.jsonl.gz" for i in range(shards)], lang
    folder = tmp_path / "data" / (entry.folder or entry.name)
    for remote in remotes(entry, "hi"):
        if not remote.path.endswith("docs-1.jsonl.gz"):
            write(folder / remote.path, "")
    found, missing = available_tasks("miracl:hi", tmp_path / "data")
    assert not found and "1 file(s) missing" in missing[0] and "miracl-corpus-v1.0-hi/docs-1.jsonl.gz" in missing[0]


def test_unknown_names_and_languages_suggest_the_closest():
    with pytest.raises(InputError, match="no task 'miracle'.*did you mean miracl"):
        parse("miracle:sw")
    with pytest.raises(InputError, match="ciral has no language 'swa'.*did you mean sw.*it has ha, so, sw, yo"):
        parse("ciral:swa")
    entry, langs = parse("flores-200:swh_Latn")
    assert langs == ["swh_Latn", "eng_Latn"]  # the pivot comes along


def test_miracl_trec_files_become_a_beir_folder(tmp_path):
    root = tmp_path / "data" / "miracl"
    write(root / "topics.miracl-v1.0-sw-dev.tsv", "6\tBandari kubwa nchini Kenya iko wapi?\n8\tJe, mji mkuu?\n"
          "9\tSwali bila jibu\n")
    write(root / "qrels.miracl-v1.0-sw-dev.tsv", "6\tQ0\t32589#0\t1\n6\tQ0\t93957#6\t0\n8\tQ0\t93957#6\t1\n"
          "9\tQ0\t32589#0\t0\n")
    docs = [{"docid": "32589#0", "title": "Mombasa", "text": "Mombasa ni mji wa bandari."},
            {"docid": "93957#6", "title": "Canberra", "text": "Canberra ni mji mkuu."}]
    write(root / "miracl-corpus-v1.0-sw" / "docs-0.jsonl.gz", "".join(json.dumps(d) + "\n" for d in docs), True)
    task = convert(lookup("miracl"), ["sw"], root)
    assert [(q.id, q.lang) for q in task.queries] == [("6", "sw"), ("8", "sw")]  # 9 has no relevant document
    assert task.qrels == {"6": {"32589#0": 1, "93957#6": 0}, "8": {"93957#6": 1}}
    assert {(d.id, d.title, d.lang) for d in task.corpus} == {("32589#0", "Mombasa", "sw"),
                                                              ("93957#6", "Canberra", "sw")}
    with pytest.raises(InputError, match=r"miracl/topics.miracl-v1.0-sw-dev.tsv: checksum mismatch: expected SHA-256 "
                       r"15cde3f6.* \(pinned in polyir's registry\)"):
        named_tasks("miracl:sw", tmp_path / "data")  # a hand-written file is not the publisher's


def test_africlirmatrix_and_ciral_have_english_queries_and_their_own_corpus_fields(tmp_path):
    root = tmp_path / "data" / "africlirmatrix"
    write(root / "topics.africlirmatrix-v1.0.en.swa.tsv", "18559733\tFrom the Cradle to the Grave (album)\n")
    write(root / "qrels.africlirmatrix-v1.0.en.swa.txt", "18559733 Q0 104757 4\n18559733 Q0 71624 0\n")
    write(root / "africlirmatrix-v1.0-swahili" / "corpus.jsonl",
          '{"id": "104757", "contents": "Albamu ya muziki"}\n{"id": "71624", "contents": "Mji wa Nairobi"}\n')
    task = convert(lookup("africlirmatrix"), ["swa"], root)
    assert [(q.lang, q.text) for q in task.queries] == [("en", "From the Cradle to the Grave (album)")]
    assert {d.lang for d in task.corpus} == {"swa"} and task.qrels == {"18559733": {"104757": 4, "71624": 0}}


def test_mrtydi_gzipped_topics_and_bad_lines_name_file_and_line(tmp_path):
    root = tmp_path / "data" / "mrtydi"
    write(root / "topics.mrtydi-v1.1-sw.test.txt.gz", "2601\tJe, Sarah ana mume?\n", True)
    write(root / "qrels.mrtydi-v1.1-sw.test.txt", "2601 Q0 15607#5 1\n2601 Q0 nowhere 1\n")
    write(root / "mrtydi-v1.1-swahili" / "corpus.jsonl.gz", '{"docid": "15607#5", "title": "", "text": "Ndiyo"}\n',
          True)
    entry = lookup("mrtydi")
    with pytest.raises(InputError, match=r"qrels.mrtydi-v1.1-sw.test.txt:2: unknown doc-id 'nowhere'"):
        convert(entry, ["sw"], root)
    write(root / "qrels.mrtydi-v1.1-sw.test.txt", "2601 Q0 15607#5\n")
    with pytest.raises(InputError, match=r"test.txt:1: expected TREC qrels"):
        convert(entry, ["sw"], root)
    write(root / "qrels.mrtydi-v1.1-sw.test.txt", "2601 Q0 15607#5 1\n")
    assert convert(entry, ["sw"], root).queries[0].text == "Je, Sarah ana mume?"
    (root / "topics.mrtydi-v1.1-sw.test.txt.gz").write_bytes(gzip.compress(b"2601\tJe?\n")[:-6])
    with pytest.raises(InputError, match=r"topics.mrtydi-v1.1-sw.test.txt.gz: damaged gzip data"):
        convert(entry, ["sw"], root)


def test_beir_nl_folder_and_sib200_tsvs(tmp_path):
    root = tmp_path / "data" / "beir-pl-scifact"
    write(root / "corpus.jsonl.gz",
          '{"_id": "d1", "title": "T", "text": "Tekst o nauce"}\n{"_id": "d2", "text": "Inny"}\n', True)
    write(root / "queries.jsonl.gz", '{"_id": "q1", "text": "Nauka?"}\n{"_id": "q2", "text": "Bez oceny"}\n', True)
    write(root / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    named = named_tasks("beir-pl-scifact", tmp_path / "data")[0]
    task = read_beir(named.folder)
    assert [q.id for q in task.queries] == ["q1"] and {d.lang for d in task.corpus} == {"pl"}
    assert named_tasks("beir-pl-scifact", tmp_path / "data")[0].folder == named.folder  # converted once, reused
    write(root / "queries.jsonl.gz", '{"_id": "q1", "text": "Nauka!"}\n', True)
    changed = named_tasks("beir-pl-scifact", tmp_path / "data")[0]
    assert changed.folder != named.folder and read_beir(changed.folder).queries[0].text == "Nauka!"
    sib = tmp_path / "data" / "flores-sib200"
    for code, words in (("swh_Latn", ("moja", "mbili")), ("eng_Latn", ("one", "two"))):
        write(sib / code / "train.tsv", f"index_id\tcategory\ttext\n7\tscience\t{words[1]}\n")
        write(sib / code / "dev.tsv", "index_id\tcategory\ttext\n")
        write(sib / code / "test.tsv", f"index_id\tcategory\ttext\n3\ttravel\t{words[0]}\n")
    task = convert(lookup("flores-200"), ["swh_Latn", "eng_Latn"], sib)
    assert [(q.id, q.text) for q in task.queries] == [("swh_Latn-3", "moja"), ("swh_Latn-7", "mbili")]
    assert task.qrels["swh_Latn-7"] == {"eng_Latn-7": 1}


def test_sib200_tsvs_are_read_as_the_pandas_csv_files_they_are(tmp_path):
    task = convert(lookup("flores-200"), ["swh_Latn", "eng_Latn", "ace_Latn"], FIXTURES / "sib-200")
    text = {q.id: q.text for q in task.queries} | {d.id: d.text for d in task.corpus}
    assert text["eng_Latn-1095"] == ('In an interview, he said the new variant was "very highly troubling and '
                                     'alarming because of the very high fatality rate."')
    assert text["eng_Latn-143"] == ('"Based on this fossil, that means the split is much earlier than has been '
                                    'anticipated by the molecular evidence.')
    assert text["ace_Latn-14"].startswith("‘Oh lheuh pertandingan, King of Clay kheun, \"Lôn")  # stripped
    assert all(t == t.strip() and '""' not in t for t in text.values())
    assert len(task.queries) == 14 and task.qrels["swh_Latn-988"] == {"eng_Latn-988": 1}
    # the publisher's files and the line-aligned files made from them (--data-dir) give the same text
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "flores-sib200"
    if shared.is_dir():
        ids = (shared / "ids.txt").read_text().splitlines()
        for code in ("eng_Latn", "swh_Latn"):
            lines = dict(zip(ids, (shared / f"{code}.txt").read_text(encoding="utf-8").splitlines()))
            for index in ("14", "548", "1095", "143", "666", "219", "988"):
                assert text[f"{code}-{index}"] == lines[index], (code, index)
    broken = tmp_path / "sib" / "eng_Latn"
    shutil.copytree(FIXTURES / "sib-200" / "eng_Latn", broken)
    (broken / "test.tsv").write_text('index_id\tcategory\ttext\n7\tscience\t"an open quote\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"test.tsv:2: malformed CSV quoting"):
        convert(lookup("flores-200"), ["eng_Latn"], tmp_path / "sib")


def test_tatoeba_through_a_file_mirror_is_verified_against_the_pinned_checksum(tmp_path, monkeypatch, cache):
    mirror = tmp_path / "mirror"
    target = mirror / "raw.githubusercontent.com" / TATOEBA.split("/", 3)[3] / "data" / "tatoeba" / "v1"
    shutil.copytree(FIXTURES / "tatoeba", target)
    monkeypatch.setenv("POLYIR_MIRROR", mirror.as_uri())
    part = cache / "raw" / "tatoeba" / "tatoeba.swh-eng.swh.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"half a file")  # a killed download: a file:// source cannot resume, so it starts afresh
    (named,) = named_tasks("tatoeba:swh")
    task = read_beir(named.folder)
    assert len(task.queries) == 390 and len(task.corpus) == 390 and not part.exists()
    assert sha256(cache / "raw" / "tatoeba" / "tatoeba.swh-eng.swh") == lookup("tatoeba").files["text"].sha256["swh"]
    (target / "tatoeba.swh-eng.eng").write_text("tampered\n")
    (cache / "raw" / "tatoeba" / "tatoeba.swh-eng.eng").unlink()
    with pytest.raises(InputError, match="checksum mismatch for .*tatoeba.swh-eng.eng: expected SHA-256"):
        named_tasks("tatoeba:swh")
    assert not (cache / "raw" / "tatoeba" / "tatoeba.swh-eng.eng").exists()


def test_unpinned_files_get_their_checksum_recorded_at_first_download(tmp_path, monkeypatch, cache):
    source = tmp_path / "mirror" / "example.org" / "file.txt"
    write(source, "first\n")
    monkeypatch.setenv("POLYIR_MIRROR", (tmp_path / "mirror").as_uri())
    assert download("https://example.org/file.txt", tmp_path / "got.txt") == sha256(source)
    with pytest.raises(Unreachable, match="cannot download"):
        download("https://example.org/absent.txt", tmp_path / "absent.txt")
    assert not (tmp_path / "absent.txt").exists()
    files = [Remote("corpus", "xx", "file.txt", "https://example.org/file.txt", None)]
    folder = in_cache(tmp_path / "raw", files)  # recorded on first download ...
    assert json.loads((folder / "checksums.json").read_text()) == {"file.txt": sha256(source)}
    (folder / "file.txt").write_text("changed\n")  # ... and checked on every later use
    with pytest.raises(InputError, match=r"raw/file.txt: checksum mismatch: .* \(recorded at first download in "
                                         r"checksums.json\)"):
        in_cache(folder, files)
    recorded = (folder / "checksums.json").read_text()
    for damaged, what in ((recorded[:12], "checksums.json:2: malformed JSON"),
                          ('{"file.txt": 7}', "checksums.json: a value is not a SHA-256"),
                          ("[]", "checksums.json: a JSON list; expected {file: SHA-256}")):
        (folder / "checksums.json").write_text(damaged)  # torn by a kill, or edited: never recorded anew
        with pytest.raises(InputError, match=re.escape(what)):
            in_cache(folder, files)
        assert (folder / "checksums.json").read_text() == damaged


def test_offline_and_missing_files_say_exactly_which(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYIR_MIRROR", (tmp_path / "nowhere").as_uri())
    found, missing = available_tasks("ciral:ha,so", tmp_path / "empty")
    assert not found and len(missing) == 2
    assert "empty/ciral/topics.ciral-v1.0-ha-test-a.tsv (from https://raw.githubusercontent.com" in missing[0]
    assert "passages-v1.0/somali_passages.jsonl (from https://huggingface.co/datasets/CIRAL" in missing[1]
    with pytest.raises(Missing, match=r"pass --data-dir D holding every one of the task's 3 file\(s\) in D/ .*: "
                                      "ciral/topics"):
        named_tasks("ciral:ha")
    # a cache holding some of the files: the hint still names every file a --data-dir folder must hold
    files = [Remote("corpus", "xx", name, f"https://example.org/{name}", None) for name in ("a.txt", "b.txt")]
    write(tmp_path / "raw" / "a.txt", "here\n")
    with pytest.raises(Unreachable, match=r"still missing here: b.txt\. .*every one of the task's 2 file\(s\).*"
                                          r"raw/a.txt .*raw/b.txt"):
        in_cache(tmp_path / "raw", files)
    with pytest.raises(Missing, match=r"empty/mlqa-r/ar.json \(from https://raw.githubusercontent.com/google-research-"
                                      "datasets/lareqa/5405d2a77e83d5ccb47623a3f9e5604c3f103193/mlqa-dev-r/ar.json"):
        named_tasks("mlqa-r:ar", tmp_path / "empty")


def test_data_cli_lists_gets_and_refuses_unknown_names(tmp_path, cache):
    listed = polyir("data", "list", env={"POLYIR_CACHE": cache})
    assert listed.returncode == 0 and "africlirmatrix" in listed.stdout and "Apache-2.0" in listed.stdout
    got = polyir("data", "get", "flores-200:swh_Latn,yor_Latn", "--data-dir", Path(__file__).parents[1] / "src" /
                 "polyir" / "data" / "sample", env={"POLYIR_CACHE": cache})
    assert got.returncode == 0, got.stderr
    folder = Path(got.stdout.split("\t")[0])
    assert len(read_beir(folder).queries) == 400
    bad = polyir("data", "get", "tatoba:swh", env={"POLYIR_CACHE": cache})
    assert bad.returncode == 2 and "did you mean tatoeba" in bad.stderr and "Traceback" not in bad.stderr


class _RangeServer:
    """A loopback HTTP server of one payload that honours `Range: bytes=N-` (206) and `If-Range` with its ETag (a
    changed file is served whole, 200), as the hub and GitHub do; a range past the end is 416."""

    def __init__(self, payload: bytes):
        import hashlib
        import http.server
        import threading

        self.ranges: list[str | None] = []
        self.payload = payload
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server hook
                body, etag = outer.payload, f'"{hashlib.sha256(outer.payload).hexdigest()[:16]}"'
                wanted = self.headers.get("Range")
                outer.ranges.append(wanted)
                if wanted and self.headers.get("If-Range") not in (None, etag):
                    wanted = None  # not the same file: the whole of it
                start = int(wanted.removeprefix("bytes=").rstrip("-")) if wanted else 0
                if start >= len(body) and wanted:
                    self.send_response(416)
                    self.end_headers()
                    return
                self.send_response(206 if wanted else 200)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def test_an_interrupted_download_resumes_only_when_the_server_proves_the_file_unchanged(tmp_path, monkeypatch):
    payload = (FIXTURES / "tatoeba" / "tatoeba.swh-eng.swh").read_bytes()
    server = _RangeServer(payload)
    monkeypatch.setenv("POLYIR_MIRROR", server.url)
    url = TATOEBA + "data/tatoeba/v1/tatoeba.swh-eng.swh"
    expected = lookup("tatoeba").files["text"].sha256["swh"]

    def killed_after(target: Path, size: int) -> None:
        """A first download that a kill stopped after `size` bytes: its part and the response's validator."""
        assert download(url, target, expected) == expected
        target.with_name(target.name + ".part").write_bytes(target.read_bytes()[:size])
        etag = f'"{hashlib.sha256(server.payload).hexdigest()[:16]}"'
        target.with_name(target.name + ".part.json").write_text(json.dumps({"url": mirrored(url), "validator": etag}))
        target.unlink()

    target = tmp_path / "raw" / "tatoeba.swh-eng.swh"
    killed_after(target, 4000)
    server.ranges.clear()
    assert download(url, target, expected) == expected
    assert server.ranges == ["bytes=4000-"] and target.read_bytes() == payload
    assert not target.with_name(target.name + ".part.json").exists()
    # the publisher changed the file since the part was fetched: the old prefix never meets the new tail
    changed = tmp_path / "raw" / "changed.swh"
    killed_after(changed, 4000)
    server.payload = payload.replace(b"a", b"A", 1)
    assert download(url, changed) == hashlib.sha256(server.payload).hexdigest()
    assert changed.read_bytes() == server.payload
    # a part without a validator (or a range the server cannot satisfy) is no proof: fetched afresh
    server.payload = payload
    for name, part in (("plain.swh", payload[:4000]), ("whole.swh", payload)):
        bare = tmp_path / "raw" / name
        bare.with_name(name + ".part").write_bytes(part)
        if name == "whole.swh":
            etag = f'"{hashlib.sha256(payload).hexdigest()[:16]}"'
            bare.with_name(name + ".part.json").write_text(json.dumps({"url": mirrored(url), "validator": etag}))
        assert download(url, bare, expected) == expected and bare.read_bytes() == payload
    bad = tmp_path / "raw" / "again.swh"
    bad.with_name(bad.name + ".part").write_bytes(b"x" * 4000)  # a damaged part: fetched afresh, then checked
    assert download(url, bad, expected) == expected
    server.server.shutdown()


def test_a_recorded_checksum_holds_for_every_later_download_and_a_folder_mirror(tmp_path, monkeypatch, cache):
    source = tmp_path / "mirror" / "example.org" / "file.txt"
    write(source, "first\n")
    monkeypatch.setenv("POLYIR_MIRROR", str(tmp_path / "mirror"))  # a folder, not a file:// URL
    files = [Remote("corpus", "xx", "file.txt", "https://example.org/file.txt", None)]
    folder = in_cache(tmp_path / "raw", files)
    recorded = (folder / "checksums.json").read_text()
    write(source, "changed by the publisher\n")
    (folder / "file.txt").unlink()  # a cache cleared by hand: downloaded again, checked against the record
    with pytest.raises(InputError, match="recorded at first download in .*checksums.json: the publisher's file has "
                                         "changed since"):
        in_cache(folder, files)
    assert (folder / "checksums.json").read_text() == recorded and not (folder / "file.txt").exists()


def test_mlqa_r_pools_its_languages_by_question_id():
    """MLQA-R's languages hold different articles (each question is in English and one to three other languages),
    so its questions are matched by id, not by article position: a question is relevant to its answer sentence in
    every language that has it. The fixture is cut from LAReQA's own files (tests/fixtures/publishers/README.md)."""
    folder = FIXTURES / "mlqa-r"
    task = convert(lookup("mlqa-r"), ["ar", "en", "es", "hi"], folder)
    by_lang = {lang: sum(q.lang == lang for q in task.queries) for lang in ("ar", "en", "es", "hi")}
    assert by_lang == {"ar": 3, "en": 3, "es": 2, "hi": 2}
    shared = "60ee75c50c8472be7cce1a24ee2cd7409ee4dd52"
    for lang in ("ar", "en", "es", "hi"):
        relevant = task.qrels[f"{shared}-{lang}"]
        assert sorted(doc.split("-")[0] for doc in relevant) == ["ar", "en", "es", "hi"]
    assert sorted(doc.split("-")[0] for doc in task.qrels["5ccbbf9918421d43463e8ed2213adfcdf85cf718-ar"]) == \
        ["ar", "en"]
    texts = {doc.id: doc.text for doc in task.corpus}
    english = next(d for d in task.qrels[f"{shared}-en"] if d.startswith("en-"))
    assert texts[english]  # the answer sentence itself, read from the publisher's sentence_breaks
    with pytest.raises(InputError, match="articles, but ar.json has 2; expected the same articles"):
        read_lareqa(folder, ["ar", "es"])  # a split by article needs aligned articles: said, not guessed
