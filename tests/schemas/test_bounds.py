"""Every string, list, mapping and integer on the wire is bounded, and each bound holds."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import SCHEMA_MODELS, schema_documents

Payload = Callable[[str], dict[str, Any]]


def _walk(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for position, value in enumerate(node):
            yield from _walk(value, f"{path}/{position}")


def _unbounded(schema: dict[str, Any]) -> list[str]:
    problems = []
    for path, node in _walk(schema, "#"):
        kind = node["type"]
        if kind == "string" and not (
            "maxLength" in node or "enum" in node or "const" in node or "format" in node
        ):
            problems.append(f"{path}: string without maxLength")
        elif kind == "array" and "maxItems" not in node:
            problems.append(f"{path}: array without maxItems")
        elif kind == "object" and node.get("additionalProperties", True) is not False:
            if "maxProperties" not in node:
                problems.append(f"{path}: mapping without maxProperties")
        elif kind in {"integer", "number"} and "const" not in node:
            has_max = "maximum" in node or "exclusiveMaximum" in node
            has_min = "minimum" in node or "exclusiveMinimum" in node
            if not (has_max and has_min):
                problems.append(f"{path}: {kind} without both bounds")
    return problems


@pytest.mark.parametrize("name", sorted(SCHEMA_MODELS))
def test_every_field_is_bounded(name: str) -> None:
    assert _unbounded(schema_documents()[name]) == []


def test_the_walker_notices_an_unbounded_string() -> None:
    assert _unbounded({"type": "object", "properties": {"x": {"type": "string"}}}) != []


LONG = "x" * 256

BAD_VALUES: list[tuple[str, str, object]] = [
    ("job.submitted", "job_id", "not-a-job-id"),
    ("job.submitted", "owner", LONG),
    ("job.submitted", "owner", ""),
    ("job.submitted", "filename", "../x"),
    ("job.submitted", "filename", "a/b"),
    ("job.submitted", "filename", "a\x00b"),
    ("job.submitted", "filename", ".."),
    ("job.submitted", "filename", LONG),
    ("job.submitted", "content_type", "text/plain; charset=utf-8"),
    ("job.submitted", "content_type", "TEXT/PLAIN"),
    ("job.submitted", "size", 2**30 + 1),
    ("job.submitted", "size", -1),
    ("job.submitted", "blob_sha256", "AB" * 32),
    ("parse.requested", "filename", "..\\x"),
    ("parse.requested", "size", 2**31),
    ("parse.completed", "text", "x" * 4_000_001),
    ("parse.completed", "metadata", {f"k{i}": i for i in range(65)}),
    ("parse.completed", "metadata", {"k" * 65: 1}),
    ("parse.completed", "metadata", {"": 1}),
    ("parse.completed", "metadata", {"title": "t" * 1025}),
    ("parse.completed", "metadata", {"big": 2**63}),
    ("parse.completed", "metadata", {"small": -(2**63) - 1}),
    ("parse.completed", "metadata", {"huge": 1e300}),
    ("parse.completed", "metadata", {"nested": {"a": 1}}),
    ("parse.completed", "metadata", {"list": [1]}),
    ("parse.completed", "chunks", [{"index": i, "start": 0, "end": 0} for i in range(10_001)]),
    ("parse.completed", "pages", -1),
    ("parse.completed", "pages", 100_001),
    ("parse.completed", "parser", "p" * 33),
    ("parse.completed", "duration_ms", -1),
    ("parse.completed", "duration_ms", 86_400_001),
    ("parse.failed", "reason", "bored"),
    ("parse.failed", "detail", "d" * 1001),
    ("parse.failed", "permanent", "yes"),
    ("job.progress", "state", "paused"),
    ("job.completed", "chars", 4_000_001),
    ("job.completed", "chunks", 10_001),
    ("job.completed", "chunks", -1),
    ("job.failed", "reason", "Not-Snake"),
    ("job.failed", "reason", "r" * 65),
    ("job.failed", "detail", "d" * 1001),
    ("audit.event", "event_id", "1" * 31),
    ("audit.event", "type", "a.b.c.d"),
    ("audit.event", "actor", LONG),
    ("audit.event", "action", "a" * 65),
    ("audit.event", "action", ""),
    ("audit.event", "outcome", "maybe"),
    ("audit.event", "reason", "r" * 65),
    ("audit.event", "source", "mallory"),
    ("audit.event", "trace", "0" * 32),
    ("audit.event", "detail", "d" * 1001),
    ("control.revocation", "kind", "user"),
    ("control.revocation", "value", LONG),
    ("control.revocation", "value", "not-hex"),
    ("control.revocation", "reason", "r" * 201),
    ("control.revocation", "until", "2025-11-23T09:00:00Z"),
    ("control.keyset", "kids", [f"kid-{i}" for i in range(17)]),
    ("control.keyset", "kids", ["kid-1", "kid-1"]),
    ("control.keyset", "kids", ["bad kid"]),
    ("control.keyset", "service", "mallory"),
    ("envelope.claims", "iss", "mallory"),
    ("envelope.claims", "aud", ["parser"]),
    ("envelope.claims", "sub", LONG),
    ("envelope.claims", "scope", "a  b"),
    ("envelope.claims", "scope", " ".join(["s" * 64] * 16)),
    ("envelope.claims", "iat", -1),
    ("envelope.claims", "exp", 2**40 + 1),
    ("envelope.claims", "nbf", 1.5),
    ("envelope.claims", "jti", "J" * 32),
    ("envelope.claims", "typ", "Job.Submitted"),
    ("envelope.claims", "dig", "sha-256=" + "A" * 44),
    ("envelope.claims", "job", "0" * 31),
    ("envelope.claims", "trace", "t" * 32),
    ("envelope.claims", "act", {"sub": ""}),
]


@pytest.mark.parametrize(
    ("name", "field", "value"), BAD_VALUES, ids=lambda v: repr(v)[:30] if isinstance(v, str) else ""
)
def test_out_of_bounds_value_is_rejected(
    name: str, field: str, value: object, payload: Payload
) -> None:
    data = {**payload(name), field: value}
    with pytest.raises(ValidationError) as info:
        SCHEMA_MODELS[name].model_validate_json(json.dumps(data))
    assert info.value.error_count() >= 1


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("job.submitted", "size", 2**30),
        ("job.submitted", "size", 0),
        ("job.submitted", "owner", "x" * 255),
        ("job.submitted", "filename", "x" * 255),
        ("parse.completed", "metadata", {f"k{i}": "v" * 1024 for i in range(64)}),
        ("parse.completed", "metadata", {"max": 2**63 - 1, "min": -(2**63), "f": 1e18}),
        ("parse.failed", "detail", "d" * 1000),
        ("control.keyset", "kids", [f"kid-{i}" for i in range(16)]),
        ("envelope.claims", "exp", 2**40),
        ("audit.event", "type", "a.b.c"),
    ],
)
def test_value_at_the_bound_is_accepted(
    name: str, field: str, value: object, payload: Payload
) -> None:
    data = {**payload(name), field: value}
    model = SCHEMA_MODELS[name].model_validate_json(json.dumps(data))
    assert getattr(model, field) == value
