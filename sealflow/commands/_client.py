"""What the client commands share: settings, one HTTP session, and one-line error reporting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO, Any, TypeVar

import click
import structlog
from pydantic import ValidationError

from sealflow.client import (
    Authenticator,
    ClientError,
    ClientSettings,
    GatewayClient,
    OidcClient,
    new_session,
)

__all__ = ["ClientContext", "Failure", "load_settings", "run_client"]

T = TypeVar("T")


class Failure(click.ClickException):
    """One red line on stderr, exit code 1, no traceback."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.secho(f"error: {self.format_message()}", err=True, fg="red", file=file)


@dataclass(frozen=True, slots=True)
class ClientContext:
    """Everything a command needs for one run."""

    settings: ClientSettings
    auth: Authenticator
    gateway: GatewayClient


def _configure_logging() -> None:
    """Warnings and errors to stderr through the standard library, unless already set up.

    stdout stays clean for what commands print (``sealflow token`` prints only the token).
    """
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.dev.ConsoleRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )


def load_settings() -> ClientSettings:
    """The settings from the environment, or one line naming the bad variable."""
    try:
        return ClientSettings()
    except ValidationError as error:
        problems = "; ".join(
            f"SEALFLOW_{'_'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
            for item in error.errors()
        )
        raise Failure(f"bad settings: {problems}") from error


@asynccontextmanager
async def _context(settings: ClientSettings) -> AsyncIterator[ClientContext]:
    async with new_session(settings) as http:
        auth = Authenticator(settings, http, oidc=OidcClient(settings, http))
        yield ClientContext(settings, auth, GatewayClient(settings, http, auth))


def run_client(main: Callable[[ClientContext], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` with a fresh context; a :class:`ClientError` becomes a one-line failure."""
    _configure_logging()
    settings = load_settings()

    async def runner() -> T:
        async with _context(settings) as context:
            return await main(context)

    try:
        return asyncio.run(runner())
    except ClientError as error:
        raise Failure(str(error)) from error
