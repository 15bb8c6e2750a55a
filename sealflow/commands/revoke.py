"""``sealflow revoke``: tell every running service to stop accepting a subject, an id or a key.

The revocation is a ``control.revocation`` on ``sealflow.control``, signed with the identity's
key: run it on the identity's host, as ``sealflow users`` (DESIGN §6: a host holds only the
private keys of the services it runs, so the operator acts through the identity, which the
policy already lets send revocations; no other key, and no new one, is needed).
"""

from __future__ import annotations

import asyncio
import time

import click
from pydantic import ValidationError

from broker import BrokerError, BrokerSettings
from identity import broadcast_revocations, new_revocation, reserved_name
from keys import KeyMaterialError
from schemas import Revocation, RevocationKind

__all__ = ["broadcast", "revoke"]

_KINDS: tuple[RevocationKind, ...] = ("sub", "jti", "kid")


def broadcast(revocation: Revocation) -> list[str]:
    """Publish ``revocation`` signed as the identity; the services it was sent to.

    Failures become one-line exits that say what to check.
    """
    try:
        return asyncio.run(broadcast_revocations(BrokerSettings(), [revocation]))
    except KeyMaterialError as error:
        raise click.ClickException(
            f"{error}; revocations are signed with the identity's key: run this on the"
            " identity's host (SEALFLOW_KEYS_DIR)"
        ) from error
    except BrokerError as error:
        raise click.ClickException(
            f"the revocation was not delivered: {error}. It is in this machine's revocation"
            " journal; run the command again once RabbitMQ and the services are up"
        ) from error


def build(kind: RevocationKind, value: str, reason: str, *, until: float | None) -> Revocation:
    """The revocation, checked as receivers will check it; a one-line exit if it is invalid."""
    try:
        return new_revocation(kind, value, reason, until=until)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or kind
        raise click.ClickException(f"invalid {where}: {problem['msg']}") from error


@click.command()
@click.argument("kind", type=click.Choice(_KINDS))
@click.argument("value")
@click.option(
    "--reason",
    default="revoked by an operator",
    show_default=True,
    help="Why; receivers log and audit it (at most 200 characters).",
)
@click.option(
    "--for",
    "seconds",
    type=click.IntRange(min=1),
    default=None,
    help="Lapse after this many seconds (default: never).",
)
def revoke(kind: RevocationKind, value: str, reason: str, seconds: int | None) -> None:
    """Revoke a subject (sub), an envelope or access token id (jti) or a key id (kid).

    Every running service refuses it within a second: a user's or client's tokens and the
    envelopes sent on their behalf, one token or envelope, or everything signed with a key.
    Signed with the identity's key, so run it on the identity's host. A service name cannot
    be revoked as a subject (it would refuse the messages that service sends as itself):
    revoke its key instead.
    """
    if kind == "sub" and reserved_name(value):
        raise click.ClickException(
            f"{value!r} is a service: revoking it as a subject would refuse every message it"
            " sends as itself, for good; revoke its key (kid) instead"
        )
    until = None if seconds is None else time.time() + seconds
    sent_to = broadcast(build(kind, value, reason, until=until))
    lasting = "never lapses" if seconds is None else f"lapses in {seconds} s"
    click.echo(f"revoked {kind} {value} ({lasting}); sent to {', '.join(sent_to)}")
