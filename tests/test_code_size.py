"""Modules stay under ~600 lines and functions under ~80 (developers' guide), with every exception named and justified.

A function's length is counted from its ``def`` to its last line without its
docstring (docstrings state preconditions and time semantics; they are not
the function's complexity). Generated migration files are not modules of the
engine and are not checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "models", "targeting", "serve")
MODULE_LINES = 600
FUNCTION_LINES = 80

MODULE_ALLOWED: dict[str, str] = {
    "features/data/validation.py": "data-platform contract checks (other owner); one check per contract rule",
    "targeting/sim/world.py": "the simulated world's generator (other owner, being extended with exports)",
    "features/entity.py": "the entity families' batch, streamed (cluster) and snapshot paths share private plan builders; about 600",
}
FUNCTION_ALLOWED: dict[str, str] = {
    "features/entity.py:_batch_plain": "one lazy query plan of the batch entity features (other owner)",
    "targeting/sim/voyages.py:build_events_chunk": "one vectorised event timeline per voyage (simulator, other owner)",
    "targeting/sim/world.py:_build": "the world's day generator (simulator, other owner)",
    "targeting/policy.py:select": "the selection policy as one readable sequence of slot counts (watchlist, random, rules, model)",
}


def _python_files():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/versions/" in relative:
                continue
            yield relative, path.read_text(encoding="utf-8")


def _function_lengths(source: str):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
                length -= body[0].end_lineno - body[0].lineno + 1
            yield node.name, length


def test_no_module_is_over_600_lines_unless_allowed_with_a_reason():
    long = {name: len(text.splitlines()) for name, text in _python_files() if len(text.splitlines()) > MODULE_LINES}
    assert set(long) <= set(MODULE_ALLOWED), f"modules over {MODULE_LINES} lines: {dict(sorted(long.items()))}"


def test_no_function_is_over_80_lines_unless_allowed_with_a_reason():
    long = {
        f"{name}:{function}": length
        for name, text in _python_files()
        for function, length in _function_lengths(text)
        if length > FUNCTION_LINES
    }
    assert set(long) <= set(FUNCTION_ALLOWED), f"functions over {FUNCTION_LINES} lines: {dict(sorted(long.items()))}"


def test_the_allow_lists_name_only_what_still_needs_them():
    modules = {name for name, text in _python_files() if len(text.splitlines()) > MODULE_LINES}
    functions = {f"{n}:{f}" for n, text in _python_files() for f, length in _function_lengths(text) if length > FUNCTION_LINES}
    assert set(MODULE_ALLOWED) <= modules | {n for n in MODULE_ALLOWED if not (ROOT / n).exists()} and set(FUNCTION_ALLOWED) <= functions, (
        f"stale allow-list entries: {sorted((set(MODULE_ALLOWED) - modules) | (set(FUNCTION_ALLOWED) - functions))}"
    )


def test_only_the_command_line_imports_serve():
    offenders = []
    for name, text in _python_files():
        if name.startswith(("serve/", "targeting/cli/")):
            continue
        for node in ast.walk(ast.parse(text)):
            modules = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            offenders += [f"{name}: {m}" for m in modules if m == "serve" or m.startswith("serve.")]
    assert not offenders, f"only targeting/cli may import serve: {offenders}"
