"""``sealflow submit FILE…``: an operator puts documents on the pipeline from this machine.

It takes the gateway's own upload path (``gateway.uploads.store_local_file`` checks and stores
each file as an upload's part would be, ``gateway.submission.submit_document`` records the
job, publishes ``job.submitted`` sealed with the gateway's key and audits it), without HTTP
and without a token: it needs the gateway's key ring and data directory, so it is an
operator tool for the gateway's host. Users upload through the gateway (``sealflow upload``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from broker import BrokerSettings, Publisher, Sealer, Topology, connect, open_channel
from broker.auditing import BrokerAuditSink
from gateway.blobkeeper import BlobKeeper
from gateway.errors import GatewayError
from gateway.settings import GatewaySettings
from gateway.submission import Submitted, submit_document
from gateway.uploads import store_local_file
from keys import KeyRing
from keys.filemodes import private_dir
from schemas import SealflowError
from store import BlobStore, JobStore, open_store

__all__ = ["submit"]

_FINAL = {"done", "failed"}


async def _wait(store: JobStore, submitted: list[Submitted], wait: float, console: Console) -> int:
    """Wait up to ``wait`` seconds for every job to finish; 0 when all are done."""
    deadline = time.monotonic() + wait
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        for item in submitted:
            job = await store.get(item.job_id)
            states[item.job_id] = job.state if job is not None else "missing"
        if all(state in _FINAL for state in states.values()):
            break
        await asyncio.sleep(0.2)
    table = Table("job", "file", "state", "detail")
    for item in submitted:
        job = await store.get(item.job_id)
        state = job.state if job is not None else "missing"
        detail = (job.error_reason or "") if job is not None else ""
        colour = {"done": "green", "failed": "red"}.get(state, "yellow")
        table.add_row(item.job_id, item.filename, f"[{colour}]{state}[/]", detail)
    console.print(table)
    return 0 if all(state == "done" for state in states.values()) else 1


async def _submit(paths: list[Path], owner: str, wait: float | None, console: Console) -> int:
    broker_settings = BrokerSettings()
    settings = GatewaySettings(data_dir=broker_settings.data_dir, keys_dir=broker_settings.keys_dir)
    private_dir(settings.data_dir)
    store = await open_store(broker_settings.database_url, settings.data_dir)
    connection = await connect(
        broker_settings.amqp_url, timeout=broker_settings.connect_timeout, name="sealflow-submit"
    )
    try:
        channel = await open_channel(connection)
        topology = Topology(broker_settings.namespace)
        await topology.declare(channel)
        sealer = Sealer(
            KeyRing.load(broker_settings.keys_dir, "gateway").signing_key(),
            lifetime=broker_settings.envelope_lifetime,
        )
        publisher = Publisher(channel, topology, sealer)
        keeper = BlobKeeper(BlobStore(settings.data_dir / "blobs"), store)
        submitted: list[Submitted] = []
        for path in paths:
            document = await store_local_file(path, settings, keeper)
            try:
                item = await submit_document(
                    store,
                    publisher,
                    BrokerAuditSink(publisher),
                    owner=owner,
                    document=document,
                    blobs=keeper.blobs,
                    via="sealflow submit",
                )
            except BaseException:
                await keeper.discard(document.blob_sha256)
                raise
            keeper.release(document.blob_sha256)
            console.print(f"submitted [bold]{path.name}[/] as job {item.job_id}")
            submitted.append(item)
        return 0 if wait is None else await _wait(store, submitted, wait, console)
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
    """Submit FILES on the gateway's host, through the gateway's upload path (operator tool)."""
    console = Console()
    try:
        code = asyncio.run(_submit(list(files), owner, wait, console))
    except GatewayError as exc:
        raise click.ClickException(exc.detail) from exc
    except SealflowError as exc:
        raise click.ClickException(str(exc)) from exc
    raise SystemExit(code)
