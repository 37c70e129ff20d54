"""The package's shape, as the architecture page promises it: small modules,
no private names imported across modules, one receiver of setting changes,
and async twins that delegate instead of restating the sync code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "scs_django"
MODULES = sorted(
    path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts
)
# "About 400 lines": a module past this is due for a split.
MOST_LINES = 420


def ids(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def tree_of(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("path", MODULES, ids=ids)
def test_no_module_is_over_about_400_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MOST_LINES, f"{ids(path)} has {lines} lines"


@pytest.mark.parametrize("path", MODULES, ids=ids)
def test_no_private_name_is_imported_from_another_module(path):
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree_of(path))
        if isinstance(node, ast.ImportFrom)
        and node.module != "__future__"
        and (node.level > 0 or (node.module or "").startswith("scs_django"))
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []


def test_one_receiver_resets_every_cache_of_a_setting():
    receivers = [
        ids(path)
        for path in MODULES
        for node in ast.walk(tree_of(path))
        if isinstance(node, ast.FunctionDef)
        for decorator in node.decorator_list
        if "setting_changed" in ast.unparse(decorator)
    ]
    assert receivers == ["conf.py"]


TWINNED = ["backends/base.py", "sessions.py"]


@pytest.mark.parametrize("name", TWINNED)
def test_async_twins_delegate_to_the_shared_steps(name):
    # Each async method or function is a line or two that runs the same steps
    # as its sync twin (or loads first and calls it), never a restatement.
    long = []
    for node in ast.walk(tree_of(PACKAGE / name)):
        if isinstance(node, ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr):
                body = body[1:]  # the docstring
            if len(body) > 2:
                long.append(node.name)
    assert long == []
