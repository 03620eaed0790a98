"""``targeting users``: people who sign in to the web application (passwords read from standard input).

Every change is recorded in the audit trail as ``cli:<OS user>``. Passwords
are never taken as arguments (they would land in the shell history): the
command reads one line from standard input, or asks twice on a terminal.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from targeting.cli import app
from targeting.cli.service import _fail, _store, cli_actor, console, err_console

users_app = typer.Typer(help="People who sign in to the web pages (API keys stay for machines).", no_args_is_help=True)
app.add_typer(users_app, name="users")


def read_password(prompt: str = "Password") -> str:
    """One password from standard input (asked twice, hidden, on a terminal)."""
    if sys.stdin.isatty():
        first = typer.prompt(prompt, hide_input=True)
        if typer.prompt("Repeat it", hide_input=True) != first:
            raise _fail("the two passwords differ", 2)
        return first
    return sys.stdin.readline().rstrip("\r\n")


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="3-12 characters a-z 0-9 . _ - starting with a letter")],
    role: Annotated[str, typer.Option(help="officer, data_scientist, auditor or admin")],
    port: Annotated[list[str] | None, typer.Option("--port", help="UN/LOCODE of an officer's port (repeat for several)")] = None,
    language: Annotated[str, typer.Option(help="en, es, fr or pt")] = "en",
) -> None:
    """Create a user; the password is read from standard input."""
    from serve.security import Role
    from serve.web.accounts import AccountError, create_user

    try:
        role_value = Role(role)
    except ValueError:
        raise _fail(f"unknown role {role!r}; use one of {', '.join(r.value for r in Role)}", 2) from None
    password = read_password()
    database = _store()
    try:
        with database.write() as session:
            user = create_user(session, username=username, password=password, role=role_value, ports=tuple(port or ()),
                               language=language, created_by=cli_actor())
    except AccountError as exc:
        raise _fail(str(exc), 2) from None
    finally:
        database.dispose()
    console.print(f"created user {user.username} ({user.role}{', ' + ', '.join(user.ports) if user.ports else ''})")


@users_app.command("list")
def users_list() -> None:
    """Every user with role, ports, language and state."""
    from serve.web.accounts import list_users

    database = _store()
    try:
        with database.read() as session:
            users = list_users(session)
    finally:
        database.dispose()
    for u in users:
        state = "disabled" if u.disabled else (f"locked until {u.locked_until:%Y-%m-%d %H:%M}" if u.locked_until else "active")
        console.print(f"{u.username}\t{u.role}\t{','.join(u.ports) or '-'}\t{u.language}\t{state}")


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="The user to disable")]) -> None:
    """Disable a user: no more sign-in, open sessions ended."""
    from serve.web.accounts import AccountError, disable_user

    database = _store()
    try:
        with database.write() as session:
            disable_user(session, username, actor=cli_actor())
    except AccountError as exc:
        raise _fail(str(exc), 2) from None
    finally:
        database.dispose()
    console.print(f"disabled {username}")


@users_app.command("reset-password")
def users_reset_password(username: Annotated[str, typer.Argument(help="The user whose password is replaced")]) -> None:
    """Set a new password (read from standard input), clear any lockout, end open sessions."""
    from serve.web.accounts import AccountError, reset_password

    password = read_password("New password")
    database = _store()
    try:
        with database.write() as session:
            reset_password(session, username, password, actor=cli_actor())
    except AccountError as exc:
        raise _fail(str(exc), 2) from None
    finally:
        database.dispose()
    err_console.print(f"password of {username} reset; their sessions are ended")
