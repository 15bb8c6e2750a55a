"""``trust.json`` on each host: the newest signed trust bundle it holds, and who may replace it.

:class:`TrustStoreFile` is what a daemon verifies envelopes with. It re-reads the file when it
changes (another process on the host wrote a newer bundle) and takes bundles handed to it by
:meth:`TrustStoreFile.accept` (from ``sealflow.control`` or a :class:`BundleSource`). Either
way a bundle must be signed by the pinned root and newer than the one held: an older bundle
(a replay that would bring back a retired key) is refused and logged.

:func:`issue_trust_bundle` is the operator side: it folds this host's rings into the current
bundle, signs the next version with the root key, and saves it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final, Protocol

import structlog

from keys.bundle import (
    ROOT_KEY_FILE,
    ROOT_PUBLIC_FILE,
    TrustBundle,
    create_root_key,
    load_root_public,
    load_root_signer,
)
from keys.errors import MISSING_KEYS_ADVICE, KeyFileError, KeyMaterialError, TrustStoreError
from keys.filemodes import private_dir
from keys.files import atomic_write, read_bounded
from keys.keyring import KeyRing
from keys.records import VerificationKey
from keys.truststore import TrustStore
from schemas.limits import MAX_TRUST_BUNDLE_CHARS
from schemas.services import SERVICES

__all__ = [
    "DEFAULT_REFRESH_INTERVAL",
    "TRUST_FILE",
    "BundleSource",
    "TrustStoreFile",
    "issue_trust_bundle",
    "load_trust_store",
    "read_trust_file",
    "save_bundle",
    "write_trust_store",
]

TRUST_FILE: Final = "trust.json"
DEFAULT_REFRESH_INTERVAL: Final = 1.0
_LOCK_FILE: Final = ".trust.lock"

_log = structlog.get_logger(__name__)


class BundleSource(Protocol):
    """Somewhere else that holds the newest bundle (the database of a multi-host setup)."""

    async def latest(self) -> str | None:
        """The newest bundle it holds (a compact JWS), or None."""
        ...


def _root_for(path: Path, root: VerificationKey | None) -> VerificationKey:
    return root if root is not None else load_root_public(path.parent / ROOT_PUBLIC_FILE)


def read_trust_file(
    path: Path, root: VerificationKey | None = None
) -> tuple[TrustBundle, os.stat_result]:
    """The bundle saved at ``path``, verified against ``root`` (default: ``root.jwk`` beside it)."""
    pinned = _root_for(path, root)
    try:
        data, info = read_bounded(path, limit=MAX_TRUST_BUNDLE_CHARS + 2)
    except KeyFileError as error:
        if error.reason == "file_missing":
            raise TrustStoreError(
                "trust_store_missing", f"no trust bundle at {path.resolve()} {MISSING_KEYS_ADVICE}"
            ) from error
        raise
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError as error:
        raise TrustStoreError("malformed_trust_store", f"{path}: is not a trust bundle") from error
    try:
        return TrustBundle.open(token, pinned), info
    except TrustStoreError as error:
        raise TrustStoreError(error.reason, f"{path}: {error}") from error


def load_trust_store(path: Path, root: VerificationKey | None = None) -> TrustStore:
    """The keys of the bundle at ``path`` (see :func:`read_trust_file`)."""
    return read_trust_file(path, root)[0].store


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise writers of one host's ``trust.json`` (daemons and the CLI)."""
    path = directory / _LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as error:  # e.g. a keys directory mounted read-only
        raise KeyFileError(path, "lock_failed", f"cannot open lock: {error.strerror}") from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _held_version(path: Path, root: VerificationKey) -> int:
    """The version of the bundle saved at ``path``; 0 when there is none usable."""
    try:
        return read_trust_file(path, root)[0].version
    except KeyMaterialError:
        return 0


def _save_locked(path: Path, bundle: TrustBundle, root: VerificationKey) -> bool:
    if bundle.version <= _held_version(path, root):
        return False
    atomic_write(path, (bundle.token + "\n").encode("ascii"), mode=0o644)
    return True


def save_bundle(path: Path, bundle: TrustBundle, root: VerificationKey) -> bool:
    """Save ``bundle`` at ``path`` unless the file already holds it or a newer one."""
    with _locked(path.parent):
        return _save_locked(path, bundle, root)


