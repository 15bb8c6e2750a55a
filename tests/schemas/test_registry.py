"""model_for maps message types to models; audit.* keys all map to AuditEvent."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import TypeAdapter

from schemas import (
    MESSAGE_MODELS,
    AuditEvent,
    JobSubmitted,
    KeySetChanged,
    MessageType,
    ParseCompleted,
    Revocation,
    SchemaError,
    UnknownMessageType,
    model_for,
)

EXPECTED = {
    "job.submitted": "JobSubmitted",
    "parse.requested": "ParseRequested",
    "parse.completed": "ParseCompleted",
    "parse.failed": "ParseFailed",
    "job.progress": "JobProgress",
    "job.completed": "JobCompleted",
    "job.failed": "JobFailed",
    "audit.event": "AuditEvent",
    "control.revocation": "Revocation",
    "control.keyset": "KeySetChanged",
}


def test_registry_holds_exactly_the_message_models() -> None:
    assert {key: model.__name__ for key, model in MESSAGE_MODELS.items()} == EXPECTED


@pytest.mark.parametrize("message_type", sorted(EXPECTED))
def test_registered_keys_are_valid_message_types(message_type: str) -> None:
    assert TypeAdapter(MessageType).validate_python(message_type) == message_type
    assert message_type == MESSAGE_MODELS[message_type].MESSAGE_TYPE


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        MESSAGE_MODELS["job.evil"] = JobSubmitted  # type: ignore[index]


@pytest.mark.parametrize(
    ("message_type", "model"),
    [
        ("job.submitted", JobSubmitted),
        ("parse.completed", ParseCompleted),
        ("control.revocation", Revocation),
        ("control.keyset", KeySetChanged),
        ("audit.event", AuditEvent),
    ],
)
def test_known_type_gives_its_model(message_type: str, model: type) -> None:
    assert model_for(message_type) is model


@pytest.mark.parametrize(
    "message_type",
    ["audit.envelope.rejected", "audit.job.submitted", "audit.login", "audit.a.b.c"],
)
def test_any_valid_audit_key_gives_audit_event(message_type: str) -> None:
    assert model_for(message_type) is AuditEvent


@pytest.mark.parametrize(
    "message_type",
    [
        "",
        "job",
        "job.unknown",
        "envelope.claims",
        "audit",
        "audit.",
        "audit..x",
        "audit.Envelope",
        "audit.a.b.c.d",
        "audit.x\n",
        "audit." + "x" * 59,
        "audits.x",
        "x" * 10_000,
    ],
)
def test_unknown_type_raises_unknown_message_type(message_type: str) -> None:
    with pytest.raises(UnknownMessageType) as info:
        model_for(message_type)
    assert info.value.reason == "unknown_type"
    assert isinstance(info.value, SchemaError)
    assert len(str(info.value)) < 120


def test_audit_event_routing_key_maps_back_to_audit_event(
    payload: Callable[[str], dict[str, Any]],
) -> None:
    event = AuditEvent.model_validate_json(json.dumps(payload("audit.event")))
    assert event.routing_key == "audit.envelope.rejected"
    assert model_for(event.routing_key) is AuditEvent
    assert TypeAdapter(MessageType).validate_python(event.routing_key) == event.routing_key


def test_longest_audit_type_still_makes_a_valid_routing_key(
    payload: Callable[[str], dict[str, Any]],
) -> None:
    longest = "a" * 20 + "." + "b" * 20 + "." + "c" * 16
    event = AuditEvent.model_validate_json(json.dumps({**payload("audit.event"), "type": longest}))
    assert len(event.routing_key) == 64
    assert model_for(event.routing_key) is AuditEvent
    assert TypeAdapter(MessageType).validate_python(event.routing_key) == event.routing_key
