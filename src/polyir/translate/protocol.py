"""The translated sets a comparison declares (`translate:` in its config): training pairs and test collections
made by `polyir translate`, each once under output_dir/data/translated/<name>/ with the fingerprint of its
settings, model revision and source, so every cell reuses it and nothing made otherwise is taken for it."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from polyir import provenance
from polyir.config import CompareConfig, CompareDataConfig, TranslateConfig, TranslatedSet
from polyir.data import task_names
from polyir.errors import InputError
from polyir.translate.backends import Generation, auto_precision, model_revision
from polyir.translate.job import JobSettings


def _settings(translate: TranslateConfig, spec: TranslatedSet, device: str) -> JobSettings:
    generation = Generation(translate.beam_size, translate.max_input_tokens, translate.max_new_tokens,
                            translate.backend, auto_precision(translate.precision, translate.backend, device))
    return JobSettings(spec.model, spec.source_language, spec.languages, generation, translate.cache, device,
                       translate.batch_size, drop=translate.drop, language_id=translate.language_id)


def _build(config: CompareConfig, spec: TranslatedSet, kind: str, data_dir: Path | None, redo: bool,
           show_progress: bool) -> Path:
    from polyir.translate.collection import beir_source, translate_beir
    from polyir.translate.pairs import translate_train

    source = Path(spec.source) if kind == "train" else beir_source(spec.source, data_dir)
    name = spec.name or ("train" if kind == "train" else f"{source.name}-{'-'.join(spec.languages)}")
    folder = Path(config.output_dir) / "data" / "translated" / name
    device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = _settings(config.translate, spec, device)
    expected = provenance.fingerprint(
        {"set": spec.model_dump(mode="json", exclude={"source", "name"}), "kind": kind,
         "generation": settings.generation.as_json(), "drop": settings.drop, "language_id": settings.language_id,
         "revision": model_revision(spec.model)}, {"source": source})
    if provenance.reusable(folder, expected, f"the translated {kind} set", redo):
        return folder
    staging = folder.with_name(f".{name}.building")
    if kind == "train":
        translate_train(source, staging, settings, spec.split, overwrite=True, show_progress=show_progress)
    else:
        translate_beir(source, staging, settings, spec.what, overwrite=True, show_progress=show_progress)
    provenance.write(staging, expected)
    os.replace(staging, folder)
    return folder


def with_translations(config: CompareConfig, data: CompareDataConfig, data_dir: Path | None, redo: bool = False,
                      show_progress: bool = True) -> tuple[CompareDataConfig, str]:
    """`data` with the translated training set in place of data.train and the translated collections among the
    test tasks, and a sentence saying how they were made."""
    translate = config.translate
    if translate is None or (translate.train is None and not translate.test):
        return data, ""
    update, said = {}, []
    if translate.train is not None:
        update["train"] = _build(config, translate.train, "train", data_dir, redo, show_progress) / "train.jsonl"
        said.append(f"training pairs from {translate.train.source} translated by {translate.train.model} into "
                    f"{', '.join(translate.train.languages)}")
    tests = [_build(config, spec, "test", data_dir, redo, show_progress) for spec in translate.test]
    said += [f"test collection {path.name} from {spec.source} translated by {spec.model} ({spec.what})"
             for path, spec in zip(tests, translate.test)]
    names = task_names(data.test) + [path.name for path in tests]
    if len(set(names)) != len(names):
        raise InputError(f"two test tasks share a name ({', '.join(names)}); give translate.test[].name")
    update["test"] = [*data.test, *tests]
    return data.model_copy(update=update), "; ".join(said)