def _signature(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


class TrustStoreFile:
    """The newest trust bundle this process has seen, backed by ``trust.json``.

    The file is re-stat'ed at most once per ``min_interval`` seconds. A new file that is
    invalid, not signed by the root, or not newer is logged once and ignored: the bundle held
    stays in force.
    """

    def __init__(
        self,
        path: Path,
        *,
        root: VerificationKey | None = None,
        min_interval: float = DEFAULT_REFRESH_INTERVAL,
    ) -> None:
        self.path = path
        self.root = _root_for(path, root)
        self.min_interval = min_interval
        self._bundle, info = read_trust_file(path, self.root)
        self._signature = _signature(info)
        self._checked_at = time.monotonic()

    def __repr__(self) -> str:
        return f"TrustStoreFile(path={str(self.path)!r}, version={self._bundle.version})"

    @property
    def bundle(self) -> TrustBundle:
        """The bundle in force (without re-checking the file)."""
        return self._bundle

    @property
    def current(self) -> TrustStore:
        """The store as of the last (rate-limited) check of the file."""
        self.refresh()
        return self._bundle.store

    def lookup(self, kid: str, now: float | None = None) -> VerificationKey | None:
        """:meth:`TrustStore.lookup` on the current store."""
        return self.current.lookup(kid, now)

    def service_of(self, kid: str) -> str | None:
        """:meth:`TrustStore.service_of` on the current store."""
        return self.current.service_of(kid)

    def _adopt(self, bundle: TrustBundle, origin: str) -> bool:
        """Use ``bundle`` if newer; False if it is the one held; raise if older or conflicting."""
        held = self._bundle
        if bundle.version <= held.version:
            if bundle.version == held.version and bundle.token == held.token:
                return False
            reason = "bundle_rollback" if bundle.version < held.version else "bundle_conflict"
            _log.warning(
                "trust_bundle_refused",
                origin=origin,
                reason=reason,
                offered=bundle.version,
                held=held.version,
            )
            raise TrustStoreError(
                reason,
                f"trust bundle {bundle.version} from {origin} refused: this process holds "
                f"bundle {held.version} (an older or conflicting bundle may bring back a "
                "retired key)",
            )
        self._bundle = bundle
        _log.info(
            "trust_store_reloaded",
            origin=origin,
            version=bundle.version,
            services=len(bundle.store.services),
            keys=len(bundle.store.verification_keys()),
        )
        return True

    def accept(self, token: str, *, origin: str = "control") -> bool:
        """Take a bundle from elsewhere: verified, newer than the one held, then saved.

        Returns True when it is now in force, False when it is the bundle already held.
        Raises :class:`TrustStoreError` when the root did not sign it, it is malformed, or it
        is older than (``bundle_rollback``) or conflicts with (``bundle_conflict``) the bundle
        held.
        """
        bundle = TrustBundle.open(token, self.root)
        if not self._adopt(bundle, origin):
            return False
        try:
            save_bundle(self.path, bundle, self.root)
        except KeyMaterialError as error:
            _log.warning("trust_bundle_not_saved", path=str(self.path), reason=error.reason)
        return True

    def refresh(self, *, force: bool = False) -> bool:
        """Reload when the file changed (size, mtime or inode); True when a new bundle is used."""
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
        # Remember this version of the file, good or bad, so it is judged once.
        self._signature = signature
        try:
            bundle, _ = read_trust_file(self.path, self.root)
            return self._adopt(bundle, "file")
        except KeyMaterialError as error:
            _log.warning(
                "trust_store_reload_failed",
                path=str(self.path),
                reason=error.reason,
                error=str(error),
            )
            return False


def issue_trust_bundle(
    keys_dir: Path,
    services: Iterable[str] = SERVICES,
    *,
    now: float | None = None,
    root_key: Path | None = None,
) -> tuple[TrustBundle, bool]:
    """Fold this host's rings into the current bundle; sign and save the next version if needed.

    Each of ``services`` that has a ring here contributes its accepted keys; other services
    keep the keys the current bundle gives them (a host holds only its own rings). The first
    run on an empty keys directory also makes the root key. Returns the bundle in force and
    whether a new one was issued.
    """
    moment = time.time() if now is None else now
    root_path = keys_dir / ROOT_PUBLIC_FILE
    signer_path = root_key if root_key is not None else keys_dir / ROOT_KEY_FILE
    private_dir(keys_dir)
    # One issuer at a time per host: two rotations at once must not drop each other's key.
    with _locked(keys_dir):
        if not root_path.exists() and root_key is None and not signer_path.exists():
            root = create_root_key(keys_dir)
        else:
            root = load_root_public(root_path)
        return _issue_locked(keys_dir, services, moment, root, signer_path)


def _issue_locked(
    keys_dir: Path,
    services: Iterable[str],
    moment: float,
    root: VerificationKey,
    signer_path: Path,
) -> tuple[TrustBundle, bool]:
    path = keys_dir / TRUST_FILE
    try:
        current: TrustBundle | None = read_trust_file(path, root)[0]
    except KeyMaterialError:
        current = None  # none yet, or an unsigned one from an older version: start afresh
    local = [name for name in dict.fromkeys(services) if KeyRing.exists(keys_dir, name)]
    ring_keys = [
        key for name in local for key in KeyRing.load(keys_dir, name).verification_keys(moment)
    ]
    base = current.store if current is not None else TrustStore([])
    store = base.merged(ring_keys, local, now=moment)
    if current is not None and store.document() == current.store.document():
        return current, False
    # The clock (ms) is a floor, so a host whose trust.json was lost or damaged still issues a
    # version above every one it issued before; +1 orders two bundles in one millisecond.
    version = max(int(moment * 1000), 0 if current is None else current.version + 1)
    bundle = TrustBundle.sign(
        load_root_signer(signer_path, root), store, version=version, now=moment
    )
    _save_locked(path, bundle, root)
    return bundle, True


def write_trust_store(
    keys_dir: Path,
    services: Iterable[str] = SERVICES,
    *,
    now: float | None = None,
    root_key: Path | None = None,
) -> Path:
    """:func:`issue_trust_bundle`, for callers that only need ``trust.json`` up to date."""
    issue_trust_bundle(keys_dir, services, now=now, root_key=root_key)
    return keys_dir / TRUST_FILE
