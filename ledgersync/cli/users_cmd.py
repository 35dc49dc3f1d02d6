"""`ledgersync users add|list|password|unlock|remove`: the review console's local logins.

The first user added is an admin unless told otherwise (that is how a new installation gets its first
admin). Passwords are asked for twice on the terminal, or read from standard input with
`--password-stdin` (scripts, containers); they are stored as Argon2 hashes, never in clear. `--sso`
makes a login (an e-mail address) that signs in only through the identity provider (`oidc:`).
"""

from __future__ import annotations

import json
import secrets
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from engine.accounts import add_user, set_password, unlock
from engine.state import Role
from ledgersync.cli.context import EXIT_NOT_FOUND, clean_errors, fail, load, out

users = typer.Typer(help="The review console's logins.", no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (one line).")
]


def register(app: typer.Typer) -> None:
    app.add_typer(users, name="users")


def _store(ctx: typer.Context) -> Any:
    from ledgersync.bootstrap import open_configured_store

    config = load(ctx)
    with clean_errors():
        return open_configured_store(config)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt(
        "Password (10 characters or more)", hide_input=True, confirmation_prompt=True
    )
    return password


def _now() -> Any:
    from engine.clock import SystemClock

    return SystemClock().now()


@users.command("add")
def add(
    ctx: typer.Context,
    login: Annotated[str, typer.Argument(help="The login (letters, digits, . _ @ + -).")],
    role: Annotated[
        Role | None,
        typer.Option(help="reviewer: resolves conflicts, retries parked work; admin: also reconnects."),
    ] = None,
    password_stdin: PasswordStdin = False,
    sso: Annotated[
        bool,
        typer.Option(
            "--sso", help="Signs in only with the identity provider (oidc:); LOGIN is the e-mail address."
        ),
    ] = False,
) -> None:
    """Add a login to the review console (the first one is an admin)."""
    store = _store(ctx)
    try:
        with store.session() as s:
            first = not s.list_users()
        chosen = role or (Role.ADMIN if first else Role.REVIEWER)
        # A single sign-on login gets a password nobody knows: it can only come in through the provider.
        password = secrets.token_urlsafe(32) if sso else _password(password_stdin)
        login = login.strip().lower() if sso else login
        with clean_errors(), store.session() as s:
            user = add_user(s, login, chosen, password, _now())
    finally:
        store.dispose()
    note = " (the first login, so an admin)" if first and role is None else ""
    out.print(f"added {user.login} as {user.role.value}{note}", highlight=False)
    out.print("open the console with `ledgersync web` (or `ledgersync run`) and sign in at /login")


@users.command("list")
def list_users(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """The logins, their roles, and whether one is locked after failed sign-ins."""
    store = _store(ctx)
    now = _now()
    try:
        with store.session() as s:
            found = s.list_users()
    finally:
        store.dispose()
    rows = [
        {
            "login": u.login,
            "role": u.role.value,
            "locked": u.locked_until is not None and u.locked_until > now,
            "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
        }
        for u in found
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print("No logins yet: `ledgersync users add NAME` makes the first admin.")
        return
    table = Table(title=f"{len(rows)} login(s)")
    for column in ("login", "role", "locked", "last sign-in"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["login"], row["role"], "locked" if row["locked"] else "", row["last_login_at"] or ""
        )
    out.print(table)


@users.command("password")
def password(ctx: typer.Context, login: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (every session of the old one ends)."""
    store = _store(ctx)
    try:
        new = _password(password_stdin)
        with clean_errors(), store.session() as s:
            set_password(s, login, new)
    finally:
        store.dispose()
    out.print(f"new password set for {login}", highlight=False)


@users.command("unlock")
def unlock_user(ctx: typer.Context, login: str) -> None:
    """Let a login locked after failed sign-ins try again now."""
    store = _store(ctx)
    try:
        with clean_errors(), store.session() as s:
            unlock(s, login)
    finally:
        store.dispose()
    out.print(f"{login} may sign in again", highlight=False)


@users.command("remove")
def remove(ctx: typer.Context, login: str) -> None:
    """Remove a login (its sessions end at once)."""
    store = _store(ctx)
    try:
        with store.session() as s:
            removed = s.delete_user(login)
    finally:
        store.dispose()
    if not removed:
        fail(f"no user {login!r}", EXIT_NOT_FOUND)
    out.print(f"removed {login}", highlight=False)
