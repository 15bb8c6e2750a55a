"""The store's bounds on untrusted arguments, checked the same way by every backend."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from schemas.limits import MAX_DETAIL_CHARS
from store.records import JOB_STATES, JobState
from store.timestamps import to_micros

__all__ = [
    "MAX_DETAIL_CHARS",
    "MAX_KEY_CHARS",
    "MAX_LIST_LIMIT",
    "MAX_REASON_CHARS",
    "MAX_SEARCH_LIMIT",
    "NO_UPPER_BOUND",
    "bounded_detail",
    "check_key",
    "check_list",
    "check_search_limit",
    "check_transition",
]

MAX_LIST_LIMIT: Final = 500
MAX_SEARCH_LIMIT: Final = 100
MAX_REASON_CHARS: Final = 128
MAX_KEY_CHARS: Final = 512
NO_UPPER_BOUND: Final = 2**63 - 1
"""The paging cursor when no ``before`` is given: later than any stored microsecond."""


def bounded_detail(detail: str | None) -> str | None:
    """Free-text detail is often untrusted (error messages): cap it and make it valid UTF-8.

    The cap is the messages' own (``schemas.limits.MAX_DETAIL_CHARS``), so a stored detail
    always fits the ``job.failed`` event that carries it.
    """
    if detail is None:
        return None
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[: MAX_DETAIL_CHARS - 1] + "…"
    return detail.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def check_list(state: JobState | None, limit: int, before: datetime | None) -> tuple[int, int]:
    """Validate a listing's arguments; returns ``(capped limit, upper bound in microseconds)``."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if state is not None and state not in JOB_STATES:
        raise ValueError(f"unknown job state {state!r}")
    upper = NO_UPPER_BOUND if before is None else to_micros(before)
    return min(limit, MAX_LIST_LIMIT), upper


def check_search_limit(limit: int) -> int:
    """Validate a search's ``limit``; returns it capped at ``MAX_SEARCH_LIMIT``."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return min(limit, MAX_SEARCH_LIMIT)


def check_transition(to: JobState, detail: str | None, error_reason: str | None) -> str | None:
    """Validate a transition's arguments; returns the bounded ``detail``."""
    if to not in JOB_STATES:
        raise ValueError(f"unknown job state {to!r}")
    if error_reason is not None:
        if to != "failed":
            raise ValueError("error_reason is only for a transition to failed")
        if not error_reason or len(error_reason) > MAX_REASON_CHARS:
            raise ValueError(f"error_reason must be 1 to {MAX_REASON_CHARS} characters")
    return bounded_detail(detail)


def check_key(key: str) -> str:
    """Validate an idempotency key of the worker's ledger."""
    if not key or len(key) > MAX_KEY_CHARS:
        raise ValueError(f"key must be 1 to {MAX_KEY_CHARS} characters")
    return key
