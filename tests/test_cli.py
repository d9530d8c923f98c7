"""The command line as a user meets it: what polyir is for, its version, an example in every command's help."""

from __future__ import annotations

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

import polyir
from polyir.cli.app import app
from tests.helpers import polyir as run


def commands(group: TyperGroup, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, TyperGroup):
            found += commands(command, (*prefix, name))
    return found


ALL = commands(typer.main.get_command(app))


def test_help_opens_with_what_polyir_is_for():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    opening = result.stdout.split("Usage:", 1)[1].splitlines()[2:6]
    assert "multilingual dense retrievers" in " ".join(opening)
    assert "parse arguments" not in result.stdout


def test_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"polyir {polyir.__version__}"


def test_every_command_is_reached():
    assert {c[0] for c in ALL} == {"prepare", "evaluate", "train", "compare", "data", "benchmark", "results",
                                  "translate", "config", "merge"}
    assert len(ALL) == 16


@pytest.mark.parametrize("command", ALL, ids=" ".join)
def test_every_command_help_has_an_example(command):
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    examples = [line.strip() for line in result.output.splitlines() if line.strip().startswith("Example: polyir ")]
    assert len(examples) == 1, result.output
    assert examples[0].removeprefix("Example: polyir ").startswith(" ".join(command))
