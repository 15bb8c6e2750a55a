"""Valid JSON payloads for every wire model, shared by the schemas tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

JOB_ID = "0123456789abcdef0123456789abcdef"
JTI = "fedcba9876543210fedcba9876543210"
SHA = "ab" * 32
WHEN = "2025-11-23T10:00:00Z"
LATER = "2025-11-23T11:00:00+01:00"

_PAYLOADS: dict[str, dict[str, Any]] = {
    "job.submitted": {
        "job_id": JOB_ID,
        "owner": "alice@example.org",
        "filename": "report 2025.pdf",
        "content_type": "application/pdf",
        "size": 1234,
        "blob_sha256": SHA,
        "submitted_at": WHEN,
    },
    "parse.requested": {
        "job_id": JOB_ID,
        "blob_sha256": SHA,
        "filename": "notes.md",
        "content_type": "text/markdown",
        "size": 0,
        "requested_at": WHEN,
    },
    "parse.completed": {
        "job_id": JOB_ID,
        "blob_sha256": SHA,
        "text": "Hello world. Second part.",
        "metadata": {"title": "Hi", "pages": 2, "ratio": 0.5, "draft": True, "author": None},
        "chunks": [
            {"index": 0, "start": 0, "end": 12, "page": 1},
            {"index": 1, "start": 13, "end": 25, "page": 2},
        ],
        "pages": 2,
        "parser": "pdf",
        "duration_ms": 42,
    },
    "parse.failed": {
        "job_id": JOB_ID,
        "blob_sha256": SHA,
        "reason": "encrypted",
        "detail": "the PDF is encrypted",
        "permanent": True,
    },
    "job.progress": {
        "job_id": JOB_ID,
        "owner": "alice@example.org",
        "state": "processing",
        "at": WHEN,
    },
    "job.completed": {
        "job_id": JOB_ID,
        "owner": "alice@example.org",
        "finished_at": WHEN,
        "chars": 25,
        "chunks": 2,
        "pages": 2,
        "parser": "pdf",
    },
    "job.failed": {
        "job_id": JOB_ID,
        "owner": "alice@example.org",
        "reason": "parse_failed",
        "detail": "the PDF is encrypted",
        "finished_at": WHEN,
    },
    "audit.event": {
        "event_id": "11111111111111111111111111111111",
        "ts": WHEN,
        "type": "envelope.rejected",
        "actor": "gateway",
        "subject": "alice@example.org",
        "action": "open",
        "outcome": "rejected",
        "reason": "bad_signature",
        "job": JOB_ID,
        "trace": "4bf92f3577b34da6a3ce929d0e0e4736",
        "source": "worker",
        "jti": JTI,
        "detail": "signature does not verify",
    },
    "control.revocation": {
        "revocation_id": "22222222222222222222222222222222",
        "kind": "jti",
        "value": JTI,
        "reason": "replayed in the wild",
        "issued_at": WHEN,
        "until": LATER.replace("11:00", "12:00"),
    },
    "control.keyset": {
        "service": "parser",
        "kids": ["NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "kid-2"],
        "changed_at": WHEN,
        "version": 7,
        "bundle": "eyJhbGciOiJFUzI1NiJ9.eyJidW5kbGVfdmVyc2lvbiI6N30.c2lnbmF0dXJl",
    },
    "envelope.claims": {
        "iss": "worker",
        "sub": "alice@example.org",
        "aud": "parser",
        "scope": "parse:request jobs:process",
        "iat": 1_763_892_000,
        "nbf": 1_763_892_000,
        "exp": 1_763_892_300,
        "jti": JTI,
        "typ": "parse.requested",
        "dig": "sha-256=" + "x" * 42 + "A",
        "job": JOB_ID,
        "act": {"sub": "worker", "act": {"sub": "gateway"}},
        "trace": "4bf92f3577b34da6a3ce929d0e0e4736",
    },
}


@pytest.fixture
def payload() -> Callable[[str], dict[str, Any]]:
    """A fresh, valid JSON payload (plain JSON types) for a document name."""

    def make(name: str) -> dict[str, Any]:
        return json.loads(json.dumps(_PAYLOADS[name]))

    return make


@pytest.fixture
def payload_names() -> list[str]:
    return sorted(_PAYLOADS)
