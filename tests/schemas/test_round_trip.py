"""Every wire model survives JSON and Python round trips unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from schemas import SCHEMA_MODELS, WireMessage

NAMES = sorted(SCHEMA_MODELS)


def test_fixtures_cover_every_model(payload_names: list[str]) -> None:
    assert payload_names == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_json_round_trip_is_lossless(name: str, payload: Callable[[str], dict[str, Any]]) -> None:
    model = SCHEMA_MODELS[name]
    first = model.model_validate_json(json.dumps(payload(name)))
    again = model.model_validate_json(first.model_dump_json())
    assert again == first
    assert again.model_dump_json() == first.model_dump_json()


@pytest.mark.parametrize("name", NAMES)
def test_python_round_trip_is_lossless(name: str, payload: Callable[[str], dict[str, Any]]) -> None:
    model = SCHEMA_MODELS[name]
    first = model.model_validate_json(json.dumps(payload(name)))
    assert model.model_validate(first.model_dump()) == first


@pytest.mark.parametrize("name", NAMES)
def test_dump_without_nones_still_validates(
    name: str, payload: Callable[[str], dict[str, Any]]
) -> None:
    """The broker seals bodies with exclude_none=True: every optional field defaults to None."""
    model = SCHEMA_MODELS[name]
    data = payload(name)
    optional = [key for key, field in model.model_fields.items() if not field.is_required()]
    for key in optional:
        if key != "schema_version":
            data[key] = None
    first = model.model_validate_json(json.dumps(data))
    assert model.model_validate_json(first.model_dump_json(exclude_none=True)) == first


@pytest.mark.parametrize("name", [n for n in NAMES if issubclass(SCHEMA_MODELS[n], WireMessage)])
def test_messages_carry_schema_version_one(
    name: str, payload: Callable[[str], dict[str, Any]]
) -> None:
    model = SCHEMA_MODELS[name]
    message = model.model_validate_json(json.dumps(payload(name)))
    assert message.schema_version == 1
    assert json.loads(message.model_dump_json())["schema_version"] == 1
    explicit = model.model_validate_json(json.dumps({**payload(name), "schema_version": 1}))
    assert explicit == message


def test_metadata_value_types_survive_round_trip(payload: Callable[[str], dict[str, Any]]) -> None:
    model = SCHEMA_MODELS["parse.completed"]
    parsed = model.model_validate_json(json.dumps(payload("parse.completed")))
    metadata = json.loads(parsed.model_dump_json())["metadata"]
    assert metadata == {"title": "Hi", "pages": 2, "ratio": 0.5, "draft": True, "author": None}
    assert type(metadata["draft"]) is bool
    assert type(metadata["pages"]) is int
