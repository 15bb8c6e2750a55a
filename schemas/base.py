"""The base classes of every wire model: strict, closed, immutable."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, GetPydanticSchema, WithJsonSchema
from pydantic_core import core_schema

__all__ = ["SchemaVersion", "WireMessage", "WireModel"]

# pydantic's Literal validator compares by equality, so even in strict mode ``true`` and ``1.0``
# would pass as ``Literal[1]``; validate as a strict int pinned to 1 instead (still in Rust).
SchemaVersion = Annotated[
    Literal[1],
    GetPydanticSchema(lambda _source, _handler: core_schema.int_schema(ge=1, le=1, strict=True)),
    WithJsonSchema({"const": 1, "type": "integer"}),
]
"""The current schema version of every message: exactly the JSON integer 1."""


class WireModel(BaseModel):
    """Base of every model that crosses a process boundary.

    Unknown fields are rejected, nothing is coerced (in JSON mode pydantic still reads ISO
    datetimes and JSON numbers), instances are frozen, and validation errors never echo the
    offending input (bodies may hold user data or tokens).
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        allow_inf_nan=False,
        hide_input_in_errors=True,
        regex_engine="rust-regex",
        use_attribute_docstrings=True,
        validate_default=False,
        revalidate_instances="never",
    )


class WireMessage(WireModel):
    """A message body on the broker: carries ``schema_version`` and its message type.

    ``MESSAGE_TYPE`` is the routing key and the envelope ``typ`` the model is registered under.
    Optional fields default to ``None`` so a body dumped with ``exclude_none=True`` validates.
    """

    MESSAGE_TYPE: ClassVar[str]

    schema_version: SchemaVersion = 1
    """Version of this message's schema; bumped on any incompatible change."""
