"""The package's shape: no import cycles (imports inside functions count too) and modules of one job.

The layer contract itself (command line -> applications -> few-shot research -> embedding -> models ->
features -> data -> core) is checked by import-linter in `.ci/run` (`lint-imports`, contract in
pyproject.toml); this test finds cycles between any two modules, which a layer contract does not see
inside one layer.
"""

from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")

PACKAGE = Path(__file__).resolve().parents[1] / "fewshot_audio"
MAX_LINES = 420  # "a few hundred lines is a hint that it does two jobs"


def _graph():
    return grimp.build_graph("fewshot_audio", include_external_packages=False)


def test_no_import_cycles():
    graph = _graph()
    cycles = []
    modules = sorted(m for m in graph.modules if m != "fewshot_audio")
    for m in modules:
        for dep in graph.find_modules_directly_imported_by(m):
            if dep == "fewshot_audio" or dep == m:
                continue
            back = graph.find_shortest_chain(importer=dep, imported=m)
            if back:
                cycles.append(" -> ".join((m, *back)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles))[:20])


def test_nothing_imports_the_package_root():
    """The root package registers front ends and models by importing them; nothing below imports it back."""
    graph = _graph()
    assert not graph.find_modules_that_directly_import("fewshot_audio")


def test_modules_stay_small():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


MAX_FUNCTION_LINES = 66  # "about 60": the longest today is meta_train's loop (65)


def test_functions_stay_small():
    import ast

    long = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them into named steps): {long}"
