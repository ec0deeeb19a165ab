"""Code shape (GUIDE.md): no function over 60 lines and no module over 400 lines in the packages and recipes, so a
reader can follow each function as named steps. A function's length counts its signature, docstring and body."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("prm", "search", "eval", "arith_demo", "recipes")
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for folder in CHECKED for p in (REPO_ROOT / folder).rglob("*.py"))


def function_lengths(source: str) -> dict[str, int]:
    """``{qualified name: lines}`` of every function and method in ``source`` (nested ones included)."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    lengths[f"{name}:{child.lineno}"] = child.end_lineno - start + 1
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return lengths


def test_the_checked_folders_exist():
    assert len(_modules()) > 20, [str(p) for p in _modules()]


def test_no_function_is_longer_than_60_lines():
    too_long = {
        f"{path.relative_to(REPO_ROOT)}:{name}": lines
        for path in _modules()
        for name, lines in function_lengths(path.read_text(encoding="utf-8")).items()
        if lines > MAX_FUNCTION_LINES
    }
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


def test_no_module_is_longer_than_400_lines():
    too_long = {
        str(path.relative_to(REPO_ROOT)): n
        for path in _modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    return 1\n", {"f:1": 2}),
        ("class A:\n    @property\n    def g(self):\n\n        return 2\n", {"A.g:3": 4}),
        ("def outer():\n    def inner():\n        pass\n    return inner\n", {"outer:1": 4, "outer.inner:2": 2}),
    ],
)
def test_function_lengths_count_decorators_and_nested_functions(source, expected):
    assert function_lengths(source) == expected
