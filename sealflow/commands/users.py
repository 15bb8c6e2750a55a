"""``sealflow users``: the people who sign in, their roles, and whether they may."""

from __future__ import annotations

import sys
import time
from typing import Final

import click
from rich.console import Console
from rich.table import Table

from identity import (
    REVOCATION_LEEWAY,
    ROLES,
    AnyIdentityStore,
    IdentitySettings,
    Role,
    User,
    check_role,
)
from sealflow.commands._local import say_when_empty
from sealflow.commands.identity_db import identity_location, run_with_store
from sealflow.commands.revoke import broadcast, build

__all__ = ["users"]

MIN_PASSWORD_CHARS: Final = 8
MAX_PASSWORD_CHARS: Final = 1024


def _role(value: str) -> Role:
    return check_role(value)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password.removesuffix("\r")
    else:
        password = click.prompt(
            "Password", hide_input=True, confirmation_prompt="Repeat the password"
        )
    if len(password) < MIN_PASSWORD_CHARS:
        raise click.ClickException(f"password must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise click.ClickException(f"password must be at most {MAX_PASSWORD_CHARS} characters")
    return password


@click.group()
def users() -> None:
    """Manage the identity provider's users (SQLite under SEALFLOW_DATA_DIR/identity)."""


@users.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice(ROLES), default="user", show_default=True, help="What they may do."
)
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of stdin.")
def add(username: str, role: str, password_stdin: bool) -> None:
    """Add USERNAME; the password is prompted twice (hidden) unless --password-stdin."""
    password = _read_password(password_stdin)

    async def action(store: AnyIdentityStore) -> User:
        return await store.add_user(username, password, _role(role))

    user = run_with_store(action)
    click.echo(f"added user {user.username} ({user.role})")


@users.command("list")
def list_() -> None:
    """List users with their role and state."""

    async def action(store: AnyIdentityStore) -> list[User]:
        return await store.list_users()

    found = run_with_store(action)
    say_when_empty(len(found), "users", *identity_location(IdentitySettings()))
    table = Table(title=f"{len(found)} user(s)")
    table.add_column("username")
    table.add_column("role")
    table.add_column("state")
    for user in found:
        table.add_row(user.username, user.role, "disabled" if user.disabled else "enabled")
    Console(soft_wrap=True).print(table)


def _set_disabled(username: str, disabled: bool) -> None:
    async def action(store: AnyIdentityStore) -> None:
        await store.set_user_disabled(username, disabled)

    run_with_store(action)


@users.command("disable")
@click.argument("username")
@click.option(
    "--no-broadcast",
    is_flag=True,
    help="Only write the database (no service is running yet, or no broker here).",
)
def disable(username: str, no_broadcast: bool) -> None:
    """Disable USERNAME: no more sign-ins, their refresh tokens are revoked, and every running
    service refuses their access tokens and requests (a revocation of the subject on
    sealflow.control, lasting as long as an access token can live; run it on the identity's
    host, whose key signs it)."""
    _set_disabled(username, True)
    click.echo(f"disabled user {username}; their refresh tokens are revoked")
    if no_broadcast:
        click.echo("not broadcast: running services accept their access tokens until expiry")
        return
    lasting = IdentitySettings().access_token_lifetime + REVOCATION_LEEWAY
    revocation = build("sub", username, "user disabled", until=time.time() + lasting)
    sent_to = broadcast(revocation)
    click.echo(
        f"services ({', '.join(sent_to)}) refuse {username}'s tokens and requests for the next"
        f" {int(lasting)} s, until every access token issued before has expired"
    )


@users.command("enable")
@click.argument("username")
def enable(username: str) -> None:
    """Let a disabled USERNAME sign in again.

    The services go on refusing their tokens until the revocation sent by `disable` lapses
    (the access-token lifetime plus 60 s after it).
    """
    _set_disabled(username, False)
    click.echo(f"enabled user {username}")


@users.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
def set_role(username: str, role: str) -> None:
    """Give USERNAME another ROLE (effective for tokens issued from now on)."""

    async def action(store: AnyIdentityStore) -> User:
        return await store.set_user_role(username, _role(role))

    user = run_with_store(action)
    click.echo(f"user {user.username} now has role {user.role}")
