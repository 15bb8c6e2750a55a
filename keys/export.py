"""What one host needs from the operator's keys directory, and nothing else (DESIGN §6).

For each service the host runs: its key ring (``ring.json``, its private keys, ``jwks.json``
and the public archive of pruned keys). For every host: the pinned root public key and the
current trust bundle. Never the root private key, never another service's private key.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final

from keys.bundle import ROOT_PUBLIC_FILE
from keys.errors import KeyRingError
from keys.filemodes import private_dir
from keys.files import create_exclusive, read_bounded
from keys.keyring import ARCHIVE_FILE, JWKS_FILE, RING_FILE, KeyRing
from keys.trustfile import TRUST_FILE, read_trust_file

__all__ = ["export_host"]

_MAX_FILE_BYTES: Final = 4 * 1024 * 1024


def _copy(source: Path, target: Path, *, mode: int) -> None:
    data, _ = read_bounded(source, limit=_MAX_FILE_BYTES, private=mode == 0o600)
    create_exclusive(target, data, mode=mode)


def export_host(keys_dir: Path, services: Iterable[str], directory: Path) -> list[Path]:
    """Copy ``services``' rings, ``root.jwk`` and ``trust.json`` into the empty ``directory``.

    The bundle is verified against the root first, so a host never starts from a bad one.
    Returns the files written.
    """
    names = list(dict.fromkeys(services))
    if not names:
        raise KeyRingError("no_service", "name at least one service to export")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise KeyRingError(
            "export_dir_not_empty", f"{directory} is not an empty directory; refusing to mix hosts"
        )
    rings = [KeyRing.load(keys_dir, name) for name in names]
    read_trust_file(keys_dir / TRUST_FILE)
    private_dir(directory)
    written: list[Path] = []
    for ring in rings:
        target = private_dir(directory / ring.service)
        files = [(RING_FILE, 0o600), (JWKS_FILE, 0o644)]
        files += [(f"{record.kid}.pem", 0o600) for record in ring.records]
        if (ring.directory / ARCHIVE_FILE).exists():
            files.append((ARCHIVE_FILE, 0o644))
        for name, mode in files:
            _copy(ring.directory / name, target / name, mode=mode)
            written.append(target / name)
    for name in (ROOT_PUBLIC_FILE, TRUST_FILE):
        _copy(keys_dir / name, directory / name, mode=0o644)
        written.append(directory / name)
    return written
