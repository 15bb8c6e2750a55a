"""What a receiver trusts: each service's verification keys, from the rings or ``trust.json``.

The trust file is ``{"version": 1, "services": {"gateway": {"keys": [jwk, ...]}, ...}}``; its
JWKs carry the ring state (see :mod:`keys.keyset`). :class:`TrustStoreFile` re-reads it when
it changes, so receivers accept a newly published key without a restart.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from keys.errors import KeyFileError, KeyMaterialError, TrustStoreError
from keys.files import atomic_write, read_bounded
from keys.keyring import KeyRing
from keys.keyset import jwks_document, parse_verification_jwk
from keys.records import VerificationKey
from schemas.services import SERVICES

__all__ = [
    "DEFAULT_REFRESH_INTERVAL",
    "TRUST_FILE",
    "TrustStore",
    "TrustStoreFile",
    "write_trust_store",
]

TRUST_FILE: Final = "trust.json"
DEFAULT_REFRESH_INTERVAL: Final = 1.0
_MAX_TRUST_BYTES: Final = 4 * 1024 * 1024
_MAX_SERVICES: Final = 64
_MAX_KEYS_PER_SERVICE: Final = 64
_SERVICE_NAME: Final = re.compile(r"[a-z][a-z0-9_-]{0,62}")

_log = structlog.get_logger(__name__)


class _ServiceKeysModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    keys: list[dict[str, Any]] = Field(max_length=_MAX_KEYS_PER_SERVICE)


class _TrustModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    version: Literal[1]
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
    def load(cls, path: Path) -> TrustStore:
        """Read and strictly validate a trust file."""
        store, _ = _read_trust_file(path)
        return store

    def document(self) -> dict[str, object]:
        """The trust file's JSON document."""
        return {"version": 1, "services": {name: self.jwks(name) for name in self._jwks}}

    def save(self, path: Path) -> None:
        """Write the trust file atomically (readable by every receiver: mode 0644)."""
        atomic_write(path, _json_bytes(self.document()), mode=0o644)

    def lookup(self, kid: str, now: float | None = None) -> VerificationKey | None:
        """The key named ``kid`` if it is accepted at ``now``; None if unknown or expired."""
        key = self._by_kid.get(kid)
        if key is None or key.not_after is None:
            return key
        if (time.time() if now is None else now) < key.not_after:
            return key
        return None

    def refresh(self, *, force: bool = False) -> bool:
        """A fixed store never reloads (so it can stand where a :class:`TrustStoreFile` can)."""
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


def _json_bytes(document: object) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _read_trust_file(path: Path) -> tuple[TrustStore, os.stat_result]:
    try:
        data, info = read_bounded(path, limit=_MAX_TRUST_BYTES)
    except KeyFileError as error:
        if error.reason == "file_missing":
            raise TrustStoreError(
                "trust_store_missing", f"no trust store at {path}: run `sealflow keys init`"
            ) from error
        raise
    try:
        model = _TrustModel.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise TrustStoreError(
            "malformed_trust_store", f"{path}: {where}: {first['msg']}"
        ) from error
    keys: list[VerificationKey] = []
    for service, entry in model.services.items():
        if not _SERVICE_NAME.fullmatch(service):
            raise TrustStoreError(
                "malformed_trust_store", f"{path}: invalid service name {service!r}"
            )
        for index, jwk in enumerate(entry.keys):
            try:
                keys.append(parse_verification_jwk(service, jwk))
            except KeyMaterialError as error:
                raise TrustStoreError(
                    error.reason, f"{path}: services.{service}.keys.{index}: {error}"
                ) from error
    try:
        return TrustStore(keys, services=model.services), info
    except TrustStoreError as error:
        raise TrustStoreError(error.reason, f"{path}: {error}") from error


def _signature(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


class TrustStoreFile:
    """A :class:`TrustStore` read from ``path`` and re-read when the file changes.

    The file is re-stat'ed at most once per ``min_interval`` seconds. An invalid new file is
    logged and ignored: the last good store stays in force.
    """

    def __init__(self, path: Path, *, min_interval: float = DEFAULT_REFRESH_INTERVAL) -> None:
        self.path = path
        self.min_interval = min_interval
        self._store, info = _read_trust_file(path)
        self._signature = _signature(info)
        self._checked_at = time.monotonic()

    def __repr__(self) -> str:
        return f"TrustStoreFile(path={str(self.path)!r}, store={self._store!r})"

    @property
    def current(self) -> TrustStore:
        """The store as of the last (rate-limited) check of the file."""
        self.refresh()
        return self._store

    def lookup(self, kid: str, now: float | None = None) -> VerificationKey | None:
        """:meth:`TrustStore.lookup` on the current store."""
        return self.current.lookup(kid, now)

    def service_of(self, kid: str) -> str | None:
        """:meth:`TrustStore.service_of` on the current store."""
        return self.current.service_of(kid)

    def refresh(self, *, force: bool = False) -> bool:
        """Reload when the file changed (size, mtime or inode); True when a new store is in use."""
        checked_at = time.monotonic()
        if not force and checked_at - self._checked_at < self.min_interval:
            return False
        self._checked_at = checked_at
        try:
            signature = _signature(os.stat(self.path))
        except OSError as error:
            _log.warning("trust_store_unavailable", path=str(self.path), error=error.strerror)
            return False
        if signature == self._signature:
            return False
        try:
            store, info = _read_trust_file(self.path)
        except KeyMaterialError as error:
            # Remember the broken version so that it is not parsed again every interval.
            self._signature = signature
            _log.warning(
                "trust_store_reload_failed",
                path=str(self.path),
                reason=error.reason,
                error=str(error),
            )
            return False
        self._store, self._signature = store, _signature(info)
        _log.info(
            "trust_store_reloaded",
            path=str(self.path),
            services=len(store.services),
            keys=len(store.verification_keys()),
        )
        return True


def write_trust_store(
    keys_dir: Path, services: Iterable[str] = SERVICES, *, now: float | None = None
) -> Path:
    """Build the trust store from the rings (keys accepted at ``now``); save ``trust.json``.

    The file is left untouched when its content would not change, so that receivers do not
    reload for nothing.
    """
    path = keys_dir / TRUST_FILE
    data = _json_bytes(TrustStore.from_rings(keys_dir, services, now=now).document())
    try:
        current, _ = read_bounded(path, limit=_MAX_TRUST_BYTES)
    except KeyFileError:
        current = b""  # missing or unusable: replace it either way
    if current != data:
        atomic_write(path, data, mode=0o644)
    return path
