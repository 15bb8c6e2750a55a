"""One service's key ring on disk: its keys and their rotation states (DESIGN §6).

Layout under ``<keys_dir>/<service>/`` (mode 0700): ``ring.json`` (the records, replaced
atomically), ``<kid>.pem`` (each private key, PKCS#8, mode 0600) and ``jwks.json`` (the public
keys). Changes take an exclusive ``flock`` on ``.lock`` and re-read the ring first, so two
operators rotating at once cannot lose each other's step.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from keys.algorithms import (
    DEFAULT_ALGORITHM,
    Algorithm,
    PrivateKey,
    check_algorithm,
    generate_private_key,
)
from keys.errors import MISSING_KEYS_ADVICE, KeyFileError, KeyRingError
from keys.filemodes import private_dir
from keys.files import atomic_write, fsync_directory, read_bounded
from keys.jwk import thumbprint
from keys.keyfile import read_private_key, write_private_key
from keys.keyset import jwks_document, parse_verification_jwk
from keys.records import KeyRecord, KeyState, SigningKey, VerificationKey

__all__ = ["JWKS_FILE", "MAX_KEYS_PER_RING", "RING_FILE", "KeyRing"]

RING_FILE: Final = "ring.json"
ARCHIVE_FILE: Final = "archive.json"
_MAX_ARCHIVE_BYTES: Final = 4 * 1024 * 1024
JWKS_FILE: Final = "jwks.json"
_LOCK_FILE: Final = ".lock"
MAX_KEYS_PER_RING: Final = 64
_MAX_RING_BYTES: Final = 1024 * 1024
_SERVICE_NAME: Final = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_KID_PATTERN: Final = r"^[A-Za-z0-9_-]{43}$"
_STATE_ORDER: Final[dict[KeyState, int]] = {"active": 0, "next": 1, "retired": 2}


class _RecordModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    kid: str = Field(pattern=_KID_PATTERN)
    alg: Algorithm
    state: KeyState
    created_at: float
    activated_at: float | None = None
    retired_at: float | None = None
    not_after: float | None = None


class _RingModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    version: Literal[1]
    service: str
    keys: list[_RecordModel] = Field(max_length=MAX_KEYS_PER_RING)


def _clock(now: float | None) -> float:
    return time.time() if now is None else now


def _check_service(service: str) -> None:
    if not isinstance(service, str) or not _SERVICE_NAME.fullmatch(service):
        raise KeyRingError(
            "invalid_service", f"invalid service name {service!r}: lowercase letters, digits, _ -"
        )


def _check_grace(grace_seconds: float) -> float:
    if not math.isfinite(grace_seconds) or grace_seconds < 0:
        raise KeyRingError(
            "invalid_grace", f"grace must be a finite number of seconds >= 0, not {grace_seconds}"
        )
    return float(grace_seconds)


def _summarise(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "document"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _check_records(path: Path, records: tuple[KeyRecord, ...]) -> None:
    """The ring's invariants: unique kids, one active key, at most one next, consistent times."""

    def fail(detail: str) -> KeyRingError:
        return KeyRingError("malformed_ring", f"{path}: {detail}")

    kids = [record.kid for record in records]
    if len(set(kids)) != len(kids):
        raise fail("a kid appears twice")
    states = [record.state for record in records]
    if states.count("active") != 1:
        raise fail(f"expected exactly one active key, found {states.count('active')}")
    if states.count("next") > 1:
        raise fail(f"expected at most one next key, found {states.count('next')}")
    for record in records:
        consistent = {
            "next": record.activated_at is None and record.retired_at is None,
            "active": record.activated_at is not None and record.retired_at is None,
            "retired": record.retired_at is not None,
        }[record.state]
        if not consistent or (record.state == "retired") != (record.not_after is not None):
            raise fail(f"key {record.kid} has times that do not fit its state {record.state}")


