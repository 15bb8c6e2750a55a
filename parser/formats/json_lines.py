"""JSON: parsed with the stdlib, flattened into readable ``path: value`` lines."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from parser.errors import ParseError
from parser.extraction import Extraction, OutputBudget
from parser.text_cleaning import clean_text
from schemas.parsing import MetadataValue

__all__ = ["JSON_MAX_DEPTH", "extract_json"]

JSON_MAX_DEPTH: Final = 64
"""Deepest nesting of arrays and objects accepted."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_TYPE_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


def extract_json(text: str, budget: OutputBudget) -> Extraction:
    """One line per leaf value, e.g. ``items[0].name: Ada``; the root alone is ``$``.

    Metadata: the top-level ``type``, its ``keys`` (objects) or ``items`` (arrays), and the
    number of ``leaves``.
    """
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ParseError("malformed", "JSON is nested too deeply") from exc
    except ValueError as exc:
        raise ParseError("malformed", f"invalid JSON: {exc}") from exc
    lines: list[str] = []
    stack: list[tuple[str, Any, int]] = [("", document, 0)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, dict | list) and value:
            if depth >= JSON_MAX_DEPTH:
                raise ParseError("malformed", f"JSON is nested deeper than {JSON_MAX_DEPTH}")
            members = value.items() if isinstance(value, dict) else enumerate(value)
            children = [(_child_path(path, key), item, depth + 1) for key, item in members]
            stack.extend(reversed(children))
            continue
        line = f"{path or '$'}: {_leaf(value)}"
        budget.charge(len(line) + 1)
        lines.append(line)
    metadata: dict[str, MetadataValue] = {
        "type": _type_name(document),
        "keys": len(document) if isinstance(document, dict) else None,
        "items": len(document) if isinstance(document, list) else None,
        "leaves": len(lines),
    }
    return Extraction(parts=("\n".join(lines),), metadata=metadata, parser="json")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(clean_text(key), ensure_ascii=False)}]"


def _leaf(value: Any) -> str:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(value)


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), "number")
