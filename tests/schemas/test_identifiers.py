"""Each identifier type accepts what it names and rejects everything else."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas import (
    AuditType,
    BodyDigest,
    ContentType,
    Detail,
    JobId,
    Jti,
    KeyId,
    MessageType,
    ParserName,
    ReasonCode,
    SafeFilename,
    Scope,
    Sha256Hex,
    Subject,
    TraceId,
)

CASES: list[tuple[str, Any, list[str], list[object]]] = [
    (
        "JobId",
        JobId,
        [uuid.uuid4().hex, "0" * 32],
        ["A" * 32, "0" * 31, "0" * 33, str(uuid.uuid4()), "g" * 32, "0" * 32 + "\n", 12],
    ),
    ("Jti", Jti, [uuid.uuid4().hex], ["F" * 32, "", "0" * 64]),
    ("Sha256Hex", Sha256Hex, ["a" * 64, "0123456789abcdef" * 4], ["A" * 64, "a" * 63, "a" * 65]),
    (
        "TraceId",
        TraceId,
        ["4bf92f3577b34da6a3ce929d0e0e4736", "0" * 31 + "1"],
        ["0" * 32, "4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f35"],
    ),
    (
        "Subject",
        Subject,
        ["alice", "alice@example.org", "Zoë Ülker", "x" * 255, "client:cli"],
        ["", "x" * 256, "a\x00b", "a\nb", "tab\there", "esc\x1b[31m", "rlo\u202eexe", "a\u2028b"],
    ),
    (
        "Scope",
        Scope,
        ["jobs:write", "jobs:read jobs:write", "a.b_c-d:e", "x" * 64, " ".join(["s" * 64] * 15)],
        ["", " jobs", "jobs ", "a  b", "x" * 65, "a\tb", "jobs/write", " ".join(["s" * 64] * 16)],
    ),
    (
        "MessageType",
        MessageType,
        ["job.submitted", "audit.envelope.rejected", "a.b.c.d", "control.keyset"],
        [
            "job",
            "Job.submitted",
            "job..x",
            "a.b.c.d.e",
            "1job.x",
            "job.submitted\n",
            "j." + "x" * 63,
        ],
    ),
    (
        "AuditType",
        AuditType,
        ["envelope.rejected", "login", "job.submitted", "a.b.c"],
        ["a.b.c.d", "", "Envelope.rejected", "x" * 59],
    ),
    (
        "SafeFilename",
        SafeFilename,
        ["report.pdf", "a b.txt", ".hidden", "..x", "résumé.docx", "x" * 255, "a..b"],
        [
            "",
            ".",
            "..",
            "...",
            "../x",
            "a/b",
            "/etc/passwd",
            "a\\b",
            "..\\x",
            "a\x00b",
            "a\nb",
            "x" * 256,
            "evil\u202egpj.exe",
        ],
    ),
    (
        "ContentType",
        ContentType,
        ["application/pdf", "text/markdown", "application/vnd.ms-excel", "image/svg+xml"],
        [
            "application/PDF",
            "Text/plain",
            "text/plain; charset=utf-8",
            "text",
            "text/",
            "/plain",
            "text/plain/x",
            "a/" + "b" * 126,
            "text /plain",
        ],
    ),
    (
        "BodyDigest",
        BodyDigest,
        ["sha-256=" + "A" * 43, "sha-256=" + "-_" * 21 + "w"],
        ["sha-256=" + "A" * 42, "sha-256=" + "A" * 43 + "=", "sha256=" + "A" * 43, "A" * 51],
    ),
    (
        "ReasonCode",
        ReasonCode,
        ["bad_signature", "x", "a" * 64],
        ["Bad", "bad-signature", "", "_x", "a" * 65, "bad signature"],
    ),
    ("KeyId", KeyId, ["NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "k1"], ["", "a b", "k" * 129]),
    ("ParserName", ParserName, ["pdf", "markdown", "csv"], ["PDF", "", "p" * 33, "pdf parser"]),
    (
        "Detail",
        Detail,
        ["", "line one\nline two\tindented", "d" * 1000],
        ["d" * 1001, "bell\x07", "esc\x1b[2J", "c1\x9b"],
    ),
]

GOOD = [(name, tp, value) for name, tp, goods, _ in CASES for value in goods]
BAD = [(name, tp, value) for name, tp, _, bads in CASES for value in bads]


@pytest.mark.parametrize(("name", "tp", "value"), GOOD, ids=lambda v: repr(v)[:40])
def test_valid_identifier_is_accepted(name: str, tp: Any, value: str) -> None:
    assert TypeAdapter(tp).validate_python(value, strict=True) == value


@pytest.mark.parametrize(("name", "tp", "value"), BAD, ids=lambda v: repr(v)[:40])
def test_invalid_identifier_is_rejected(name: str, tp: Any, value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(tp).validate_python(value, strict=True)
