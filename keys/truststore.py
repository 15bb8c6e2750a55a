"""What a receiver trusts: each service's verification keys, by ``kid``, with their JWKS.

A :class:`TrustStore` is built from the local rings (:meth:`TrustStore.from_rings`) or from
the services document of a signed trust bundle (:mod:`keys.bundle`), whose JWKs carry the
ring state (see :mod:`keys.keyset`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from keys.errors import KeyMaterialError, TrustStoreError
from keys.keyring import KeyRing
from keys.keyset import jwks_document, parse_verification_jwk
from keys.records import VerificationKey
from schemas.services import SERVICES

__all__ = ["TrustStore"]

_MAX_SERVICES: Final = 64
_MAX_KEYS_PER_SERVICE: Final = 64
_SERVICE_NAME: Final = re.compile(r"[a-z][a-z0-9_-]{0,62}")


class _ServiceKeysModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    keys: list[dict[str, Any]] = Field(max_length=_MAX_KEYS_PER_SERVICE)


class _ServicesModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    services: dict[str, _ServiceKeysModel] = Field(max_length=_MAX_SERVICES)


class TrustStore:
    """Verification keys by ``kid``, with each service's JWKS precomputed; immutable."""

    __slots__ = ("_by_kid", "_jwks", "services")

    def __init__(
        self, keys: Iterable[VerificationKey], *, services: Iterable[str] | None = None
    ) -> None:
        by_kid: dict[str, VerificationKey] = {}
        for key in keys:
            other = by_kid.get(key.kid)
            if other is not None:
                raise TrustStoreError(
                    "duplicate_kid",
                    f"kid {key.kid} appears twice (services {other.service} and {key.service})",
                )
            by_kid[key.kid] = key
        names = {key.service for key in by_kid.values()}
        if services is not None:
            names.update(services)
        for name in names:
            if not _SERVICE_NAME.fullmatch(name):
                raise TrustStoreError("invalid_service", f"invalid service name {name!r}")
        self._by_kid = by_kid
        self.services: frozenset[str] = frozenset(names)
        self._jwks = {
            name: jwks_document(key for key in by_kid.values() if key.service == name)
            for name in sorted(names)
        }

    def __repr__(self) -> str:
        return f"TrustStore(services={sorted(self.services)}, keys={len(self._by_kid)})"

    @classmethod
    def from_rings(
        cls, keys_dir: Path, services: Iterable[str] = SERVICES, *, now: float | None = None
    ) -> TrustStore:
        """The verification keys of each service's ring under ``keys_dir``."""
        names = list(dict.fromkeys(services))
        keys = [
            key for name in names for key in KeyRing.load(keys_dir, name).verification_keys(now)
        ]
        return cls(keys, services=names)

    @classmethod
    def from_document(cls, document: object, *, where: str) -> TrustStore:
        """Strictly validate a services document (``{"services": {name: jwks}}``).

        ``where`` (a file or a bundle version) starts every error's detail.
        """
        try:
            model = _ServicesModel.model_validate(document)
        except ValidationError as error:
            first = error.errors()[0]
            place = ".".join(str(part) for part in first["loc"]) or "document"
            raise TrustStoreError(
                "malformed_trust_store", f"{where}: {place}: {first['msg']}"
            ) from error
        keys: list[VerificationKey] = []
        for service, entry in model.services.items():
            if not _SERVICE_NAME.fullmatch(service):
                raise TrustStoreError(
                    "malformed_trust_store", f"{where}: invalid service name {service!r}"
                )
            for index, jwk in enumerate(entry.keys):
                try:
                    keys.append(parse_verification_jwk(service, jwk))
                except KeyMaterialError as error:
                    raise TrustStoreError(
                        error.reason, f"{where}: services.{service}.keys.{index}: {error}"
                    ) from error
        try:
            return cls(keys, services=model.services)
        except TrustStoreError as error:
            raise TrustStoreError(error.reason, f"{where}: {error}") from error

    def document(self) -> dict[str, object]:
        """The services document: each service's JWKS."""
        return {"services": {name: self.jwks(name) for name in self._jwks}}

    def lookup(self, kid: str, now: float | None = None) -> VerificationKey | None:
        """The key named ``kid`` if it is accepted at ``now``; None if unknown or expired."""
        key = self._by_kid.get(kid)
        if key is None or key.not_after is None:
            return key
        if (time.time() if now is None else now) < key.not_after:
            return key
        return None

    def refresh(self, *, force: bool = False) -> bool:
        """A fixed store never reloads (so it can stand where a ``TrustStoreFile`` can)."""
        return False

    def service_of(self, kid: str) -> str | None:
        """The service that owns ``kid`` (expired or not), or None for an unknown kid."""
        key = self._by_kid.get(kid)
        return None if key is None else key.service

    def verification_keys(self, now: float | None = None) -> list[VerificationKey]:
        """Every key in the store, or only those accepted at ``now`` when it is given."""
        keys = list(self._by_kid.values())
        return keys if now is None else [key for key in keys if key.accepts_at(now)]

    def jwks(self, service: str) -> dict[str, list[dict[str, object]]]:
        """A copy of ``service``'s JWKS."""
        document = self._jwks.get(service)
        if document is None:
            raise TrustStoreError("unknown_service", f"the trust store has no service {service!r}")
        return {"keys": [dict(jwk) for jwk in document["keys"]]}

    def merged(
        self, replacements: Iterable[VerificationKey], services: Iterable[str], *, now: float
    ) -> TrustStore:
        """This store with ``services``' keys replaced and keys expired at ``now`` dropped."""
        replaced = set(services)
        kept = [
            key
            for key in self._by_kid.values()
            if key.service not in replaced and key.accepts_at(now)
        ]
        return TrustStore([*kept, *replacements], services=self.services | replaced)
