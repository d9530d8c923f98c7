"""The sentence-transformers folder format: the settings a folder declares (pooling, normalisation, prompts,
length), read so that polyir encodes as the model's authors meant, and written beside saved weights so that
sentence-transformers loads a polyir model as polyir uses it."""

from __future__ import annotations

import json
from pathlib import Path

from polyir.config import EncoderSettings


def sentence_transformers_settings(path: Path) -> dict:
    """Read pooling, normalisation, prompts and length from a sentence-transformers folder, when it is one."""
    if not (path / "modules.json").is_file():
        return {}
    modules = json.loads((path / "modules.json").read_text())
    found: dict = {"normalize": any(m["type"].endswith("Normalize") for m in modules)}
    for module in modules:
        if module["type"].endswith("Pooling"):
            pooling = json.loads((path / module["path"] / "config.json").read_text())
            found["pooling"] = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
    if (path / "sentence_bert_config.json").is_file():
        length = json.loads((path / "sentence_bert_config.json").read_text()).get("max_seq_length")
        if length:
            found["max_query_length"] = found["max_passage_length"] = length
    if (path / "config_sentence_transformers.json").is_file():
        prompts = json.loads((path / "config_sentence_transformers.json").read_text()).get("prompts") or {}
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
