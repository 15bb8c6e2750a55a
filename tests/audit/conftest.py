"""Fixtures for the audit tests: keys made in tmp_path, events, and a log-file tamperer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from store_testing import postgres_url as postgres_url  # the session fixture, registered here

from audit.record import record_hash
from audit.segments import CHECKPOINTS_FILE, segment_name
from keys import KeyRing, SigningKey, TrustStore
from schemas import AuditEvent

EventFactory = Callable[..., AuditEvent]


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def ring(keys_dir: Path) -> KeyRing:
    return KeyRing.create(keys_dir, "audit")


@pytest.fixture
def signer(ring: KeyRing) -> SigningKey:
    return ring.signing_key()


@pytest.fixture
def trust(keys_dir: Path, ring: KeyRing) -> TrustStore:
    return TrustStore.from_rings(keys_dir, ("audit",))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def log_dir(data_dir: Path) -> Path:
    return data_dir / "audit"


@pytest.fixture
def make_event() -> EventFactory:
    counter = iter(range(1, 1_000_000))

    def make(
        *,
        type: str = "job.submitted",
        actor: str | None = "alice",
        job: str | None = None,
        outcome: str = "success",
        event_id: str | None = None,
        detail: str | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            event_id=event_id or uuid.uuid4().hex,
            ts=datetime.now(UTC),
            type=type,
            actor=actor,
            subject="alice",
            action="submit",
            outcome=outcome,  # type: ignore[arg-type]
            job=job,
            source="gateway",
            detail=detail if detail is not None else f"event {next(counter)}",
        )

    return make


class LogFiles:
    """Reads and rewrites the raw files of a log directory, the way an attacker would."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def segment(self, number: int = 1) -> Path:
        return self.directory / segment_name(number)

    def records(self, number: int = 1) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.segment(number).read_text().splitlines()]

    def write_records(self, records: list[dict[str, Any]], number: int = 1) -> None:
        text = "".join(
            json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in records
        )
        self.segment(number).write_text(text)

    def checkpoints(self) -> list[dict[str, Any]]:
        path = self.directory / CHECKPOINTS_FILE
        return [json.loads(line) for line in path.read_text().splitlines()]

    def write_checkpoints(self, checkpoints: list[dict[str, Any]]) -> None:
        path = self.directory / CHECKPOINTS_FILE
        path.write_text("".join(json.dumps(c) + "\n" for c in checkpoints))

    @staticmethod
    def rehash(record: dict[str, Any]) -> dict[str, Any]:
        """The record with its ``hash`` recomputed over its (possibly edited) content."""
        digest = record_hash(record["seq"], record["ts"], record["event"], record["prev"])
        return {**record, "hash": digest}


@pytest.fixture
def files(log_dir: Path) -> LogFiles:
    return LogFiles(log_dir)
