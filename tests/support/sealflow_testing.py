"""Helpers for envelope tests: a sealer and an opener per service over the session's key rings."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker import Opener, Sealer, SpentIds
from keys import KeyRing, SigningKey, TrustStore, VerificationKey
from schemas import SERVICES, JobSubmitted

NOW = 1_800_000_000.0


@dataclass
class Clock:
    """A settable clock so expiry checks are tested without sleeping."""

    now: float = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class StaticTrust:
    """A trust store that never reloads (the envelope's ``TrustSource``)."""

    store: TrustStore
    refreshes: int = field(default=0)

    def lookup(self, kid: str, now: float | None = None) -> VerificationKey | None:
        return self.store.lookup(kid, now)

    def refresh(self, *, force: bool = False) -> bool:
        self.refreshes += 1
        return False


@dataclass
class Env:
    """Everything a test needs to seal and open envelopes."""

    keys_dir: Path
    clock: Clock
    signing: dict[str, SigningKey]
    trust: StaticTrust

    def sealer(self, service: str, **kwargs: object) -> Sealer:
        return Sealer(self.signing[service], clock=self.clock, **kwargs)  # type: ignore[arg-type]

    def opener(self, service: str = "worker", **kwargs: object) -> Opener:
        kwargs.setdefault("spent", SpentIds(1000))
        return Opener(service, self.trust, clock=self.clock, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class EnvelopeKeys:
    """Every service's signing key and the trust store over them, loaded once and only read
    (loading an RSA key validates it, which costs more than copying the files)."""

    keys_dir: Path
    signing: Mapping[str, SigningKey]
    trust: TrustStore

    @classmethod
    def load(cls, keys_dir: Path) -> EnvelopeKeys:
        """The keys of the rings in ``keys_dir`` (``keys_testing.make_rings``)."""
        return cls(
            keys_dir=keys_dir,
            signing={s: KeyRing.load(keys_dir, s).signing_key() for s in SERVICES},
            trust=TrustStore.from_rings(keys_dir),
        )

    def env(self, keys_dir: Path | None = None) -> Env:
        """A test's own ``Env`` over these keys: a fresh clock and trust-source wrapper.
        ``keys_dir``: a copy of the rings (``keys_testing.copy_rings``) for one that writes."""
        return Env(
            keys_dir=keys_dir if keys_dir is not None else self.keys_dir,
            clock=Clock(),
            signing=dict(self.signing),
            trust=StaticTrust(self.trust),
        )


def job_message(owner: str = "alice") -> JobSubmitted:
    """A valid ``job.submitted`` body."""
    return JobSubmitted(
        job_id=secrets.token_hex(16),
        owner=owner,
        filename="report.pdf",
        content_type="application/pdf",
        size=1234,
        blob_sha256="a" * 64,
        submitted_at=datetime.now(UTC),
    )


async def queue_counts(channel: Any, name: str) -> tuple[int, int]:
    """(messages, consumers) of a queue, asked of the broker now.

    A robust channel answers a passive ``declare_queue`` from its cache, with the counts of
    the first declaration; the underlying channel asks the broker.
    """
    underlay = await channel.get_underlay_channel()
    result = await underlay.queue_declare(name, passive=True)
    return int(result.message_count or 0), int(result.consumer_count or 0)
