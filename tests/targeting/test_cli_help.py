"""Every command, argument and option of ``targeting`` has help text (walks the real typer application)."""

from __future__ import annotations

from typing import Any

import typer

from targeting.cli import _register, app


def _walk(command: Any, path: tuple[str, ...]):  # noqa: ANN202 - generator of (path, command); typer vendors click
    yield path, command
    if hasattr(command, "commands"):  # a group
        for name, sub in command.commands.items():
            yield from _walk(sub, (*path, name))


def undocumented() -> list[str]:
    """``targeting <path>: <param>`` for each command or parameter without help text."""
    _register()
    root = typer.main.get_command(app)
    missing = []
    for path, command in _walk(root, ("targeting",)):
        if path != ("targeting",) and not (command.help or command.short_help):
            missing.append(f"{' '.join(path)}: (command)")
        for param in command.params:
            if param.name == "help":
                continue
            if not (getattr(param, "help", None) or "").strip():
                missing.append(f"{' '.join(path)}: {param.opts[0] if param.opts else param.name}")
    return missing


def test_every_command_and_option_has_help_text() -> None:
    assert undocumented() == []


def test_the_walk_sees_nested_commands_and_their_options() -> None:
    _register()
    root = typer.main.get_command(app)
    seen = {" ".join(path): command for path, command in _walk(root, ("targeting",))}
    assert {"targeting train", "targeting keys create", "targeting audit verify", "targeting init", "targeting benchmark kcs"} <= set(seen)
    assert "--role" in [opt for p in seen["targeting keys create"].params for opt in p.opts]
