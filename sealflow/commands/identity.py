"""``sealflow identity``: run the OpenID Connect provider in the foreground."""

from __future__ import annotations

import click

from schemas import SealflowError

__all__ = ["identity"]


@click.command()
def identity() -> None:
    """Run the identity provider (OIDC: login page, tokens, device flow for `sealflow login`).

    Listens on the host and port of SEALFLOW_ISSUER (default http://localhost:8081), or on
    SEALFLOW_IDENTITY_HOST / SEALFLOW_IDENTITY_PORT. Sign-ins work while RabbitMQ is down;
    audit events are then logged instead of published. SIGTERM or Ctrl-C stops it cleanly.
    """
    from broker import run_daemon
    from identity.daemon import serve

    try:
        run_daemon("identity", serve)
    except (SealflowError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
