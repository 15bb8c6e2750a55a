"""``sealflow db upgrade``: apply the store's pending schema migrations (DESIGN §8, §9).

The backend is the one the daemons use: ``SEALFLOW_DATABASE_URL`` if set (PostgreSQL),
else the embedded ``SEALFLOW_DATA_DIR/jobs.db``. Daemons also migrate when they start;
this command lets an operator do it first, once, before starting new code on many hosts.
"""

from __future__ import annotations

import asyncio

import click
from pydantic import ValidationError

from broker import BrokerSettings
from identity import upgrade_identity_schema
from store import StoreError, Upgrade, upgrade_schema
from store.postgres.audit_anchors import upgrade_audit_anchor_schema

__all__ = ["db"]


@click.group()
def db() -> None:
    """The shared database: schema migrations (job store, and the identity and the audit
    anchor on PostgreSQL)."""


@db.command()
def upgrade() -> None:
    """Bring the database schemas to this version of Sealflow."""
    try:
        settings = BrokerSettings()
    except ValidationError as exc:
        raise click.ClickException(f"bad settings: {exc.errors()[0]['msg']}") from exc
    try:
        done = asyncio.run(upgrade_schema(settings.database_url, settings.data_dir))
        identity = asyncio.run(upgrade_identity_schema(settings.database_url))
        anchor = asyncio.run(upgrade_audit_anchor_schema(settings.database_url))
    except StoreError as exc:
        raise click.ClickException(f"{exc.reason}: {exc.detail}") from exc
    for upgrade in (done, identity, anchor):
        if upgrade is not None:
            _report(upgrade)


def _report(done: Upgrade) -> None:
    """One line saying what an upgrade did."""
    if done.found == done.now:
        click.echo(f"{done.backend}: schema already at version {done.now}")
    else:
        click.echo(f"{done.backend}: schema upgraded from version {done.found} to {done.now}")
