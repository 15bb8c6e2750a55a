"""``sealflow clients``: the programs that sign users in or act as themselves."""

from __future__ import annotations

import secrets
from typing import Final

import click
from rich.console import Console
from rich.table import Table

from identity import (
    DEVICE_CODE_GRANT,
    GRANT_TYPES,
    ROLES,
    AnyIdentityStore,
    Client,
    IdentitySettings,
    check_role,
)
from sealflow.commands._local import say_when_empty
from sealflow.commands.identity_db import identity_location, run_with_store

__all__ = ["clients"]

_GRANT_NAMES: Final[dict[str, str]] = {
    **{grant: grant for grant in GRANT_TYPES},
    "device_code": DEVICE_CODE_GRANT,
}
_SHORT: Final[dict[str, str]] = {DEVICE_CODE_GRANT: "device_code"}


@click.group()
def clients() -> None:
    """Manage the identity provider's OAuth clients."""


@clients.command("add")
@click.argument("client_id")
@click.option("--public", is_flag=True, help="No secret (browser apps, CLIs): PKCE required.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Exact redirect URI (repeat).")
@click.option(
    "--grant",
    "grants",
    multiple=True,
    type=click.Choice(sorted(_GRANT_NAMES)),
    help="Grant type (repeat); default authorization_code and refresh_token.",
)
@click.option(
    "--role", type=click.Choice(ROLES), default=None, help="Role of a client_credentials client."
)
def add(
    client_id: str,
    public: bool,
    redirect_uris: tuple[str, ...],
    grants: tuple[str, ...],
    role: str | None,
) -> None:
    """Register CLIENT_ID; a confidential client's secret is printed once, stored hashed."""
    grant_types = [_GRANT_NAMES[name] for name in grants] or ["authorization_code", "refresh_token"]
    secret = None if public else secrets.token_urlsafe(32)

    async def action(store: AnyIdentityStore) -> Client:
        return await store.add_client(
            client_id,
            secret=secret,
            redirect_uris=list(redirect_uris),
            grant_types=grant_types,
            role=None if role is None else check_role(role),
        )

    client = run_with_store(action)
    kind = "public" if client.public else "confidential"
    click.echo(f"added {kind} client {client.client_id}")
    if secret is not None:
        click.echo(f"client secret (shown once, stored hashed): {secret}")


@clients.command("list")
def list_() -> None:
    """List clients with their kind, grants, redirect URIs and role."""

    async def action(store: AnyIdentityStore) -> list[Client]:
        return await store.list_clients()

    found = run_with_store(action)
    say_when_empty(len(found), "clients", *identity_location(IdentitySettings()))
    table = Table(title=f"{len(found)} client(s)")
    for column in ("client_id", "kind", "grants", "redirect URIs", "role"):
        table.add_column(column)
    for client in found:
        table.add_row(
            client.client_id,
            "public" if client.public else "confidential",
            " ".join(_SHORT.get(grant, grant) for grant in client.grant_types),
            "\n".join(client.redirect_uris) or "-",
            client.role or "-",
        )
    Console(soft_wrap=True).print(table)
