"""Opening the identity store for the ``users`` and ``clients`` commands."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from identity import IdentityError, IdentitySettings, IdentityStore
from sealflow.commands._local import say_where

__all__ = ["run_with_store"]

T = TypeVar("T")


def run_with_store(action: Callable[[IdentityStore], Awaitable[T]]) -> T:
    """Run ``action`` on the store under SEALFLOW_DATA_DIR; its errors become one-line exits."""

    path = IdentitySettings().database_path
    say_where(identity_database=path)

    async def main() -> T:
        store = await IdentityStore.open(path)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except IdentityError as error:
        raise click.ClickException(error.description) from error
    except ValueError as error:
        raise click.ClickException(str(error)) from error