def _read_state(
    keys_dir: Path, service: str
) -> tuple[tuple[KeyRecord, ...], dict[str, PrivateKey]]:
    """The records of ``service``'s ring and its private keys, every one checked."""
    if not keys_dir.is_dir():
        raise KeyRingError(
            "keys_dir_missing", f"no key rings under {keys_dir.resolve()} {MISSING_KEYS_ADVICE}"
        )
    directory = keys_dir / service
    path = directory / RING_FILE
    try:
        data, _ = read_bounded(path, limit=_MAX_RING_BYTES)
    except KeyFileError as error:
        if error.reason == "file_missing":
            raise KeyRingError(
                "ring_missing",
                f"no key ring for {service} under {keys_dir.resolve()} {MISSING_KEYS_ADVICE}",
            ) from error
        raise
    try:
        model = _RingModel.model_validate_json(data)
    except ValidationError as error:
        raise KeyRingError("malformed_ring", f"{path}: {_summarise(error)}") from error
    if model.service != service:
        raise KeyRingError(
            "malformed_ring", f"{path}: records service {model.service!r}, not {service!r}"
        )
    records = tuple(KeyRecord(**item.model_dump()) for item in model.keys)
    _check_records(path, records)
    private_keys = {
        record.kid: read_private_key(
            directory / f"{record.kid}.pem", alg=record.alg, kid=record.kid
        )
        for record in records
    }
    return records, private_keys


