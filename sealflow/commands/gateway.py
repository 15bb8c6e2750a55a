"""``sealflow gateway``: run the HTTP gateway in the foreground."""

from __future__ import annotations

import click

from schemas import SealflowError

__all__ = ["gateway"]


@click.command()
def gateway() -> None:
    """Run the HTTP gateway: the REST API under /api, uploads, job status and live events.

    Listens on SEALFLOW_GATEWAY_HOST:SEALFLOW_GATEWAY_PORT (default 127.0.0.1:8080) and trusts
    access tokens from SEALFLOW_ISSUER. SIGTERM or Ctrl-C stops it cleanly.
    """
    from broker import run_daemon
    from gateway.daemon import serve

    try:
        run_daemon("gateway", serve)
    except SealflowError as exc:
        raise click.ClickException(str(exc)) from exc
