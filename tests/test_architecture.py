"""The package's shape: no module imports, at any depth of its code, one that imports it back."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pgsound"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_import_by_name(node: ast.AST) -> bool:
    """``importlib.import_module("literal")`` or ``import_module("literal")``."""
    if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
        return False
    function = node.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
    return name == "import_module" and isinstance(node.args[0].value, str)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the pgsound modules it imports, counting imports inside functions and by name too."""
    modules = {module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif is_import_by_name(node):  # importlib.import_module("pgsound.x"): an import all the same
                targets = [node.args[0].value]
            for target in targets:
                if target in modules and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_of_the_package_is_acyclic():
    graph = import_graph()
    assert "pgsound.phase_retrieval" in graph["pgsound.representations"]  # the graph sees real imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_package_name_hides_one_of_its_modules():
    """``from pgsound.metrics.ndb import ndb`` in ``metrics/__init__`` would make ``pgsound.metrics.ndb`` the
    function, and ``import pgsound.metrics.ndb as m`` would then hand out the function instead of the module."""
    import importlib
    import pkgutil
    import types

    import pgsound

    for info in pkgutil.walk_packages(pgsound.__path__, "pgsound."):
        importlib.import_module(info.name)
    for info in pkgutil.walk_packages(pgsound.__path__, "pgsound."):
        parent, _, name = info.name.rpartition(".")
        value = getattr(importlib.import_module(parent), name)
        assert isinstance(value, types.ModuleType), f"{parent}.{name} is {value!r}, not the module {info.name}"


def test_imports_by_name_are_edges_of_the_graph(tmp_path):
    """The cycle the command line once hid (it loaded its commands by name) is found."""
    package = tmp_path / "pgsound"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text('import importlib\nimportlib.import_module("pgsound.commands")\n')
    (package / "commands.py").write_text("def run():\n    from pgsound.cli import main\n")
    assert find_cycle(import_graph(package)) == ["pgsound.cli", "pgsound.commands", "pgsound.cli"]


# A module a reader takes in at one sitting: past this, it holds more than one idea (README, "The package").
MODULE_LINE_LIMIT = 400
# The two modules a new contributor reads first, held to tighter sizes (issue 44).
TIGHTER_LIMITS = {"pgsound.trainer": 350, "pgsound.preflight": 250}


def test_no_module_outgrows_one_idea():
    sizes = {module_name(p): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    too_long = {name: n for name, n in sizes.items() if n > TIGHTER_LIMITS.get(name, MODULE_LINE_LIMIT)}
    assert not too_long, f"split these modules (lines): {too_long}"


def test_the_books_tooling_keeps_the_same_size_rule():
    """book/*.py (the slides, the take-away notebooks, the chapter runner) are read by contributors too."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in (PACKAGE.parent / "book").glob("*.py")}
    assert sizes and not {name: n for name, n in sizes.items() if n > MODULE_LINE_LIMIT}, sizes


def test_the_readmes_package_table_names_every_module():
    """README's "The package" table is a new contributor's map: a module missing from it is a module not found."""
    readme = (PACKAGE.parent / "README.md").read_text()
    table = readme[readme.index("## The package") :].split("\n## ")[0]
    named = set(re.findall(r"`(\w+)/?`", table))
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert not modules - named, f"add to README's package table: {sorted(modules - named)}"
