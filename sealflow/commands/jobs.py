"""``sealflow upload``, ``jobs`` and ``result``: the gateway's job API from the command line."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from sealflow.client import (
    ApiError,
    JobPage,
    JobResult,
    JobView,
    UploadedJob,
    UploadError,
)
from sealflow.commands._client import ClientContext, run_client

__all__ = ["jobs", "result", "upload"]

_STATES: Final = ("queued", "processing", "done", "failed")
_COLOURS: Final = {"done": "green", "failed": "red", "rejected": "red"}


@dataclass
class _Row:
    """One uploaded (or refused) file and what became of it."""

    path: Path
    job: UploadedJob | None = None
    view: JobView | None = None
    refused: str | None = None

    @property
    def state(self) -> str:
        if self.refused is not None:
            return "rejected"
        if self.view is not None:
            return self.view.state
        return self.job.state if self.job is not None else "unknown"

    @property
    def detail(self) -> str:
        if self.refused is not None:
            return self.refused
        if self.view is not None and self.view.error_reason:
            return f"{self.view.error_reason}: {self.view.error_detail or ''}".rstrip(": ")
        return ""


def _state(state: str) -> str:
    return f"[{_COLOURS.get(state, 'yellow')}]{escape(state)}[/]"


def _job_table(*columns: str) -> Table:
    """A table whose first column shows job ids whole, so that they can be copied back."""
    table = Table()
    table.add_column("job", no_wrap=True, overflow="fold", min_width=32)
    for column in columns:
        table.add_column(column)
    return table


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment is not None else ""


async def _upload_all(context: ClientContext, paths: list[Path], wait: float | None) -> list[_Row]:
    rows = [_Row(path) for path in paths]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        for row in rows:
            try:
                size = row.path.stat().st_size
            except OSError as error:
                row.refused = f"cannot read {row.path}: {error.strerror}"
                continue
            task: TaskID = progress.add_task(escape(row.path.name), total=size or 1)

            def advance(sent: int, task: TaskID = task, size: int = size) -> None:
                progress.update(task, completed=sent if size else 1)

            try:
                row.job = await context.gateway.upload(row.path, advance)
            except (ApiError, UploadError) as error:
                row.refused = str(error)
                progress.update(task, description=f"{escape(row.path.name)} [red](refused)[/]")
    accepted = [row for row in rows if row.job is not None]
    if wait is None or not accepted:
        return rows
    waits = [
        asyncio.create_task(context.gateway.wait(row.job.job_id))
        for row in accepted
        if row.job is not None
    ]
    # Jobs still running at the deadline are simply shown in the state they reached.
    done, pending = await asyncio.wait(waits, timeout=wait)
    for waiter in pending:
        waiter.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for waiter in done:
        failure = waiter.exception()
        if failure is not None:
            raise failure
    for row in accepted:
        if row.job is not None:
            row.view = await context.gateway.get_job(row.job.job_id)
    return rows


@click.command()
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
)
@click.option(
    "--wait",
    "wait",
    type=click.FloatRange(min=0, max=86_400),
    default=None,
    metavar="SECONDS",
    help="Wait up to SECONDS for every job to finish; exit 1 unless all are done.",
)
def upload(files: tuple[Path, ...], wait: float | None) -> None:
    """Upload FILES to the gateway, each as a job, with a progress bar per file.

    Prints a table of the jobs (with --wait, of their final states). Exits 1 when a file was
    refused, or when waiting and not every job reached done.
    """

    async def main(context: ClientContext) -> list[_Row]:
        return await _upload_all(context, list(files), wait)

    rows = run_client(main)
    table = _job_table("file", "state", "detail")
    for row in rows:
        job_id = row.job.job_id if row.job is not None else "-"
        table.add_row(job_id, escape(row.path.name), _state(row.state), escape(row.detail))
    Console().print(table)
    wanted = {"done"} if wait is not None else {"queued", "processing", "done"}
    if not all(row.state in wanted for row in rows):
        raise SystemExit(1)


@click.command()
@click.option("--state", type=click.Choice(_STATES), default=None, help="Only jobs in this state.")
@click.option(
    "--all", "all_owners", is_flag=True, help="Every user's jobs, not only yours (admins only)."
)
@click.option(
    "--limit",
    type=click.IntRange(1, 200),
    default=50,
    show_default=True,
    help="How many jobs to list, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def jobs(state: str | None, all_owners: bool, limit: int, as_json: bool) -> None:
    """List your jobs on the gateway (every user's with --all, for admins)."""

    async def main(context: ClientContext) -> JobPage:
        return await context.gateway.list_jobs(state=state, all_owners=all_owners, limit=limit)

    page = run_client(main)
    if as_json:
        click.echo(page.model_dump_json(indent=2))
        return
    if not page.jobs:
        click.echo("No jobs." if state is None else f"No {state} jobs.")
        return
    table = _job_table("file", "state", "created", "finished", "error")
    if all_owners:
        table.add_column("owner")
    for job in page.jobs:
        error = (
            f"{job.error_reason}: {job.error_detail or ''}".rstrip(": ") if job.error_reason else ""
        )
        cells = [
            job.job_id,
            escape(job.filename),
            _state(job.state),
            _when(job.created_at),
            _when(job.finished_at),
            escape(error),
        ]
        if all_owners:
            cells.append(escape(job.owner))
        table.add_row(*cells)
    console = Console()
    console.print(table)
    if page.next is not None:
        console.print(f"(more jobs exist; raise --limit above {limit} to see them)")


@click.command()
@click.argument("job_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.option(
    "--all", "all_owners", is_flag=True, help="Look a short ID up among every user's jobs (admins)."
)
def result(job_id: str, as_json: bool, all_owners: bool) -> None:
    """Print the text extracted from job ID (its metadata and chunks too, with --json).

    ID is a whole job id or a unique prefix of one (at least 4 characters).
    """

    async def main(context: ClientContext) -> JobResult:
        full_id = await context.gateway.resolve_job_id(job_id, all_owners=all_owners)
        return await context.gateway.result(full_id)

    answer = run_client(main)
    if as_json:
        click.echo(json.dumps(answer.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        click.echo(answer.text)
