"""``sealflow worker`` and ``sealflow parser``: run one daemon in the foreground."""

from __future__ import annotations

import click

from broker import run_daemon
from schemas import SealflowError

__all__ = ["parser", "worker"]


def _run(service: str, module_name: str) -> None:
    """Run ``module_name``'s ``serve()`` the one way every daemon runs (``broker.run_daemon``)."""
    import importlib

    try:
        run_daemon(service, importlib.import_module(module_name).serve)
    except SealflowError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command()
def worker() -> None:
    """Run the job worker: job.submitted → parse.requested; parse results → job events.

    Settings come from SEALFLOW_* (see the README); SIGTERM or Ctrl-C stops it cleanly.
    """
    _run("worker", "workers.daemon")


@click.command()
def parser() -> None:
    """Run the document parser: parse.requested → parse.completed | parse.failed.

    Documents are parsed in a separate process bounded in size, pages, memory and time
    (SEALFLOW_PARSER_*). SIGTERM or Ctrl-C stops it cleanly.
    """
    _run("parser", "parser.daemon")
