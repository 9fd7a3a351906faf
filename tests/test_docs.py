"""The written API: docs/api.md's names import, public names carry docstrings, and the examples in docstrings run."""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import fewshot_audio

ROOT = Path(__file__).resolve().parents[1]
PKG = "fewshot_audio"
MODULES = [info.name for info in pkgutil.walk_packages(fewshot_audio.__path__, prefix=PKG + ".")
           if not info.name.endswith("__main__")]


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_every_name_docs_api_imports_exists():
    text = (ROOT / "docs" / "api.md").read_text()
    imports = [node for block in _code_blocks(text) for node in ast.walk(ast.parse(block))
               if isinstance(node, ast.ImportFrom)]
    assert len(imports) >= 8
    for node in imports:
        module = importlib.import_module(node.module)
        for alias in node.names:
            assert hasattr(module, alias.name), f"docs/api.md: {node.module} has no {alias.name}"
    assert all(node.module in (PKG, f"{PKG}.detection") for node in imports), "docs/api.md imports from deep paths"


def test_the_packages_docs_api_lists_export_those_names():
    text = (ROOT / "docs" / "api.md").read_text()
    listed = re.findall(r"^- `(fewshot_audio\.\w+)`: ((?:`\w+`(?:, | and |,\n  |\n  )?)+)", text, flags=re.M)
    assert {m for m, _ in listed} >= {f"{PKG}.data", f"{PKG}.detection"}
    for module, names in listed:
        mod = importlib.import_module(module)
        for name in re.findall(r"`(\w+)`", names):
            assert name in mod.__all__ and hasattr(mod, name), f"{module} does not export {name}"


def test_the_top_level_exports_resolve():
    for name in fewshot_audio.__all__:
        assert getattr(fewshot_audio, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fewshot_audio.nope  # noqa: B018


def _own_doc(obj) -> str | None:
    doc = obj.__doc__
    if isinstance(obj, type) and doc and doc.startswith(obj.__name__ + "("):  # a dataclass's generated signature
        return None
    return doc


def _documented(cls, name: str, func) -> bool:
    """A method's own docstring, or the docstring of the interface method it implements (a base in the package)."""
    if _own_doc(func):
        return True
    return any(base.__module__.startswith(PKG) and name in vars(base) and _own_doc(vars(base)[name])
               for base in cls.__mro__[1:])


def public_definitions() -> list[tuple[str, bool]]:
    """``(qualified name, documented)`` of every public function, class and method defined in the package."""
    out = []
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                out.append((f"{name}.{attr}", bool(_own_doc(obj))))
            if inspect.isclass(obj):
                for mname, member in vars(obj).items():
                    func = member.__func__ if isinstance(member, (staticmethod, classmethod)) else \
                        member.fget if isinstance(member, property) else member
                    if not mname.startswith("_") and inspect.isfunction(func):
                        out.append((f"{name}.{attr}.{mname}", _documented(obj, mname, func)))
    return out


def test_at_least_nine_in_ten_public_names_have_a_docstring():
    rows = public_definitions()
    missing = [n for n, ok in rows if not ok]
    assert len(rows) > 500
    assert len(missing) <= 0.1 * len(rows), f"{len(missing)} of {len(rows)} undocumented, e.g. {missing[:10]}"


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for name in MODULES:
        module = importlib.import_module(name)
        found += [t for t in finder.find(module, module=module) if t.examples]
    return found


DOCTESTS = _doctests()


def test_there_are_doctests_to_run():
    assert len(DOCTESTS) >= 10


@pytest.mark.parametrize("test", DOCTESTS, ids=lambda t: t.name)
def test_docstring_examples_run(test, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)
