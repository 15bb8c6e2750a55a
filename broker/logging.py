"""structlog set-up shared by the daemons: JSON lines bound with ``service`` (and per message
``job``, ``jti``, ``trace`` through contextvars).

The stdlib's records — aiohttp's and aio-pika's warnings and tracebacks, asyncio's "exception
was never retrieved", ``warnings.warn`` — go through structlog's ``ProcessorFormatter`` and come
out as the same JSON lines, a traceback as one ``exception`` string, never as plain text.
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure_logging"]

_HANDLER_NAME = "sealflow-json"


def configure_logging(service: str, *, json: bool = True, level: str = "INFO") -> None:
    """Configure structlog and the stdlib root logger for a daemon process; idempotent.

    Foreign (stdlib) loggers log at ``WARNING`` and above, or at ``level`` when it is higher:
    their INFO lines (one per HTTP request, per AMQP channel) would drown the daemon's own.
    """
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    _route_stdlib(shared, renderer, max(numeric_level, logging.WARNING))


def _route_stdlib(
    shared: list[structlog.typing.Processor], renderer: structlog.typing.Processor, level: int
) -> None:
    """One root handler rendering stdlib records like structlog's own lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # ExtraAdder: a record's ``extra`` fields (the gateway's ``http.bad_request`` sets
            # ``error``) become JSON fields.
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
