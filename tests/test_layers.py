"""The layer contract (``.importlinter``): import-linter's own check, run as a user would, and no cycle
between bakeoff's packages (grimp's import graph, the one import-linter builds), so a dependency that
points the wrong way fails the suite, not a later review."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_layered_import_contract_holds():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is a dev dependency (pyproject.toml)"
    proc = subprocess.run([exe, "--config", str(ROOT / ".importlinter")], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0 and "2 kept, 0 broken" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_no_cycle_between_packages():
    import grimp

    graph = grimp.build_graph("bakeoff")
    top = sorted({m.split(".")[1] for m in graph.modules if m.count(".") >= 1})

    def package(m: str) -> str:
        return m.split(".")[1] if m.count(".") >= 1 else m

    edges = {p: set() for p in top}
    for m in graph.modules:
        if m.count(".") < 1:
            continue
        for imported in graph.find_modules_directly_imported_by(m):
            if imported.startswith("bakeoff.") and package(imported) != package(m):
                edges[package(m)].add(package(imported))
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(p: str) -> None:  # depth-first search; a grey node met again closes a cycle
        state[p] = 1
        path.append(p)
        for q in sorted(edges.get(p, ())):
            assert state.get(q) != 1, f"package cycle: {' -> '.join(path[path.index(q):] + [q])}"
            if q not in state:
                visit(q)
        path.pop()
        state[p] = 2

    for p in top:
        if p not in state:
            visit(p)


def test_no_import_circle_between_modules():
    """No module imports, directly or through others, a module that imports it (issue 44: no circle inside
    a package either). Registries load their built-in providers by module name (``runs.backends``,
    ``data.registry``, ``tasks.registry``), as entry points are loaded, so the providers import the
    registry and never the other way round. Imports inside ``if TYPE_CHECKING`` are not imports."""
    import grimp

    graph = grimp.build_graph("bakeoff", exclude_type_checking_imports=True)
    circles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                circles.append(" -> ".join((module, *back)))
    assert not circles, circles


def test_the_command_line_imports_only_the_api_and_the_errors():
    """``bakeoff.cli`` parses, calls ``bakeoff.api`` and prints (issue 44): of bakeoff it imports the API and
    the error type, whatever modules are added later (the contract's list names today's)."""
    import grimp

    graph = grimp.build_graph("bakeoff", exclude_type_checking_imports=True)
    imported = {m for m in graph.find_modules_directly_imported_by("bakeoff.cli") if m.startswith("bakeoff")}
    assert imported <= {"bakeoff", "bakeoff.api", "bakeoff.errors"}, sorted(imported)


def test_siblings_in_the_contract_are_independent():
    """Siblings of one layer are joined by "|" (neither may import the other), never ":" (which would let
    them): the contract states what the code keeps (issue 44)."""
    text = (ROOT / ".importlinter").read_text()
    layers = text.split("layers =", 1)[1].split("\n[", 1)[0]
    lines = [ln.strip() for ln in layers.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert lines and not [ln for ln in lines if ":" in ln], lines
    assert any("|" in ln for ln in lines)


MAX_FUNCTION_LINES = 80  # a function, docstring included, that a reader sees whole on one screen (issue 44)


def test_no_function_is_longer_than_a_screen():
    """Every function and method of the package, from its ``def`` to its last line, at most
    MAX_FUNCTION_LINES long: beyond that, name the parts (as methods_paragraph, the CLI's run, plan and list
    and the metric registrations were split)."""
    import ast

    long = []
    for path in sorted((ROOT / "src" / "bakeoff").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long