class KeyRing:
    """One service's signing keys: a single active key, an optional next one, retired ones.

    Build one with :meth:`create`, :meth:`load` or :meth:`open_or_create`.
    """

    def __init__(
        self,
        keys_dir: Path,
        service: str,
        records: tuple[KeyRecord, ...],
        private_keys: Mapping[str, PrivateKey],
    ) -> None:
        self._keys_dir = keys_dir
        self.service = service
        self._records = records
        self._private_keys = dict(private_keys)

    def __repr__(self) -> str:
        keys = ", ".join(f"{record.kid[:8]}:{record.state}" for record in self._records)
        return f"KeyRing(service={self.service!r}, keys=[{keys}])"

    @property
    def directory(self) -> Path:
        """``<keys_dir>/<service>``."""
        return self._keys_dir / self.service

    @property
    def records(self) -> tuple[KeyRecord, ...]:
        """The ring's keys, oldest first."""
        return self._records

    @staticmethod
    def exists(keys_dir: Path, service: str) -> bool:
        """True when ``service`` has a ring (a ``ring.json``) under ``keys_dir``."""
        _check_service(service)
        return (keys_dir / service / RING_FILE).is_file()

    @classmethod
    def create(
        cls,
        keys_dir: Path,
        service: str,
        alg: Algorithm = DEFAULT_ALGORITHM,
        *,
        now: float | None = None,
    ) -> KeyRing:
        """A new ring for ``service`` with one fresh active key; an error if one exists."""
        _check_service(service)
        alg = check_algorithm(alg)
        directory = keys_dir / service
        try:
            private_dir(keys_dir)
            directory.mkdir(mode=0o700, exist_ok=True)
        except OSError as error:
            raise KeyFileError(
                directory, "write_failed", f"cannot create directory: {error.strerror}"
            ) from error
        with _exclusive_lock(directory):
            if (directory / RING_FILE).exists():
                raise KeyRingError(
                    "ring_exists", f"a key ring for {service} already exists under {keys_dir}"
                )
            moment = _clock(now)
            key = generate_private_key(alg)
            kid = thumbprint(key.public_key())
            write_private_key(directory / f"{kid}.pem", key)
            record = KeyRecord(
                kid=kid, alg=alg, state="active", created_at=moment, activated_at=moment
            )
            ring = cls(keys_dir, service, (record,), {kid: key})
            ring._write(moment)
        return ring

    @classmethod
    def load(cls, keys_dir: Path, service: str) -> KeyRing:
        """The ring of ``service``, with every private key loaded and checked against its record."""
        _check_service(service)
        records, private_keys = _read_state(keys_dir, service)
        return cls(keys_dir, service, records, private_keys)

    @classmethod
    def open_or_create(
        cls, keys_dir: Path, service: str, alg: Algorithm = DEFAULT_ALGORITHM
    ) -> KeyRing:
        """The existing ring of ``service``, or a new one with an ``alg`` key (idempotent init)."""
        try:
            return cls.load(keys_dir, service)
        except KeyRingError as error:
            if error.reason not in {"ring_missing", "keys_dir_missing"}:
                raise
        try:
            return cls.create(keys_dir, service, alg)
        except KeyRingError as error:
            if error.reason != "ring_exists":
                raise
            return cls.load(keys_dir, service)

    def record(self, kid: str) -> KeyRecord:
        """The record of ``kid``; an error naming the service when the ring has no such key."""
        for record in self._records:
            if record.kid == kid:
                return record
        raise KeyRingError("unknown_kid", f"{self.service} has no key {kid}")

    def _in_state(self, state: KeyState) -> KeyRecord | None:
        return next((record for record in self._records if record.state == state), None)

    def signing_key(self) -> SigningKey:
        """The single active key, which signs everything the service sends."""
        active = self._in_state("active")
        if active is None:  # excluded by _check_records; kept for a clear message
            raise KeyRingError("no_active_key", f"{self.service} has no active key")
        return SigningKey(
            service=self.service,
            kid=active.kid,
            alg=active.alg,
            private_key=self._private_keys[active.kid],
        )

    def verification_keys(self, now: float | None = None) -> list[VerificationKey]:
        """The keys receivers accept: next, active, and retired ones before their ``not_after``."""
        moment = _clock(now)
        accepted = [
            record
            for record in self._records
            if record.not_after is None or moment < record.not_after
        ]
        accepted.sort(key=lambda record: (_STATE_ORDER[record.state], record.created_at))
        return [
            VerificationKey(
                service=self.service,
                kid=record.kid,
                alg=record.alg,
                key=self._private_keys[record.kid].public_key(),
                state=record.state,
                not_after=record.not_after,
            )
            for record in accepted
        ]

    def jwks(self, now: float | None = None) -> dict[str, list[dict[str, object]]]:
        """The public JWKS of :meth:`verification_keys`; retired keys carry their ``not_after``."""
        return jwks_document(self.verification_keys(now))

    def add_next(self, alg: Algorithm | None = None, *, now: float | None = None) -> KeyRecord:
        """Rotation step 1: create and publish a next key (default: the active key's algorithm)."""
        moment = _clock(now)
        with self._locked():
            pending = self._in_state("next")
            if pending is not None:
                raise KeyRingError(
                    "next_exists",
                    f"{self.service} already has a next key {pending.kid}: promote it first",
                )
            chosen = self.signing_key().alg if alg is None else check_algorithm(alg)
            key = generate_private_key(chosen)
            kid = thumbprint(key.public_key())
            write_private_key(self.directory / f"{kid}.pem", key)
            record = KeyRecord(kid=kid, alg=chosen, state="next", created_at=moment)
            self._commit((*self._records, record), {**self._private_keys, kid: key}, moment)
        return record

    def promote_next(self, *, grace_seconds: float, now: float | None = None) -> KeyRecord:
        """Rotation step 2: the next key signs from now on; the old one retires after the grace.

        Returns the newly active record.
        """
        grace = _check_grace(grace_seconds)
        moment = _clock(now)
        with self._locked():
            pending = self._in_state("next")
            if pending is None:
                raise KeyRingError(
                    "no_next_key", f"{self.service} has no next key to promote: add one first"
                )
            active = self.record(self.signing_key().kid)
            promoted = replace(pending, state="active", activated_at=moment)
            replacements = {
                pending.kid: promoted,
                active.kid: replace(
                    active, state="retired", retired_at=moment, not_after=moment + grace
                ),
            }
            records = tuple(replacements.get(record.kid, record) for record in self._records)
            self._commit(records, self._private_keys, moment)
        return promoted

    def retire(self, kid: str, *, grace_seconds: float = 0, now: float | None = None) -> KeyRecord:
        """Stop accepting ``kid`` after ``grace_seconds`` (0: at once), e.g. after a compromise.

        Retiring the active key needs a next key, which takes over signing at once: a ring is
        never left without a key to sign with. A key already retired can only have its
        ``not_after`` brought forward. Returns the retired record.
        """
        grace = _check_grace(grace_seconds)
        moment = _clock(now)
        not_after = moment + grace
        with self._locked():
            target = self.record(kid)
            replacements: dict[str, KeyRecord] = {}
            if target.state == "retired":
                assert target.not_after is not None  # _check_records guarantees it
                if target.not_after <= not_after:
                    raise KeyRingError(
                        "already_retired",
                        f"key {kid} of {self.service} is already retired and accepted for no "
                        "longer than that",
                    )
                retired = replace(target, not_after=not_after)
            else:
                retired = replace(target, state="retired", retired_at=moment, not_after=not_after)
                if target.state == "active":
                    pending = self._in_state("next")
                    if pending is None:
                        raise KeyRingError(
                            "only_active_key",
                            f"{kid} is the only key {self.service} can sign with: publish a next "
                            "key first; it takes over signing when this one is retired",
                        )
                    replacements[pending.kid] = replace(
                        pending, state="active", activated_at=moment
                    )
            replacements[kid] = retired
            records = tuple(replacements.get(record.kid, record) for record in self._records)
            self._commit(records, self._private_keys, moment)
        return retired

    def prune(self, now: float | None = None) -> list[str]:
        """Delete the records and private key files of retired keys past ``not_after``."""
        moment = _clock(now)
        with self._locked():
            expired = [
                record.kid
                for record in self._records
                if record.not_after is not None and record.not_after <= moment
            ]
            if not expired:
                return []
            # Public halves are archived first: signatures they made (the audit log's
            # checkpoints) must stay verifiable after the private halves are gone.
            self._archive([key for key in self.verification_keys(now=0.0) if key.kid in expired])
            records = tuple(record for record in self._records if record.kid not in expired)
            remaining = {kid: key for kid, key in self._private_keys.items() if kid not in expired}
            # The ring forgets the keys before their files go: a crash in between leaves
            # orphan files, never a ring that names a missing file.
            self._commit(records, remaining, moment)
            for kid in expired:
                path = self.directory / f"{kid}.pem"
                try:
                    path.unlink(missing_ok=True)
                except OSError as error:
                    raise KeyFileError(
                        path, "delete_failed", f"cannot delete: {error.strerror}"
                    ) from error
            fsync_directory(self.directory)
        return expired

    def archived_keys(self) -> list[VerificationKey]:
        """Public keys of pruned retired keys, for verifying what they signed long ago.

        Never trust these for new messages: they carry the ``not_after`` they were retired
        with, and :class:`TrustStore` refuses them past it.
        """
        path = self.directory / ARCHIVE_FILE
        if not path.exists():
            return []
        data, _ = read_bounded(path, limit=_MAX_ARCHIVE_BYTES)
        try:
            document = json.loads(data)
            jwks = document["keys"]
            if not isinstance(jwks, list):
                raise TypeError("keys is not a list")
            return [parse_verification_jwk(self.service, jwk) for jwk in jwks]
        except (ValueError, KeyError, TypeError) as error:
            raise KeyRingError(
                "malformed_archive", f"{path}: malformed key archive: {error}"
            ) from error

    def _archive(self, keys: list[VerificationKey]) -> None:
        if not keys:
            return
        known = {key.kid: key for key in self.archived_keys()}
        known.update((key.kid, key) for key in keys)
        atomic_write(
            self.directory / ARCHIVE_FILE,
            _json_bytes(jwks_document(known.values())),
            mode=0o644,
        )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the ring's lock and start from what is on disk now."""
        with _exclusive_lock(self.directory):
            self._records, self._private_keys = _read_state(self._keys_dir, self.service)
            yield

    def _commit(
        self,
        records: tuple[KeyRecord, ...],
        private_keys: Mapping[str, PrivateKey],
        now: float,
    ) -> None:
        _check_records(self.directory / RING_FILE, records)
        self._records = records
        self._private_keys = dict(private_keys)
        self._write(now)

    def _write(self, now: float) -> None:
        model = _RingModel(
            version=1,
            service=self.service,
            keys=[_record_model(record) for record in self._records],
        )
        atomic_write(
            self.directory / RING_FILE,
            (model.model_dump_json(indent=2) + "\n").encode("utf-8"),
            mode=0o600,
        )
        atomic_write(self.directory / JWKS_FILE, _json_bytes(self.jwks(now)), mode=0o644)


def _record_model(record: KeyRecord) -> _RecordModel:
    return _RecordModel(
        kid=record.kid,
        alg=record.alg,
        state=record.state,
        created_at=record.created_at,
        activated_at=record.activated_at,
        retired_at=record.retired_at,
        not_after=record.not_after,
    )


def _json_bytes(document: object) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


@contextlib.contextmanager
def _exclusive_lock(directory: Path) -> Iterator[None]:
    path = directory / _LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except FileNotFoundError as error:
        raise KeyRingError(
            "ring_missing", f"no key ring directory {directory.resolve()} {MISSING_KEYS_ADVICE}"
        ) from error
    except OSError as error:
        raise KeyFileError(path, "lock_failed", f"cannot open lock: {error.strerror}") from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
