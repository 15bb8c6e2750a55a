"""``sealflow worker`` and ``sealflow parser``: run one daemon in the foreground."""

from __future__ import annotations

import click

from broker import BrokerUnavailable
from keys import KeyMaterialError

__all__ = ["parser", "worker"]


def _run(entry: str) -> None:
    import importlib

    module_name, attribute = entry.split(":")
    try:
        getattr(importlib.import_module(module_name), attribute)()
    except (BrokerUnavailable, KeyMaterialError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.command()
def worker() -> None:
    """Run the job worker: job.submitted → parse.requested; parse results → job events.

    Settings come from SEALFLOW_* (see the README); SIGTERM or Ctrl-C stops it cleanly.
    """
    _run("workers.daemon:run_daemon_forever")


@click.command()
def parser() -> None:
    """Run the document parser: parse.requested → parse.completed | parse.failed.

    Documents are parsed in a separate process bounded in size, pages, memory and time
    (SEALFLOW_PARSER_*). SIGTERM or Ctrl-C stops it cleanly.
    """
    _run("parser.daemon:run_daemon_forever")
