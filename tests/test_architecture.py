"""The house keeps its floor plan: every module is listed in docs/architecture.md, and imports point down the
flow (a module imports only from its own floor and the floors below)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "polyir"
FLOORS = {"data": 1, "models": 2, "evaluation": 3, "training": 4, "translate": 4, "comparison": 5, "cli": 6}
ENTRY_POINTS = {"polyir.__main__", "polyir.testing"}  # above every floor: the command line's entry, test support


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def floor(module: str) -> tuple[int, str]:
    """(height, name) of a module's floor; the core is floor 0."""
    parts = module.split(".")
    return (FLOORS[parts[1]], parts[1]) if len(parts) > 2 or parts[-1] in FLOORS else (0, "core")


def imports(path: Path) -> set[str]:
    """The polyir modules a file imports, at module level or inside functions (`from polyir.x import y` counts as
    importing polyir.x.y where y is a module)."""
    found, known = set(), modules()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "polyir":
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                      for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "polyir"}
    return found - {"polyir"}


def test_every_module_is_listed_in_the_architecture_page():
    page = (ROOT / "docs" / "architecture.md").read_text()
    tree = page[page.index("src/polyir/"):]
    listed, folders = set(), []
    for line in tree.splitlines()[1:]:
        match = re.match(r"( +)(\S+)", line)
        if not match or match.group(2).startswith(("tests/", "bench/", "docs/")):
            continue
        depth, name = len(match.group(1)) // 2, match.group(2)
        if name.endswith("/"):
            folders[depth - 1:] = [name.rstrip("/")]
        elif name.endswith(".py"):
            listed.add(".".join(["polyir", *folders[:depth - 1], name.removesuffix(".py")]))
    files = {".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts) for path in modules().values()}
    assert files - listed == set(), "modules missing from docs/architecture.md"
    assert listed - files == set(), "docs/architecture.md lists modules that do not exist"


@pytest.mark.parametrize("module", [m for m in modules() if m not in ENTRY_POINTS])
def test_imports_point_down_the_flow(module):
    height, name = floor(module)
    for target in imports(modules()[module]):
        assert target not in ENTRY_POINTS, f"{module} imports {target}"
        target_height, target_name = floor(target)
        assert target_height < height or target_name == name, \
            f"{module} ({name}) imports {target} ({target_name}), a floor above or beside it"


def test_no_module_imports_one_that_imports_it_back():
    graph = {module: {t for t in imports(path) if t in modules()} for module, path in modules().items()}

    def reaches(start: str, goal: str, seen: set) -> bool:
        return any(nxt == goal or (nxt not in seen and not seen.add(nxt) and reaches(nxt, goal, seen))
                   for nxt in graph[start])

    cycles = [module for module in graph if reaches(module, module, set())]
    assert cycles == []
