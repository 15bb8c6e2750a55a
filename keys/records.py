"""What a key ring holds about each key, and the keys handed to signers and verifiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from keys.algorithms import Algorithm, PrivateKey, PublicKey

__all__ = ["KEY_STATES", "KeyRecord", "KeyState", "SigningKey", "VerificationKey"]

KeyState = Literal["next", "active", "retired"]
KEY_STATES: Final[tuple[KeyState, ...]] = get_args(KeyState)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A ring's metadata for one key; times are epoch seconds.

    ``next`` keys are published but do not sign yet, the one ``active`` key signs, and
    ``retired`` keys are still accepted until ``not_after`` (then pruned).
    """

    kid: str
    alg: Algorithm
    state: KeyState
    created_at: float
    activated_at: float | None = None
    retired_at: float | None = None
    not_after: float | None = None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The private key a service signs with, and the ``kid`` it names in the JOSE header."""

    service: str
    kid: str
    alg: Algorithm
    private_key: PrivateKey = field(repr=False)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key a receiver accepts for ``service``; ``not_after`` None means no limit."""

    service: str
    kid: str
    alg: Algorithm
    key: PublicKey = field(repr=False)
    state: KeyState
    not_after: float | None

    def accepts_at(self, now: float) -> bool:
        """True while the key may verify signatures: always, or until ``not_after``."""
        return self.not_after is None or now < self.not_after
