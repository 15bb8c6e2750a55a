"""The identity key ring, reloaded when ``sealflow keys rotate identity`` changes it on disk."""

from __future__ import annotations

from pathlib import Path

from keys import KeyRing, SigningKey, VerificationKey
from keys.keyring import RING_FILE

__all__ = ["KeySource"]


class KeySource:
    """Hands out the ring's signing and verification keys, picking up rotations without restart."""

    def __init__(self, keys_dir: Path, service: str = "identity") -> None:
        self._keys_dir = keys_dir
        self._service = service
        self._stamp = self._mtime()
        self._ring = KeyRing.load(keys_dir, service)

    def _mtime(self) -> tuple[int, int, int]:
        try:
            stat = (self._keys_dir / self._service / RING_FILE).stat()
        except OSError:
            return (-1, -1, -1)
        return (stat.st_mtime_ns, stat.st_ino, stat.st_size)

    def ring(self) -> KeyRing:
        """The current ring; re-read when ``ring.json`` changed since the last load."""
        stamp = self._mtime()
        if stamp != self._stamp:
            self._ring = KeyRing.load(self._keys_dir, self._service)
            self._stamp = stamp
        return self._ring

    def signing_key(self) -> SigningKey:
        """The active key."""
        return self.ring().signing_key()

    def verification_keys(self) -> list[VerificationKey]:
        """The keys tokens may be verified with now."""
        return self.ring().verification_keys()

    def jwks(self) -> dict[str, list[dict[str, object]]]:
        """The public JWKS."""
        return self.ring().jwks()
