"""`polyir prepare lareqa|bitext`: raw data into train.jsonl and BEIR folders with `lang` fields."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from polyir.cli.console import console
from polyir.cli.options import Overwrite
from polyir.errors import InputError
from polyir.guard import check_output

app = typer.Typer(help="Turn raw data into train.jsonl and BEIR folders with `lang` fields.", no_args_is_help=True,
                  epilog="Example: polyir prepare lareqa ../shared/data/xquad-r data/xquad --holdout 0.25")


@app.command("lareqa", epilog="Example: polyir prepare lareqa ../shared/data/xquad-r data/xquad --holdout 0.25")
def prepare_lareqa(
    src_dir: Annotated[Path, typer.Argument(help="Folder of <lang>.json files (XQuAD-R or MLQA-R).")],
    out_dir: Annotated[Path, typer.Argument(help="Output folder: train.jsonl and eval/ (a BEIR folder).")],
    holdout: Annotated[float, typer.Option(help="Share of articles held out for evaluation (1 = eval only).")],
    seed: Annotated[int, typer.Option(help="Seed of the article split.")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """XQuAD-R / MLQA-R → OUT/train.jsonl (parallel examples) + OUT/eval/ (held-out articles), split by article."""
    from polyir.data import write_beir, write_train
    from polyir.data.lareqa import article_count, evaluation_task, read_lareqa, split_articles, training_examples
    from polyir.files import atomic_dir

    check_output(out_dir, [src_dir])
    by_lang = read_lareqa(src_dir)
    train, held_out = split_articles(article_count(by_lang), holdout, seed)
    with atomic_dir(out_dir, overwrite) as staging:
        if train:
            write_train(training_examples(by_lang, train), staging / "train.jsonl")
        if held_out:
            (staging / "eval").mkdir()
            write_beir(evaluation_task(by_lang, held_out), staging / "eval")
    console.print(f"{out_dir}: {len(train)} training and {len(held_out)} evaluation articles, "
                  f"{len(by_lang)} languages")


@app.command("bitext", epilog="Example: polyir prepare bitext ../shared/data/flores-sib200 data/flores "
                              "--pivot eng_Latn --langs eng_Latn,swh_Latn,yor_Latn")
def prepare_bitext(
    src_dir: Annotated[Path, typer.Argument(help="Folder of line-aligned <code>.txt files (optional ids.txt).")],
    out_dir: Annotated[Path, typer.Argument(help="Output BEIR folder.")],
    pivot: Annotated[str, typer.Option(help="Language of the corpus; queries are the other languages.")],
    langs: Annotated[str | None, typer.Option(help="Comma-separated languages (default: every file).")] = None,
    pooled: Annotated[bool, typer.Option("--pooled", help="Corpus of every language instead of the pivot.")] = False,
    train: Annotated[bool, typer.Option("--train", help="Write OUT/train.jsonl (each line a parallel example), "
                                                        "OUT/train-lines/ (the same lines as <code>.txt files: "
                                                        "distillation texts that are no test line) and, with "
                                                        "--holdout, OUT/eval/ from the other lines.")] = False,
    holdout: Annotated[float, typer.Option(help="With --train: share of lines held out for OUT/eval/.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the line split.")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Line-aligned translations → a BEIR folder for bitext retrieval (query in X, its translation relevant), or
    with --train parallel training examples from them (and a held-out BEIR folder)."""
    from polyir.data import write_beir, write_train
    from polyir.data.bitext import aligned_task, bitext_examples, bitext_task, read_bitext, write_lines
    from polyir.data.lareqa import split_articles
    from polyir.files import atomic_dir

    check_output(out_dir, [src_dir])
    chosen = [code.strip() for code in langs.split(",") if code.strip()] if langs else None
    if train:
        ids, texts = read_bitext(src_dir, chosen)
        if pivot not in texts:
            raise InputError(f"pivot '{pivot}' is not among the languages {', '.join(texts)}", src_dir)
        kept, held_out = split_articles(len(ids), holdout, seed)
        with atomic_dir(out_dir, overwrite) as staging:
            write_train(bitext_examples(ids, texts, kept), staging / "train.jsonl")
            write_lines(ids, texts, kept, staging / "train-lines")
            if held_out:
                (staging / "eval").mkdir()
                write_beir(aligned_task(ids, texts, pivot, pooled, "eval", held_out), staging / "eval")
        console.print(f"{out_dir}: {len(kept)} training and {len(held_out)} evaluation lines, {len(texts)} languages")
        return
    task = bitext_task(src_dir, pivot, chosen, pooled, name=out_dir.name)
    with atomic_dir(out_dir, overwrite) as staging:
        write_beir(task, staging)
    console.print(f"{out_dir}: {len(task.queries)} queries, {len(task.corpus)} documents, "
                  f"languages {', '.join(task.query_languages)} -> {', '.join(task.corpus_languages)}")
