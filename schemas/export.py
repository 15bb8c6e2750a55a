"""JSON Schema documents for every wire model, and writing them to a directory."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from schemas.base import WireMessage, WireModel
from schemas.envelope import EnvelopeClaims
from schemas.errors import SchemaExportError
from schemas.registry import MESSAGE_MODELS

__all__ = ["SCHEMA_MODELS", "export_json_schemas", "schema_documents"]

_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
_CLAIMS_VERSION: Final = 1

SCHEMA_MODELS: Final[Mapping[str, type[WireModel]]] = MappingProxyType(
    {**MESSAGE_MODELS, "envelope.claims": EnvelopeClaims}
)
"""Every model with a published JSON Schema, by document name (the message type for messages)."""


def _version(model: type[WireModel]) -> int:
    if issubclass(model, WireMessage):
        default = model.model_fields["schema_version"].default
        assert isinstance(default, int)
        return default
    return _CLAIMS_VERSION


def schema_documents() -> dict[str, dict[str, Any]]:
    """The JSON Schema (draft 2020-12, validation mode) of every model in ``SCHEMA_MODELS``."""
    documents: dict[str, dict[str, Any]] = {}
    for name, model in SCHEMA_MODELS.items():
        version = _version(model)
        document: dict[str, Any] = {
            "$schema": _DIALECT,
            "$id": f"urn:sealflow:schema:{name}:v{version}",
            **model.model_json_schema(mode="validation"),
        }
        document["title"] = model.__name__
        document["x-sealflow-schema-version"] = version
        if issubclass(model, WireMessage):
            document["x-sealflow-message-type"] = model.MESSAGE_TYPE
        documents[name] = document
    return documents


def _render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def export_json_schemas(directory: Path) -> list[Path]:
    """Write ``<name>.schema.json`` for every model into ``directory`` (created if missing).

    Output is deterministic (sorted keys, two-space indent, trailing newline); each file is
    replaced atomically. Returns the written paths in name order.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for name, document in sorted(schema_documents().items()):
            path = directory / f"{name}.schema.json"
            partial = directory / f".{name}.schema.json.tmp"
            partial.write_text(_render(document), encoding="utf-8")
            os.replace(partial, path)
            written.append(path)
    except OSError as exc:
        raise SchemaExportError(f"cannot write schemas to {directory}: {exc.strerror}") from exc
    return written
