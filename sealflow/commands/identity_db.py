"""Opening the identity store for the ``users`` and ``clients`` commands."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import click

from identity import AnyIdentityStore, IdentityError, IdentitySettings, open_identity_store
from sealflow.commands._local import say_where
from store import StoreError, backend_of

__all__ = ["identity_location", "run_with_store"]

T = TypeVar("T")


def identity_location(settings: IdentitySettings) -> tuple[str, str]:
    """Where the identity's state is, for people, and the setting that chose it."""
    if backend_of(settings.database_url) == "postgresql":
        where = urlsplit(settings.database_url or "")
        return f"PostgreSQL {where.hostname}{where.path}", "SEALFLOW_DATABASE_URL"
    return str(settings.database_path.resolve()), "SEALFLOW_DATA_DIR"


def run_with_store(action: Callable[[AnyIdentityStore], Awaitable[T]]) -> T:
    """Run ``action`` on the identity store the settings name (SEALFLOW_DATABASE_URL, else
    the SQLite file under SEALFLOW_DATA_DIR); its errors become one-line exits."""

    settings = IdentitySettings()
    say_where(identity_database=identity_location(settings)[0])

    async def main() -> T:
        store = await open_identity_store(settings)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except IdentityError as error:
        raise click.ClickException(error.description) from error
    except StoreError as error:
        raise click.ClickException(f"{error.reason}: {error.detail}") from error
    except ValueError as error:
        raise click.ClickException(str(error)) from error
