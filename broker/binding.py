"""The check that a message body agrees with the envelope that carries it (job id, owner = sub).

An envelope binds a body's bytes, not its meaning: a genuine sender could still seal a body
about another job or another user. Every handler and the DLQ replay ask this one question.
"""

from __future__ import annotations

from broker.errors import PermanentFailure
from schemas import EnvelopeClaims

__all__ = ["check_body_binding"]


def check_body_binding(claims: EnvelopeClaims, *, job_id: str, owner: str | None) -> None:
    """Raise :class:`PermanentFailure` unless ``job_id`` is the envelope's ``job`` (when it names
    one) and ``owner`` (the body's, or the stored job's; ``None``: not known) is its ``sub``."""
    if claims.job is not None and claims.job != job_id:
        raise PermanentFailure(
            "envelope job claim differs from the body's job_id", reason="job_mismatch"
        )
    if owner is not None and owner != claims.sub:
        raise PermanentFailure(
            "the job's owner differs from the envelope's subject", reason="owner_mismatch"
        )
