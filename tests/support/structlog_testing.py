"""Keeping structlog's configuration across tests that run ``sealflow`` commands in-process
(a command configures structlog for a CLI process; later tests expect what they had)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import structlog

__all__ = ["logs_to_real_stderr", "structlog_restored"]


@contextlib.contextmanager
def structlog_restored() -> Iterator[None]:
    """On leaving, structlog is configured again as it was on entering (or reset)."""
    configured, saved = structlog.is_configured(), structlog.get_config()
    try:
        yield
    finally:
        structlog.reset_defaults()
        if configured:
            structlog.configure(**saved)


@contextlib.contextmanager
def logs_to_real_stderr() -> Iterator[None]:
    """Servers running in this process log to the real stderr while CliRunner swaps
    ``sys.stdout`` for each command, so their lines never mix into a command's output."""
    with structlog_restored():
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.__stderr__))
        yield
