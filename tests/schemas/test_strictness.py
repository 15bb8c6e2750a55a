"""Wire models are closed, strict and frozen."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import SCHEMA_MODELS, JobSubmitted, WireMessage

NAMES = sorted(SCHEMA_MODELS)
Payload = Callable[[str], dict[str, Any]]


@pytest.mark.parametrize("name", NAMES)
def test_unknown_field_is_rejected(name: str, payload: Payload) -> None:
    data = {**payload(name), "surprise": 1}
    with pytest.raises(ValidationError) as info:
        SCHEMA_MODELS[name].model_validate_json(json.dumps(data))
    assert info.value.errors()[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize("name", NAMES)
def test_missing_required_field_is_rejected(name: str, payload: Payload) -> None:
    model = SCHEMA_MODELS[name]
    required = [key for key, field in model.model_fields.items() if field.is_required()]
    for key in required:
        data = payload(name)
        del data[key]
        with pytest.raises(ValidationError):
            model.model_validate_json(json.dumps(data))


@pytest.mark.parametrize("name", NAMES)
def test_models_are_frozen(name: str, payload: Payload) -> None:
    instance = SCHEMA_MODELS[name].model_validate_json(json.dumps(payload(name)))
    field = next(iter(SCHEMA_MODELS[name].model_fields))
    with pytest.raises(ValidationError):
        setattr(instance, field, None)


@pytest.mark.parametrize("name", [n for n in NAMES if issubclass(SCHEMA_MODELS[n], WireMessage)])
@pytest.mark.parametrize("version", [2, 0, "1", True, 1.0])
def test_other_schema_versions_are_rejected(name: str, version: object, payload: Payload) -> None:
    data = {**payload(name), "schema_version": version}
    with pytest.raises(ValidationError):
        SCHEMA_MODELS[name].model_validate_json(json.dumps(data))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", "1234"),
        ("size", 1234.0),
        ("size", True),
        ("owner", 42),
        ("job_id", ["0123456789abcdef0123456789abcdef"]),
        ("submitted_at", 1_763_892_000),
    ],
)
def test_json_values_are_not_coerced(field: str, value: object, payload: Payload) -> None:
    data = {**payload("job.submitted"), field: value}
    with pytest.raises(ValidationError):
        JobSubmitted.model_validate_json(json.dumps(data))


def test_python_mode_rejects_iso_string_for_datetime(payload: Payload) -> None:
    with pytest.raises(ValidationError):
        JobSubmitted.model_validate(payload("job.submitted"))


DATETIME_FIELDS = [
    ("audit.event", "ts"),
    ("control.keyset", "changed_at"),
    ("control.revocation", "issued_at"),
    ("control.revocation", "until"),
    ("job.completed", "finished_at"),
    ("job.failed", "finished_at"),
    ("job.progress", "at"),
    ("job.submitted", "submitted_at"),
    ("parse.requested", "requested_at"),
]


def _date_time_properties(schema: dict[str, Any]) -> list[str]:
    found = []
    for key, prop in schema["properties"].items():
        options = prop.get("anyOf", [prop])
        if any(option.get("format") == "date-time" for option in options):
            found.append(key)
    return found


def test_datetime_field_list_is_complete() -> None:
    found = [
        (name, key)
        for name in NAMES
        for key in _date_time_properties(SCHEMA_MODELS[name].model_json_schema())
    ]
    assert sorted(found) == DATETIME_FIELDS


@pytest.mark.parametrize(("name", "key"), DATETIME_FIELDS)
def test_naive_datetimes_are_rejected(name: str, key: str, payload: Payload) -> None:
    naive = {**payload(name), key: "2025-11-23T10:00:00"}
    with pytest.raises(ValidationError) as info:
        SCHEMA_MODELS[name].model_validate_json(json.dumps(naive))
    assert info.value.errors()[0]["type"] == "timezone_aware"


def test_naive_datetime_object_is_rejected(payload: Payload) -> None:
    data = JobSubmitted.model_validate_json(json.dumps(payload("job.submitted"))).model_dump()
    data["submitted_at"] = datetime(2025, 11, 23, 10, 0, 0)
    with pytest.raises(ValidationError):
        JobSubmitted.model_validate(data)


def test_non_finite_floats_are_rejected(payload: Payload) -> None:
    data = payload("parse.completed")
    raw = json.dumps(data).replace('"ratio": 0.5', '"ratio": Infinity')
    with pytest.raises(ValidationError):
        SCHEMA_MODELS["parse.completed"].model_validate_json(raw)


def test_errors_do_not_echo_input(payload: Payload) -> None:
    data = {**payload("job.submitted"), "owner": "secret-token\x00"}
    with pytest.raises(ValidationError) as info:
        JobSubmitted.model_validate_json(json.dumps(data))
    assert "secret-token" not in str(info.value)
