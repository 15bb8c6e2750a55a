"""JSON Schema export: one deterministic file per model, and the ``sealflow schemas`` CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from schemas import SCHEMA_MODELS, SchemaExportError, WireMessage, export_json_schemas
from sealflow.commands.schemas import schemas

Payload = Callable[[str], dict[str, Any]]


def test_export_writes_one_file_per_model(tmp_path: Path) -> None:
    target = tmp_path / "out" / "nested"
    written = export_json_schemas(target)
    assert written == sorted(written)
    assert [path.name for path in written] == [f"{n}.schema.json" for n in sorted(SCHEMA_MODELS)]
    assert sorted(p.name for p in target.iterdir()) == [path.name for path in written]


@pytest.mark.parametrize("name", sorted(SCHEMA_MODELS))
def test_exported_file_is_valid_identified_json(name: str, tmp_path: Path) -> None:
    export_json_schemas(tmp_path)
    text = (tmp_path / f"{name}.schema.json").read_text(encoding="utf-8")
    assert text.endswith("}\n")
    document = json.loads(text)
    model = SCHEMA_MODELS[name]
    assert document["$id"] == f"urn:sealflow:schema:{name}:v1"
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["title"] == model.__name__
    assert document["x-sealflow-schema-version"] == 1
    assert document["type"] == "object"
    assert document["additionalProperties"] is False
    assert text == json.dumps(document, indent=2, sort_keys=True) + "\n"
    if issubclass(model, WireMessage):
        assert document["properties"]["schema_version"]["const"] == 1
        assert document["x-sealflow-message-type"] == name


@pytest.mark.parametrize("name", sorted(SCHEMA_MODELS))
def test_exported_schema_describes_a_valid_payload(
    name: str, tmp_path: Path, payload: Payload
) -> None:
    export_json_schemas(tmp_path)
    document = json.loads((tmp_path / f"{name}.schema.json").read_text(encoding="utf-8"))
    keys = set(payload(name))
    assert set(document["required"]) <= keys <= set(document["properties"])


def test_export_is_deterministic(tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in export_json_schemas(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in export_json_schemas(tmp_path / "b")}
    assert first == second


def test_export_leaves_no_temporary_files(tmp_path: Path) -> None:
    export_json_schemas(tmp_path)
    export_json_schemas(tmp_path)
    assert all(path.name.endswith(".schema.json") for path in tmp_path.iterdir())


def test_export_under_a_file_raises_schema_export_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SchemaExportError) as info:
        export_json_schemas(blocker / "sub")
    assert info.value.reason == "export_failed"


def test_cli_export_creates_dir_and_lists_files(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir"
    result = CliRunner().invoke(schemas, ["export", str(target)])
    assert result.exit_code == 0, result.output
    for name in SCHEMA_MODELS:
        assert str(target / f"{name}.schema.json") in result.output
        json.loads((target / f"{name}.schema.json").read_text(encoding="utf-8"))
    assert f"wrote {len(SCHEMA_MODELS)} schema files" in result.output


def test_cli_export_reports_write_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(schemas, ["export", str(blocker / "sub")])
    assert result.exit_code == 1
    assert "export_failed" in result.output


def test_cli_export_refuses_a_file_as_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(schemas, ["export", str(blocker)])
    assert result.exit_code == 2


def test_cli_help_describes_group_and_command() -> None:
    runner = CliRunner()
    group_help = runner.invoke(schemas, ["--help"])
    assert group_help.exit_code == 0
    assert "JSON Schemas" in group_help.output
    assert "export" in group_help.output
    command_help = runner.invoke(schemas, ["export", "--help"])
    assert command_help.exit_code == 0
    assert "DIR" in command_help.output


def test_cli_export_requires_dir() -> None:
    result = CliRunner().invoke(schemas, ["export"])
    assert result.exit_code == 2
    assert "DIR" in result.output


def test_top_level_cli_reaches_schemas_export(tmp_path: Path) -> None:
    from sealflow.cli import cli

    result = CliRunner().invoke(cli, ["schemas", "export", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*.schema.json"))) == len(SCHEMA_MODELS)
