"""The `polyir` command: the command groups put together, `--version`, and errors mapped to exit codes
(0 success, 2 bad input or configuration, 1 internal error)."""

from __future__ import annotations

import errno
import sys
import traceback
from typing import Annotated

import typer

from polyir import __version__
from polyir.cli import benchmark, compare, config, data, evaluate, merge, prepare, train, translate
from polyir.cli.console import console, show_logs
from polyir.errors import InputError, ModelError

ABOUT = ("Train and evaluate multilingual dense retrievers, with low-resource languages in view.\n\n"
         "polyir compares hybrid batch training (monolingual X-X and cross-lingual X-Y batches) with gradient "
         "accumulation and gradient caching, in convergence speed and zero-shot cross-lingual retrieval quality, for "
         "M2M-100 or any encoder, on BEIR-style benchmarks. Start with `polyir compare` (the embedded comparison, "
         "about 15 minutes on a CPU); `polyir COMMAND --help` shows each command with an example.")

app = typer.Typer(help=ABOUT, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  epilog="Example: polyir compare --data-dir ../shared/data")
app.add_typer(prepare.app, name="prepare")
app.add_typer(data.app, name="data")
app.add_typer(translate.app, name="translate")
app.command("evaluate", epilog=evaluate.EXAMPLE)(evaluate.evaluate)
app.command("train", epilog=train.EXAMPLE)(train.train)
app.command("compare", epilog=compare.EXAMPLE)(compare.compare)
app.command("merge", epilog=merge.EXAMPLE)(merge.merge)
app.command("benchmark", epilog=benchmark.EXAMPLE)(benchmark.benchmark)
app.command("results", epilog=benchmark.RESULTS_EXAMPLE)(benchmark.results)
app.command("config", epilog=config.EXAMPLE)(config.config)

USER_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.EEXIST}


def _print_version(value: bool) -> None:
    if value:
        print(f"polyir {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="Print polyir's version and exit.")] = False) -> None:
    pass


def main() -> None:
    show_logs()
    try:
        app(standalone_mode=True)
    except InputError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except ModelError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - beyond a path the user gave that cannot be written: polyir's fault
        if isinstance(error, OSError) and (isinstance(error, PermissionError) or error.errno in USER_ERRNOS):
            where = f"{error.filename}: " if error.filename else ""
            console.print(f"[red]error:[/red] {where}{error.strerror}; expected a path polyir may write",
                          highlight=False, soft_wrap=True)
            sys.exit(2)
        traceback.print_exc()
        console.print("[red]internal error[/red]: please report it with the traceback above")
        sys.exit(1)
