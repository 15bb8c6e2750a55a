"""Fault-injection helpers: a short broker outage, and counters of what the pipeline did.

The daemons run as real processes through ``daemon_processes`` (shared with the bench).
:func:`broker_outage` stops the local RabbitMQ
application and always starts it again. :class:`JobLedger` submits jobs the way the gateway
does (blob, record, sealed ``job.submitted``, audit) and counts what the pipeline did with
them in the shared store, the audit log and the queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from audit import AuditRecord, iter_records
from broker import BrokerAuditSink, Publisher, Sealed, make_audit_event
from schemas import JobSubmitted
from store import BlobStore, JobStore, NewJob

FINAL_STATES = frozenset({"done", "failed"})


# -- the broker -----------------------------------------------------------------------------


def can_restart_broker(amqp_url: str) -> str | None:
    """Why this run cannot stop and start the broker, or None when it can."""
    if urlsplit(amqp_url).hostname not in {"127.0.0.1", "localhost"}:
        return "the broker is not local"
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed"
    return None


def rabbitmqctl(*args: str, timeout: float = 120) -> None:
    """Run ``rabbitmqctl`` against the local node; raise with its output on failure."""
    ctl = shutil.which("rabbitmqctl")
    assert ctl is not None
    result = subprocess.run(
        [ctl, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"rabbitmqctl {' '.join(args)}: {result.stdout}{result.stderr}")


@dataclass
class Outage:
    """The broker going away and coming back; times are epoch seconds."""

    stopping: asyncio.Future[None]
    """Done once ``rabbitmqctl stop_app`` returned: the broker is down."""
    stopped_at: float = 0.0
    restored_at: float = 0.0
    """When a fresh AMQP connection first succeeded after ``start_app``."""

    async def down(self) -> None:
        """Wait until the broker is down."""
        await self.stopping
        if not self.stopped_at:
            self.stopped_at = time.time()


@contextlib.asynccontextmanager
async def broker_outage(amqp_url: str) -> AsyncIterator[Outage]:
    """Start ``rabbitmqctl stop_app`` now; on exit ``start_app`` + ``await_startup``, always.

    The body runs while the broker is stopping (``await outage.down()`` to wait for it), so
    work is caught in flight. ``rabbitmqctl`` runs in a thread: this process's event loop
    (an in-process gateway) keeps running and sees the connection drop as it happens. The
    local broker is shared with other test runs: keep the body short (seconds).
    """
    outage = Outage(stopping=asyncio.ensure_future(asyncio.to_thread(rabbitmqctl, "stop_app")))
    try:
        yield outage
        await outage.down()
    finally:
        # Shielded: even a test cancelled by its timeout gives the broker back.
        await asyncio.shield(_restore(amqp_url, outage))


async def _restore(amqp_url: str, outage: Outage) -> None:
    with contextlib.suppress(Exception):
        await outage.stopping  # never start the app while stop_app still runs
    starting = asyncio.ensure_future(asyncio.to_thread(_start_broker))
    probe = asyncio.ensure_future(_first_connection(amqp_url))
    try:
        await starting
        async with asyncio.timeout(60):
            outage.restored_at = await probe
    finally:
        probe.cancel()


def _start_broker() -> None:
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")


async def _first_connection(amqp_url: str) -> float:
    """The time a fresh AMQP connection first succeeds (probed every 0.1 s)."""
    import aio_pika

    while True:
        try:
            connection = await aio_pika.connect(amqp_url, timeout=1)
        except Exception:  # any refusal means "not yet"
            await asyncio.sleep(0.1)
            continue
        at = time.time()
        await connection.close()
        return at


# -- jobs, and what became of them ----------------------------------------------------------


def text_document(index: int) -> bytes:
    return f"fault test document {index} {secrets.token_hex(8)}\n".encode() * 20


@dataclass
class JobLedger:
    """Submits jobs as the gateway does and reads back what the pipeline did with them."""

    data_dir: Path
    publisher: Publisher
    store: JobStore
    submitted: list[str] = field(default_factory=list)

    @property
    def blobs(self) -> BlobStore:
        return BlobStore(self.data_dir / "blobs")

    async def prepare(
        self, data: bytes, *, owner: str = "alice", name: str = "doc.txt"
    ) -> JobSubmitted:
        """Store the blob and record the job, as the gateway does before it publishes."""
        sha = await asyncio.to_thread(self.blobs.put, data)
        job_id, trace = secrets.token_hex(16), secrets.token_hex(16)
        await self.store.create(
            NewJob(
                job_id=job_id,
                owner=owner,
                filename=name,
                content_type="text/plain",
                size=len(data),
                blob_sha256=sha,
                trace=trace,
            )
        )
        return JobSubmitted(
            job_id=job_id,
            owner=owner,
            filename=name,
            content_type="text/plain",
            size=len(data),
            blob_sha256=sha,
            submitted_at=datetime.now(UTC),
        )

    def seal(self, message: JobSubmitted) -> Sealed:
        """``job.submitted`` sealed for the worker, acting for the job's owner."""
        return self.publisher.sealer.seal(
            message,
            typ="job.submitted",
            aud="worker",
            sub=message.owner,
            job=message.job_id,
            act={"sub": "gateway"},
        )

    async def submit(self, data: bytes, *, owner: str = "alice", name: str = "doc.txt") -> str:
        """Blob, job record, ``job.submitted`` sealed for the worker, and its audit event."""
        message = await self.prepare(data, owner=owner, name=name)
        sealed = self.seal(message)
        await self.publisher.publish(sealed)
        await BrokerAuditSink(self.publisher).emit(
            make_audit_event(
                source="gateway",
                type="job.submitted",
                action="submit",
                outcome="success",
                actor=owner,
                subject=owner,
                job=message.job_id,
                jti=sealed.jti,
            )
        )
        self.submitted.append(message.job_id)
        return message.job_id

    async def states(self, job_ids: list[str]) -> dict[str, str]:
        """Each job's state now ("missing" if it has no record)."""
        states = {}
        for job_id in job_ids:
            job = await self.store.get(job_id)
            states[job_id] = job.state if job is not None else "missing"
        return states

    async def wait_final(self, job_ids: list[str], timeout: float = 90) -> dict[str, str]:
        """Each job's final state, once every one of them has one."""
        async with asyncio.timeout(timeout):
            while True:
                states = await self.states(job_ids)
                if all(state in FINAL_STATES for state in states.values()):
                    return states
                await asyncio.sleep(0.1)

    def history(self) -> dict[str, list[str]]:
        """Every job's state transitions, in order, straight from the store's table."""
        return {
            job_id: [state for (state,) in rows]
            for job_id, rows in self._grouped("SELECT job_id, state FROM job_events ORDER BY id")
        }

    def result_counts(self) -> Counter[str]:
        """Result rows per job (the store allows one; a second would be a duplicate)."""
        with self._db() as db:
            return Counter(job_id for (job_id,) in db.execute("SELECT job_id FROM results"))

    def _grouped(self, sql: str) -> list[tuple[str, list[tuple[str]]]]:
        grouped: dict[str, list[tuple[str]]] = {}
        with self._db() as db:
            for job_id, *rest in db.execute(sql):
                grouped.setdefault(job_id, []).append(tuple(rest))  # type: ignore[arg-type]
        return list(grouped.items())

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(f"file:{self.data_dir / 'jobs.db'}?mode=ro", uri=True, timeout=10)
        try:
            yield db
        finally:
            db.close()


