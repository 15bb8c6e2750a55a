"""The job state machine: queued → processing → done | failed, and queued → failed."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from store.records import JobState

__all__ = ["ALLOWED_FROM", "TERMINAL_STATES"]

# For each target state, the states a job may move to it from.
ALLOWED_FROM: Final[Mapping[JobState, tuple[JobState, ...]]] = MappingProxyType(
    {
        "queued": (),
        "processing": ("queued",),
        "done": ("processing",),
        "failed": ("queued", "processing"),
    }
)

TERMINAL_STATES: Final[frozenset[JobState]] = frozenset({"done", "failed"})
