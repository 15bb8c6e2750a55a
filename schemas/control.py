"""Control messages broadcast on the ``sealflow.control`` fanout: revocations and key sets."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from schemas.base import WireMessage
from schemas.identifiers import EventId, KeyId, Subject
from schemas.limits import MAX_KIDS, MAX_TRUST_BUNDLE_CHARS
from schemas.services import Service
from schemas.text import ShortText

__all__ = ["KeySetChanged", "Revocation", "RevocationKind"]

RevocationKind = Literal["kid", "jti", "sub"]
"""What a revocation names: a signing key, one envelope, or everything on behalf of a subject."""

_JTI = re.compile(r"[0-9a-f]{32}")
_KID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_COMPACT_JWS = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"


class Revocation(WireMessage):
    """Stop accepting envelopes signed by a key, with a given id, or for a given subject."""

    MESSAGE_TYPE: ClassVar[str] = "control.revocation"

    revocation_id: EventId
    kind: RevocationKind
    value: Subject
    """The revoked ``kid`` (a key id), ``jti`` (32 lowercase hex) or ``sub``."""
    reason: ShortText
    issued_at: AwareDatetime
    until: AwareDatetime | None = None
    """When the revocation lapses; ``None`` means never."""

    @model_validator(mode="after")
    def _value_fits_kind(self) -> Self:
        if self.kind == "jti" and _JTI.fullmatch(self.value) is None:
            raise ValueError("a jti revocation's value must be 32 lowercase hex digits")
        if self.kind == "kid" and _KID.fullmatch(self.value) is None:
            raise ValueError("a kid revocation's value must be a key id")
        if self.until is not None and self.until <= self.issued_at:
            raise ValueError("until must be after issued_at")
        return self


class KeySetChanged(WireMessage):
    """A service's set of public keys changed (rotation): here is the new signed trust bundle.

    Receivers take ``bundle`` only if the pinned root key signed it and it is newer than the
    bundle they hold; ``service``, ``kids`` and ``version`` are for logs, the bundle is the
    authority.
    """

    MESSAGE_TYPE: ClassVar[str] = "control.keyset"

    service: Service
    kids: Annotated[list[KeyId], Field(max_length=MAX_KIDS)]
    """The key ids the service now publishes, each at most once."""
    changed_at: AwareDatetime
    version: Annotated[int, Field(ge=1, le=2**53)]
    """The bundle's version, as it says inside."""
    bundle: Annotated[str, Field(max_length=MAX_TRUST_BUNDLE_CHARS, pattern=_COMPACT_JWS)]
    """The trust bundle: a compact JWS signed by the operator root key."""

    @model_validator(mode="after")
    def _kids_unique(self) -> Self:
        if len(set(self.kids)) != len(self.kids):
            raise ValueError("kids must not repeat")
        return self