def audit_records(data_dir: Path) -> list[AuditRecord]:
    """Every record of the audit log so far (empty before the first one)."""
    directory = data_dir / "audit"
    return list(iter_records(directory)) if directory.exists() else []


async def wait_audit(
    data_dir: Path,
    predicate: Callable[[list[AuditRecord]], bool],
    *,
    timeout: float = 60,
) -> list[AuditRecord]:
    """The audit log once ``predicate`` holds for it (else the log as it was, to assert on)."""
    records: list[AuditRecord] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while True:
                records = audit_records(data_dir)
                if predicate(records):
                    return records
                await asyncio.sleep(0.1)
    return records


def audit_types_by_job(records: list[AuditRecord]) -> dict[str, Counter[str]]:
    """Per job, how many audit records of each type."""
    by_job: dict[str, Counter[str]] = {}
    for record in records:
        if record.event.job is not None:
            by_job.setdefault(record.event.job, Counter())[record.event.type] += 1
    return by_job


async def drain(channel: Any, queue: str) -> list[Any]:
    """Take every message waiting in ``queue`` (no ack needed: they are gone)."""
    source = await channel.get_queue(queue, ensure=False)
    taken = []
    while (message := await source.get(fail=False, no_ack=True)) is not None:
        taken.append(message)
    return taken


async def wait_queue_depth(channel: Any, queue: str, depth: int, *, timeout: float = 60) -> int:
    """Wait until ``queue`` holds at least ``depth`` messages; return how many it holds."""
    from sealflow_testing import queue_counts

    async with asyncio.timeout(timeout):
        while True:
            messages, _ = await queue_counts(channel, queue)
            if messages >= depth:
                return messages
            await asyncio.sleep(0.1)
