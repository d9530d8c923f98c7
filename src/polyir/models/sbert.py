"""The sentence-transformers folder format: the settings a folder declares (pooling, normalisation, prompts,
length), read so that polyir encodes as the model's authors meant, and written beside saved weights so that
sentence-transformers loads a polyir model as polyir uses it."""

from __future__ import annotations

import json
from pathlib import Path

from polyir.config import EncoderSettings
from polyir.errors import InputError
from polyir.files import read_json


def sentence_transformers_settings(path: Path) -> dict:
    """Read pooling, normalisation, prompts and length from a sentence-transformers folder, when it is one."""
    if not (path / "modules.json").is_file():
        return {}
    modules = read_json(path / "modules.json", "sentence-transformers' list of modules", list)
    if not all(isinstance(m, dict) and isinstance(m.get("type"), str) and isinstance(m.get("path"), str)
               for m in modules):
        raise InputError("expected sentence-transformers' list of modules, each with a 'type' and a 'path'",
                         path / "modules.json")
    found: dict = {"normalize": any(m["type"].endswith("Normalize") for m in modules)}
    for module in modules:
        if module["type"].endswith("Pooling"):
            pooling = read_json(path / module["path"] / "config.json", "a pooling configuration")
            found["pooling"] = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
    if (path / "sentence_bert_config.json").is_file():
        length = read_json(path / "sentence_bert_config.json", "sentence-transformers' settings").get(
            "max_seq_length")
        if length:
            found["max_query_length"] = found["max_passage_length"] = length
    if (path / "config_sentence_transformers.json").is_file():
        prompts = read_json(path / "config_sentence_transformers.json",
                            "sentence-transformers' configuration").get("prompts") or {}
        for kind in ("query", "passage"):
            if kind in prompts:
                found[f"{kind}_prefix"] = prompts[kind]
    return found


def write_sentence_transformers_files(folder: Path, settings: EncoderSettings, dimension: int) -> None:
    """modules.json, pooling, length and prompts, so that sentence-transformers loads the folder as polyir uses it."""
    s = settings
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if s.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
        (folder / "2_Normalize").mkdir()
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": dimension, "pooling_mode_cls_token": s.pooling == "cls",
        "pooling_mode_mean_tokens": s.pooling == "mean", "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True}, indent=2))
    (folder / "sentence_bert_config.json").write_text(json.dumps(
        {"max_seq_length": max(s.max_query_length, s.max_passage_length), "do_lower_case": False}))
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": s.query_prefix, "passage": s.passage_prefix}, "default_prompt_name": None,
         "similarity_fn_name": "cosine" if s.normalize else "dot"}, indent=2))
