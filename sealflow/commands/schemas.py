"""``sealflow schemas``: publish the JSON Schemas of the wire models."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from schemas import SchemaExportError, export_json_schemas

__all__ = ["schemas"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def schemas() -> None:
    """JSON Schemas of every message, audit event, control message and envelope claim set."""


@schemas.command("export")
@click.argument(
    "directory",
    metavar="DIR",
    type=click.Path(file_okay=False, dir_okay=True, writable=True, path_type=Path),
)
def export(directory: Path) -> None:
    """Write one <name>.schema.json per wire model into DIR (created if missing)."""
    try:
        written = export_json_schemas(directory)
    except SchemaExportError as exc:
        raise click.ClickException(f"{exc.detail} [{exc.reason}]") from exc
    console = Console(soft_wrap=True, highlight=False)
    for path in written:
        console.print(Text(str(path)))
    console.print(Text(f"wrote {len(written)} schema files to {directory}", style="green"))
