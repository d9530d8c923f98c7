"""`polyir data list|get`: the registry of named tasks, and a task as BEIR folders in the cache."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from polyir.cli.console import console
from polyir.cli.options import DataDir

app = typer.Typer(help="Named retrieval tasks: list the registry, download or convert a task.", no_args_is_help=True,
                  epilog="Example: polyir data get flores-200:swh_Latn,yor_Latn --data-dir ../shared/data")


@app.command("list", epilog="Example: polyir data list")
def data_list() -> None:
    """The registry: each task's languages, size, license and where its files come from."""
    from polyir.data.registry import registry

    view = Table(title="polyir data: named tasks (NAME[:LANG,...])", show_lines=True)
    for column in ("name", "languages", "queries / documents", "license", "source"):
        view.add_column(column, overflow="fold")
    for entry in registry().values():
        langs = list(entry.languages)
        queries = [info.queries for info in entry.languages.values() if info.queries]
        docs = [info.documents for info in entry.languages.values() if info.documents]
        size = (f"{sum(queries):,} queries" if queries else "") + (f" / {sum(docs):,} documents" if docs else "")
        bases = sorted({spec.base.split("/")[2] for spec in entry.files.values() if spec.base}) or ["--data-dir only"]
        view.add_row(f"{entry.name}\n{entry.title}", f"{len(langs)}: {' '.join(langs[:24])}"
                     + (" ..." if len(langs) > 24 else ""), size, entry.license, ", ".join(bases))
    Console(width=max(160, console.width)).print(view)

@app.command("get", epilog="Example: polyir data get flores-200:swh_Latn,yor_Latn --data-dir ../shared/data")
def data_get(
    name: Annotated[list[str], typer.Argument(help="NAME or NAME:LANG[,LANG...] (see `polyir data list`).")],
    data_dir: DataDir = None,
) -> None:
    """Download (resumable, verified) or read from --data-dir, and convert to BEIR folders in the cache; prints
    each folder."""
    from polyir.data.named import named_tasks

    for spec in name:
        for named in named_tasks(spec, data_dir):
            print(f"{named.folder}\t{named.split}\t{','.join(named.langs)}")
