"""A query of the audit log, as the gateway's ``GET /api/audit`` takes it and as it is passed on
to the audit daemon's query API: one parser for both ends, so they cannot disagree.

The filters are those of ``sealflow audit tail``: ``type`` (repeatable), ``actor``, ``job``,
``since`` (ISO 8601, UTC when it has no offset, or relative such as ``10m``), ``limit``, and
``after`` (only records after that seq, for a live tail).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict

__all__ = [
    "AUDIT_JOB_PATTERN",
    "AUDIT_RECORDS_PATH",
    "AUDIT_TYPE_PATTERN",
    "DEFAULT_AUDIT_LIMIT",
    "MAX_AUDIT_LIMIT",
    "MAX_AUDIT_SEQ",
    "MAX_AUDIT_TYPES",
    "AuditQuery",
    "AuditQueryError",
]

AUDIT_RECORDS_PATH: Final = "/v1/records"
"""The audit daemon's query API route (``GET``), answered as ``AuditRecordList``."""
DEFAULT_AUDIT_LIMIT: Final = 100
MAX_AUDIT_LIMIT: Final = 1000
MAX_AUDIT_TYPES: Final = 20
MAX_AUDIT_SEQ: Final = 10**15
AUDIT_TYPE_PATTERN: Final = r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*){0,2}$"
AUDIT_JOB_PATTERN: Final = r"^[0-9a-f]{32}$"
_TYPE: Final = re.compile(AUDIT_TYPE_PATTERN)
_JOB: Final = re.compile(AUDIT_JOB_PATTERN)
_RELATIVE: Final = re.compile(r"^(\d{1,9})([smhdw])$")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_NAMES: Final = frozenset({"type", "actor", "job", "since", "limit", "after"})


class AuditQueryError(ValueError):
    """A query parameter is malformed; the message says which and how (a 400's detail)."""


def _since(raw: str, now: datetime) -> datetime:
    """ISO 8601 (UTC when it has no offset) or a relative time such as ``10m``, ``2h``, ``1d``."""
    text = raw.strip()
    match = _RELATIVE.match(text)
    try:
        if match is not None:
            return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        if len(text) > 64:
            raise ValueError("too long")
        since = datetime.fromisoformat(text)
    except (ValueError, OverflowError) as error:
        raise AuditQueryError(
            "since must be ISO 8601 (e.g. 2025-01-31T12:00:00Z) or relative like 10m, 2h, 1d"
        ) from error
    return since if since.tzinfo is not None else since.replace(tzinfo=UTC)


def _one(values: dict[str, list[str]], name: str) -> str | None:
    """A parameter given at most once: 1 to 255 printable characters."""
    found = values.get(name, [])
    if not found:
        return None
    if len(found) > 1:
        raise AuditQueryError(f"{name} may be given once")
    value = found[0]
    if not 1 <= len(value) <= 255 or not value.isprintable():
        raise AuditQueryError(f"{name} must be 1 to 255 printable characters")
    return value


def _count(values: dict[str, list[str]], name: str, low: int, high: int) -> int | None:
    """An integer parameter given at most once, from ``low`` to ``high``."""
    found = values.get(name, [])
    if not found:
        return None
    raw = found[0]
    digits = raw.isascii() and raw.isdigit() and len(raw) <= 16
    if len(found) > 1 or not digits or not low <= int(raw) <= high:
        raise AuditQueryError(f"{name} must be an integer from {low} to {high}, given once")
    return int(raw)


class AuditQuery(BaseModel):
    """Which audit records to read: every filter that is set must hold; the last ``limit``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    types: tuple[str, ...] = ()
    actor: str | None = None
    job: str | None = None
    since: AwareDatetime | None = None
    limit: int = DEFAULT_AUDIT_LIMIT
    after: int | None = None

    @classmethod
    def parse(cls, params: Iterable[tuple[str, str]], *, now: datetime | None = None) -> AuditQuery:
        """The query in ``params`` (name, value pairs; other names are ignored).

        Raises :class:`AuditQueryError` naming the first malformed parameter.
        """
        values: dict[str, list[str]] = {}
        for name, value in params:
            if name in _NAMES:
                values.setdefault(name, []).append(value)
        types = values.get("type", [])
        if len(types) > MAX_AUDIT_TYPES:
            raise AuditQueryError(f"at most {MAX_AUDIT_TYPES} type filters")
        for value in types:
            if len(value) > 58 or _TYPE.match(value) is None:
                raise AuditQueryError("type must be an audit event type such as envelope.rejected")
        job = _one(values, "job")
        if job is not None and _JOB.match(job) is None:
            raise AuditQueryError("job is malformed")
        since = _one(values, "since")
        limit = _count(values, "limit", 1, MAX_AUDIT_LIMIT)
        return cls(
            types=tuple(dict.fromkeys(types)),
            actor=_one(values, "actor"),
            job=job,
            since=_since(since, now or datetime.now(UTC)) if since is not None else None,
            limit=limit if limit is not None else DEFAULT_AUDIT_LIMIT,
            after=_count(values, "after", 0, MAX_AUDIT_SEQ),
        )

    def params(self) -> list[tuple[str, str]]:
        """The query as name, value pairs (``since`` absolute, in UTC), in a fixed order."""
        pairs = [("type", value) for value in self.types]
        if self.actor is not None:
            pairs.append(("actor", self.actor))
        if self.job is not None:
            pairs.append(("job", self.job))
        if self.since is not None:
            since = self.since.astimezone(UTC).isoformat(timespec="microseconds")
            pairs.append(("since", since.replace("+00:00", "Z")))
        pairs.append(("limit", str(self.limit)))
        if self.after is not None:
            pairs.append(("after", str(self.after)))
        return pairs
