"""`polyir translate beir|train`: the command-line front of polyir.translate (options shared by both commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from polyir.cli.console import console, parse_lang_map, quiet_libraries, resolve_device
from polyir.cli.options import Device, LangMap, Overwrite, Quiet
from polyir.guard import check_output

BEIR_EXAMPLE = "Example: polyir translate beir beir-scifact data/scifact-lr --to sw,yo,ha,am"
TRAIN_EXAMPLE = "Example: polyir translate train train-v1.1.json data/squad-mt --to ar,de,es,hi,ru,th,tr,zh"
app = typer.Typer(help="Machine-translate BEIR folders and training pairs with M2M-100 / NLLB-200.",
                  no_args_is_help=True, epilog=BEIR_EXAMPLE)

To = Annotated[str, typer.Option("--to", help="Comma-separated target languages, e.g. sw,yo,ha,am.")]
From = Annotated[str, typer.Option("--from", help="Language of the source texts.")]
Model = Annotated[str, typer.Option(help="Translation model: hub id or folder (M2M-100 or NLLB-200).")]
Backend = Annotated[str, typer.Option(help="huggingface, or ctranslate2 (pip install ctranslate2).")]
Precision = Annotated[str, typer.Option(help="auto (bf16 on a GPU; fp32 on CPU, int8 with ctranslate2), float32, "
                                             "bfloat16, int8 (ctranslate2).")]
Beam = Annotated[int, typer.Option(min=1, help="Beam size.")]
MaxInput = Annotated[int, typer.Option(min=8, help="Sentences longer than this (tokens) are cut at word bounds.")]
MaxNew = Annotated[int, typer.Option(min=1, help="Most tokens generated per piece.")]
Batch = Annotated[int, typer.Option(min=1, help="Pieces per generation batch.")]
Sort = Annotated[bool, typer.Option("--sort/--no-sort", help="Batch pieces of similar length together.")]
Cache = Annotated[Path | None, typer.Option(help="Translation cache folder (default: in the polyir cache, one per "
                                                 "model and revision).")]
Drop = Annotated[str, typer.Option(help="Comma-separated quality flags that drop a translation: empty, copy, loop, "
                                        "length-ratio, wrong-script, wrong-language, round-trip.")]
Tolerance = Annotated[float, typer.Option(min=1.0, help="A length ratio beyond this factor of the language's "
                                                        "median is flagged.")]
RoundTrip = Annotated[bool, typer.Option("--round-trip", help="Translate back and record chrF (sacrebleu).")]
MinChrf = Annotated[float | None, typer.Option(help="Flag round-trip chrF below this.")]
LanguageId = Annotated[str, typer.Option(help="accurate or fast (lingua's low-accuracy mode), or off.")]


def _settings(to, source, model, backend, precision, beam_size, max_input_tokens, max_new_tokens, batch_size, sort,
              cache, device, drop, length_tolerance, round_trip, min_chrf, language_id, lang_map):
    from polyir.translate.backends import Generation, auto_precision
    from polyir.translate.job import JobSettings

    device = resolve_device(device)
    generation = Generation(beam_size, max_input_tokens, max_new_tokens, backend,
                            auto_precision(precision, backend, device))
    return JobSettings(model, source, [c.strip() for c in to.split(",") if c.strip()], generation, cache, device,
                       batch_size, sort, [f.strip() for f in drop.split(",") if f.strip()], length_tolerance,
                       round_trip, min_chrf, language_id, parse_lang_map(lang_map or []))


def _run(translate, src: Path, out: Path, model: str, cache: Path | None, quiet: bool) -> None:
    """What both commands do around their translation: the output checked on rank 0, the report."""
    from polyir.distributed import init_world
    from polyir.models.packaged import model_source

    quiet_libraries(quiet)
    world = init_world()
    if world.main:
        check_output(out, [src, *filter(None, (cache, model_source(model)))])
    outcome = translate(world)
    if world.main:
        _report(out, outcome)


def _report(out: Path, outcome) -> None:
    langs = outcome.manifest["languages"]
    flagged = ", ".join(f"{lang} {numbers['flagged']}/{numbers['texts']}" for lang, numbers in langs.items())
    console.print(f"{out}: {outcome.manifest['texts']} texts into {len(langs)} languages, {outcome.stats.pieces} "
                  f"pieces: {outcome.stats.generated} generated, {outcome.stats.cached} from the cache; flagged "
                  f"{flagged}")


@app.command("beir", epilog=BEIR_EXAMPLE)
def beir(src: Annotated[Path, typer.Argument(help="BEIR folder in one language, or a named task (beir-scifact).")],
         out: Annotated[Path, typer.Argument(help="Output BEIR folder (with translation.json).")],
         to: To, source: From = "en", model: Model = "facebook/m2m100_418M",
         what: Annotated[str, typer.Option(help="queries, corpus or both.")] = "both",
         backend: Backend = "huggingface", precision: Precision = "auto", beam_size: Beam = 5,
         max_input_tokens: MaxInput = 200, max_new_tokens: MaxNew = 256, batch_size: Batch = 32, sort: Sort = True,
         cache: Cache = None, device: Device = "auto", drop: Drop = "", length_tolerance: Tolerance = 3.0,
         round_trip: RoundTrip = False, min_chrf: MinChrf = None, language_id: LanguageId = "accurate",
         lang_map: LangMap = None, overwrite: Overwrite = False, quiet: Quiet = False) -> None:
    """A BEIR folder → the same in every --to language (ids suffixed -LANG, qrels for every language pair)."""
    from polyir.translate.collection import beir_source, translate_beir

    src = beir_source(src)
    settings = _settings(to, source, model, backend, precision, beam_size, max_input_tokens, max_new_tokens,
                         batch_size, sort, cache, device, drop, length_tolerance, round_trip, min_chrf, language_id,
                         lang_map)
    _run(lambda world: translate_beir(src, out, settings, what, overwrite, world, not quiet), src, out, model, cache,
         quiet)


@app.command("train", epilog=TRAIN_EXAMPLE)
def train(src: Annotated[Path, typer.Argument(help="train.jsonl, BEIR folder with training qrels, or SQuAD .json.")],
          out: Annotated[Path, typer.Argument(help="Output folder: train.jsonl and translation.json.")],
          to: To, source: From = "en", model: Model = "facebook/m2m100_418M",
          split: Annotated[str, typer.Option(help="Qrels split of a BEIR source.")] = "train",
          backend: Backend = "huggingface", precision: Precision = "auto", beam_size: Beam = 5,
          max_input_tokens: MaxInput = 200, max_new_tokens: MaxNew = 256, batch_size: Batch = 32, sort: Sort = True,
          cache: Cache = None, device: Device = "auto", drop: Drop = "", length_tolerance: Tolerance = 3.0,
          round_trip: RoundTrip = False, min_chrf: MinChrf = None, language_id: LanguageId = "accurate",
          lang_map: LangMap = None, overwrite: Overwrite = False, quiet: Quiet = False) -> None:
    """Training pairs in one language → parallel train.jsonl (query, positive, negatives in every language)."""
    from polyir.translate.pairs import translate_train

    settings = _settings(to, source, model, backend, precision, beam_size, max_input_tokens, max_new_tokens,
                         batch_size, sort, cache, device, drop, length_tolerance, round_trip, min_chrf, language_id,
                         lang_map)
    _run(lambda world: translate_train(src, out, settings, split, overwrite, world, not quiet), src, out, model,
         cache, quiet)
