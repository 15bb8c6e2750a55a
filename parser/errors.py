"""The one error the parser raises, with a machine-readable ``reason`` and a retry hint."""

from __future__ import annotations

from typing import Literal, get_args

from schemas.errors import SealflowError

__all__ = ["PARSE_ERROR_REASONS", "ParseError", "ParseErrorReason"]

ParseErrorReason = Literal[
    "unsupported_type",
    "too_large",
    "malformed",
    "encrypted",
    "timeout",
    "output_too_large",
    "internal",
]
"""Why a document could not be parsed."""

PARSE_ERROR_REASONS: frozenset[str] = frozenset(get_args(ParseErrorReason))

_TRANSIENT: frozenset[str] = frozenset({"internal"})


class ParseError(SealflowError):
    """A document could not be parsed; ``reason`` is the machine-readable code.

    ``permanent`` is false only for ``internal`` (the parser process died or misbehaved), which
    a retry may cure. A ``timeout`` is permanent: the same bytes would time out again, and a
    hostile document must not be retried forever.
    """

    reason: ParseErrorReason

    def __init__(self, reason: ParseErrorReason, detail: str) -> None:
        super().__init__(detail, reason=reason)

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"

    @property
    def permanent(self) -> bool:
        """Whether parsing the same bytes again would fail the same way."""
        return self.reason not in _TRANSIENT

    def __reduce__(self) -> tuple[type[ParseError], tuple[ParseErrorReason, str]]:
        return (type(self), (self.reason, self.detail))
