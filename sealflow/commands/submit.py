"""``sealflow submit FILE…``: put documents straight on the pipeline (until the gateway exists).

It does on this machine what the gateway will do for an upload: store the blob, record the
job, publish ``job.submitted`` sealed with the gateway's key, and audit it. It therefore needs
read access to the gateway's key ring, so it is an operator tool, not a user one.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from broker import (
    BrokerError,
    BrokerSettings,
    Publisher,
    Sealer,
    Topology,
    connect,
    make_audit_event,
    open_channel,
)
from broker.auditing import BrokerAuditSink
from keys import KeyRing
from keys.filemodes import private_dir
from schemas import JobSubmitted, SealflowError
from sealflow.client import guess_content_type
from store import BlobStore, NewJob, open_store

__all__ = ["submit"]

_FINAL = {"done", "failed"}


async def _submit(paths: list[Path], owner: str, wait: float | None, console: Console) -> int:
    settings = BrokerSettings()
    blobs = BlobStore(settings.data_dir / "blobs")
    private_dir(settings.data_dir)
    store = await open_store(settings.database_url, settings.data_dir)
    connection = await connect(
        settings.amqp_url, timeout=settings.connect_timeout, name="sealflow-submit"
    )
    try:
        channel = await open_channel(connection)
        topology = Topology(settings.namespace)
        await topology.declare(channel)
        sealer = Sealer(
            KeyRing.load(settings.keys_dir, "gateway").signing_key(),
            lifetime=settings.envelope_lifetime,
        )
        publisher = Publisher(channel, topology, sealer)
        audit = BrokerAuditSink(publisher)
        job_ids: list[tuple[str, Path]] = []
        for path in paths:
            data = path.read_bytes()
            sha = await asyncio.to_thread(blobs.put, data)
            job_id, trace = secrets.token_hex(16), secrets.token_hex(16)
            message = JobSubmitted(
                job_id=job_id,
                owner=owner,
                filename=path.name,
                content_type=guess_content_type(path),
                size=len(data),
                blob_sha256=sha,
                submitted_at=datetime.now(UTC),
            )
            await store.create(
                NewJob(
                    job_id=job_id,
                    owner=owner,
                    filename=path.name,
                    content_type=message.content_type,
                    size=len(data),
                    blob_sha256=sha,
                    trace=trace,
                )
            )
            try:
                sealed = await publisher.send(
                    message,
                    typ="job.submitted",
                    aud="worker",
                    sub=owner,
                    job=job_id,
                    act={"sub": "gateway"},
                    trace=trace,
                )
            except BrokerError:
                await store.delete(job_id)
                raise
            await audit.emit(
                make_audit_event(
                    source="gateway",
                    type="job.submitted",
                    action="submit",
                    outcome="success",
                    actor=owner,
                    subject=owner,
                    job=job_id,
                    trace=trace,
                    jti=sealed.jti,
                    detail=f"{path.name} ({len(data)} bytes) via sealflow submit",
                )
            )
            console.print(f"submitted [bold]{path.name}[/] as job {job_id}")
            job_ids.append((job_id, path))
        if wait is None:
            return 0
        deadline = time.monotonic() + wait
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            for job_id, _ in job_ids:
                job = await store.get(job_id)
                states[job_id] = job.state if job is not None else "missing"
            if all(state in _FINAL for state in states.values()):
                break
            await asyncio.sleep(0.2)
        table = Table("job", "file", "state", "detail")
        for job_id, path in job_ids:
            job = await store.get(job_id)
            state = job.state if job is not None else "missing"
            detail = (job.error_reason or "") if job is not None else ""
            colour = {"done": "green", "failed": "red"}.get(state, "yellow")
            table.add_row(job_id, path.name, f"[{colour}]{state}[/]", detail)
        console.print(table)
        return 0 if all((s == "done") for s in states.values()) else 1
    finally:
        await connection.close()
        await store.close()


@click.command()
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
)
@click.option(
    "--owner",
    default="operator",
    show_default=True,
    help="The user the jobs belong to (envelope `sub`).",
)
@click.option(
    "--wait",
    "wait",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Wait up to SECONDS for every job to finish; exit 1 unless all are done.",
)
def submit(files: tuple[Path, ...], owner: str, wait: float | None) -> None:
    """Submit FILES to the pipeline directly (operator tool until the gateway exists)."""
    console = Console()
    try:
        code = asyncio.run(_submit(list(files), owner, wait, console))
    except SealflowError as exc:
        raise click.ClickException(str(exc)) from exc
    raise SystemExit(code)
