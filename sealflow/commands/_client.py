"""What the client commands share: settings, one HTTP session, and one-line error reporting."""

from __future__ import annotations

import asyncio
import logging
import sys
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


def _configure_logging(level: str) -> None:
    """Log lines to stderr at ``level`` (``SEALFLOW_CLIENT_LOG_LEVEL``, default warning).

    stdout stays for what a command prints (``sealflow token`` prints only the token). A
    command owns its process, so this replaces any earlier structlog configuration.
    """
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.WARNING)
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*args: Any) -> structlog.PrintLogger:
    """A logger on whatever ``sys.stderr`` is when the line is written."""
    return structlog.PrintLogger(sys.stderr)


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
    settings = load_settings()
    _configure_logging(settings.client_log_level)

    async def runner() -> T:
        async with _context(settings) as context:
            return await main(context)

    try:
        return asyncio.run(runner())
    except ClientError as error:
        raise Failure(str(error)) from error
