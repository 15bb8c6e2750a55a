"""``sealflow audit``: run the audit daemon, or ``tail``, ``verify`` and ``query`` its log."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, Final, TypeVar

import click
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from audit import (
    AuditFilter,
    AuditLogError,
    AuditRecord,
    AuditSettings,
    adopt_anchor,
    follow_records,
    iter_records,
    verify_log,
)
from audit.checkpoint import AUDIT_SERVICE
from audit.record import event_to_json, format_ts
from keys import TRUST_FILE, KeyMaterialError, KeyRing, TrustStore, load_trust_store
from schemas import SealflowError
from sealflow.commands._local import say_when_empty, say_where

__all__ = ["audit"]

_RELATIVE: Final = re.compile(r"(\d{1,9})([smhdw])")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_OUTCOME_STYLES: Final = {
    "success": "green",
    "failure": "red",
    "rejected": "red",
    "denied": "yellow",
}
_EVENT_FIELDS: Final = ("actor", "subject", "action", "reason", "job", "source", "jti", "trace")


def _settings(ctx: click.Context) -> AuditSettings:
    settings = ctx.find_object(AuditSettings)
    if settings is None:
        raise click.UsageError("audit settings are missing")
    return settings


def _parse_since(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> datetime | None:
    if value is None:
        return None
    match = _RELATIVE.fullmatch(value.strip())
    if match is not None:
        amount, unit = int(match.group(1)), match.group(2)
        return datetime.now(UTC) - timedelta(**{_UNITS[unit]: amount})
    try:
        since = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise click.BadParameter(
            "expected ISO 8601 (e.g. 2025-01-31T12:00:00Z) or a relative time like 10m, 2h, 1d"
        ) from exc
    return since if since.tzinfo is not None else since.replace(tzinfo=UTC)


_F = TypeVar("_F", bound=Callable[..., Any])


def _filter_options(func: _F) -> _F:
    options = (
        click.option(
            "--type",
            "types",
            multiple=True,
            metavar="TYPE",
            help="Only events of this type (repeatable).",
        ),
        click.option("--actor", help="Only events by this actor."),
        click.option("--job", help="Only events about this job id."),
        click.option(
            "--since",
            callback=_parse_since,
            metavar="WHEN",
            help="Only records written since WHEN: ISO 8601 (UTC if no offset) or 10m/2h/1d.",
        ),
        click.option("--json", "as_json", is_flag=True, help="One JSON object per line."),
    )
    for option in reversed(options):
        func = option(func)
    return func


def _make_filter(
    types: tuple[str, ...], actor: str | None, job: str | None, since: datetime | None
) -> AuditFilter:
    return AuditFilter(types=frozenset(types) if types else None, actor=actor, job=job, since=since)


def _record_json(record: AuditRecord) -> str:
    return json.dumps(
        {
            "seq": record.seq,
            "ts": format_ts(record.ts),
            "event": event_to_json(record.event),
            "prev": record.prev,
            "hash": record.hash,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _record_text(record: AuditRecord) -> Text:
    event = record.event
    style = _OUTCOME_STYLES.get(event.outcome, "")
    text = Text(no_wrap=True, overflow="ignore")
    text.append(f"{record.seq:>7} ", style="dim")
    text.append(f"{format_ts(record.ts)} ", style="dim")
    text.append(f"{event.outcome.upper():<8}", style=f"bold {style}")
    text.append(f" {event.type}", style=style)
    for name in _EVENT_FIELDS:
        value = getattr(event, name)
        if value is not None:
            text.append(f" {name}=", style="dim")
            text.append(str(value))
    if event.detail:
        text.append(" detail=", style="dim")
        text.append(json.dumps(event.detail, ensure_ascii=False))
    return text


class _Printer:
    """Prints records as rich text lines (colour only on a terminal) or as JSON lines."""

    def __init__(self, *, as_json: bool) -> None:
        self._as_json = as_json
        self._console = Console(highlight=False, soft_wrap=True)

    def print(self, records: Iterable[AuditRecord]) -> int:
        count = 0
        for record in records:
            if self._as_json:
                click.echo(_record_json(record))
            else:
                self._console.print(_record_text(record))
            count += 1
        return count


def _existing_log(settings: AuditSettings) -> Path:
    """The log directory, or a one-line exit naming where it was looked for."""
    directory = settings.audit_dir
    if not directory.is_dir():
        raise click.ClickException(
            f"no audit log at {directory.resolve()}: point SEALFLOW_DATA_DIR (or --data-dir) at "
            "the data directory of the host that runs the audit daemon"
        )
    return directory


def _fail(error: AuditLogError) -> click.ClickException:
    where = f" ({error.location})" if error.location and error.location not in error.detail else ""
    return click.ClickException(f"{error.detail}{where} [{error.reason}]")


@click.group(invoke_without_command=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory holding audit/ (default: $SEALFLOW_DATA_DIR or ./var).",
)
@click.option(
    "--keys-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Key rings directory (default: $SEALFLOW_KEYS_DIR or ./var/keys).",
)
@click.pass_context
def audit(ctx: click.Context, data_dir: Path | None, keys_dir: Path | None) -> None:
    """Run the audit daemon; or tail, verify and query the tamper-evident audit log."""
    overrides: dict[str, Path] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if keys_dir is not None:
        overrides["keys_dir"] = keys_dir
    try:
        ctx.obj = AuditSettings().model_copy(update=overrides)
    except ValidationError as exc:
        fields = ", ".join(str(error["loc"][0]).upper() for error in exc.errors() if error["loc"])
        raise click.ClickException(f"invalid SEALFLOW_* setting(s): {fields}") from exc
    if ctx.invoked_subcommand is not None:
        say_where(data_dir=ctx.obj.data_dir, keys_dir=ctx.obj.keys_dir)
        return
    # The daemon reads its own settings from the environment: pass the options on that way.
    for name, path in overrides.items():
        os.environ[f"SEALFLOW_{name.upper()}"] = str(path)
    from audit.daemon import serve
    from broker import run_daemon

    try:
        run_daemon("audit", serve)
    except AuditLogError as exc:
        raise _fail(exc) from exc
    except SealflowError as exc:
        raise click.ClickException(f"{exc} [{exc.reason}]") from exc


@audit.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing records as they are appended.")
@click.option(
    "-n",
    "--lines",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many of the last matching records to print first.",
)
@_filter_options
@click.pass_context
def tail(
    ctx: click.Context,
    follow: bool,
    lines: int,
    types: tuple[str, ...],
    actor: str | None,
    job: str | None,
    since: datetime | None,
    as_json: bool,
) -> None:
    """Print the last records of the audit log, optionally following it (Ctrl-C stops)."""
    directory = _existing_log(_settings(ctx))
    flt = _make_filter(types, actor, job, since)
    printer = _Printer(as_json=as_json)
    try:
        if not follow:
            shown = printer.print(iter_records(directory, flt, last=lines))
            say_when_empty(shown, "matching audit records", directory, "SEALFLOW_DATA_DIR")
            return
        asyncio.run(_follow(directory, flt, lines, printer))
    except AuditLogError as exc:
        raise _fail(exc) from exc
    except BrokenPipeError:
        raise  # click exits quietly when the reader (e.g. `head`) goes away
    except OSError as exc:
        raise click.ClickException(f"cannot read the audit log: {exc}") from exc
    except KeyboardInterrupt:
        return


async def _follow(directory: Path, flt: AuditFilter, lines: int, printer: _Printer) -> None:
    async for record in follow_records(directory, flt, last=lines):
        printer.print((record,))


def _audit_trust(keys_dir: Path) -> TrustStore:
    """The audit service's public keys: from its ring when present, else from ``trust.json``.

    From the ring, every key it still holds is loaded (``now=0``: none filtered out as
    expired); ``verify_log`` judges each checkpoint's key at the checkpoint's own time.
    """
    if KeyRing.exists(keys_dir, AUDIT_SERVICE) or not (keys_dir / TRUST_FILE).is_file():
        ring = KeyRing.load(keys_dir, AUDIT_SERVICE)
        # Every audit key that ever signed, pruned ones included; verify_log judges each
        # key at the time of the checkpoint it signed.
        return TrustStore(
            [*ring.verification_keys(now=0.0), *ring.archived_keys()], services=[AUDIT_SERVICE]
        )
    return load_trust_store(keys_dir / TRUST_FILE)


@audit.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify(ctx: click.Context, as_json: bool) -> None:
    """Check every record's hash chain, every signed checkpoint and the anchor; exit 1 if broken.

    Fails when the log is behind its anchor (cut back) and when records after the newest
    checkpoint are older than the checkpoint interval plus slack.
    """
    settings = _settings(ctx)
    directory = settings.audit_dir
    try:
        trust = _audit_trust(settings.keys_dir)
    except KeyMaterialError as exc:
        raise click.ClickException(f"cannot load the audit keys: {exc} [{exc.reason}]") from exc
    try:
        anchor = settings.anchor()
    except AuditLogError as exc:
        raise _fail(exc) from exc
    report = verify_log(directory, trust, anchor=anchor, max_unsigned_age=settings.max_unsigned_age)
    if as_json:
        click.echo(json.dumps(asdict(report)))
    elif report.ok:
        last = f", last seq {report.records}" if report.records else ""
        click.echo(
            f"audit log intact: {report.records} records, {report.checkpoints} checkpoints"
            f"{last} ({report.detail})"
        )
    else:
        where = f" ({report.location})" if report.location else ""
        click.echo(
            f"audit log BROKEN at seq {report.first_bad_seq}{where}: {report.reason} — "
            f"{report.detail}"
        )
    ctx.exit(0 if report.ok else 1)


@audit.command()
@click.option(
    "--adopt",
    is_flag=True,
    help="Anchor the newest checkpoint of an intact log whose anchor is missing.",
)
@click.pass_context
def anchor(ctx: click.Context, adopt: bool) -> None:
    """Show the anchored checkpoint; with --adopt, re-anchor a log whose anchor was lost.

    Adopting is deliberate: a cut made to the log before it can no longer be detected. The
    daemon refuses to open a log with chained checkpoints and no anchor until this is done.
    """
    settings = _settings(ctx)
    try:
        where = asyncio.run(settings.open_anchor()) if adopt else settings.anchor()
        if adopt:
            trust = _audit_trust(settings.keys_dir)
            checkpoint = adopt_anchor(settings.audit_dir, trust, where)
            click.echo(
                f"anchored checkpoint seq {checkpoint.seq} ({format_ts(checkpoint.ts)}) at "
                f"{where.where}; a cut made before now cannot be detected"
            )
            return
        decoded = where.load()
    except AuditLogError as exc:
        raise _fail(exc) from exc
    except KeyMaterialError as exc:
        raise click.ClickException(f"cannot load the audit keys: {exc} [{exc.reason}]") from exc
    if decoded is None:
        click.echo(f"nothing is anchored at {where.where}")
        return
    checkpoint = decoded.checkpoint
    click.echo(
        f"anchored at {where.where}: checkpoint seq {checkpoint.seq} of "
        f"{format_ts(checkpoint.ts)} (hash {checkpoint.hash[:16]}…)"
    )


@audit.command()
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Print at most N records.")
@_filter_options
@click.pass_context
def query(
    ctx: click.Context,
    limit: int | None,
    types: tuple[str, ...],
    actor: str | None,
    job: str | None,
    since: datetime | None,
    as_json: bool,
) -> None:
    """Print the records that match the filters, oldest first."""
    directory = _existing_log(_settings(ctx))
    flt = _make_filter(types, actor, job, since)
    printer = _Printer(as_json=as_json)
    records = iter_records(directory, flt)
    try:
        shown = printer.print(records if limit is None else islice(records, limit))
        say_when_empty(shown, "matching audit records", directory, "SEALFLOW_DATA_DIR")
    except AuditLogError as exc:
        raise _fail(exc) from exc
    except BrokenPipeError:
        raise  # click exits quietly when the reader (e.g. `head`) goes away
    except OSError as exc:
        raise click.ClickException(f"cannot read the audit log: {exc}") from exc
