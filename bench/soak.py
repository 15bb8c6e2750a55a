"""Soak: N jobs through the real worker, parser and audit processes, with faults at random moments.

Jobs go in by the gateway's upload path, ``gateway.submission`` (blob stored, job recorded,
``job.submitted`` sealed with the gateway's key and confirmed, ``job.submitted`` audited),
at most ``--in-flight`` at a time, in six formats. This process plays the gateway's part on
``gateway.events``: it opens every event with the gateway's ``Opener``. At moments drawn from
a seeded RNG it injects forged messages straight into the daemons' queues (a rogue key, a
flipped signature bit, a tampered body, a replayed ``jti``), SIGKILLs and restarts a daemon,
and (``--broker-restarts``) stops and starts the RabbitMQ application. At the end it counts:

- lost: jobs without a final state in the store or without a final event at the gateway;
- duplicated: jobs whose result or final state was recorded more than once;
- rejected: distinct forged message ids in the dead-letter queues and in ``envelope.rejected``
  audit records — both must equal the injected forgeries, with the expected reason each;

and it verifies the audit log's hash chain and checkpoints.

    .venv/bin/python bench/soak.py --jobs 10000 --seed 6        # the full soak
    .venv/bin/python bench/soak.py --jobs 200 --broker-restarts 1
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import json
import logging
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aio_pika.exceptions import AMQPError
from forgeries import KINDS, QUEUES, Forger, Forgery
from unsealed import UnsealedOpener, UnsealedSealer

from audit import iter_records, verify_log
from broker import (
    REJECT_REASON_HEADER,
    BrokerAuditSink,
    EnvelopeError,
    Opener,
    Publisher,
    Sealed,
    Sealer,
    SpentIds,
    Topology,
    connect,
    open_channel,
)
from gateway.submission import Document, submit_document
from keys import KeyRing, TrustStore, TrustStoreFile, write_trust_store
from schemas import SERVICES as ALL_SERVICES
from store import BlobStore, JobStore, SqliteJobStore

_SUPPORT = str(Path(__file__).resolve().parents[1] / "tests" / "support")
if _SUPPORT not in sys.path:
    sys.path.append(_SUPPORT)  # the daemon harness, documents and queue counts of the tests
from daemon_processes import PIPELINE_DAEMONS as SERVICES  # noqa: E402
from daemon_processes import Daemons, daemon_env  # noqa: E402
from documents_testing import text_pdf  # noqa: E402
from sealflow_testing import queue_counts  # noqa: E402

FINAL = ("job.completed", "job.failed")
OWNER = "alice"


@dataclass(frozen=True)
class SoakConfig:
    """How big the soak is and which faults it injects."""

    jobs: int = 200
    seed: int = 6
    forgeries: int | None = None
    """Default: one per 25 jobs, at least 8."""
    kills: int | None = None
    """SIGKILL + restart of a daemon; default: one per 1,500 jobs, at least 2."""
    broker_restarts: int = 0
    """``rabbitmqctl stop_app``/``start_app`` (shared broker: keep it rare)."""
    outage_seconds: float = 2.0
    in_flight: int = 64
    timeout: float = 1800.0
    rss_every: int = 1000
    unsealed: bool = False
    """Bench only (``bench/e2e.py``): the daemons and this process with envelopes switched off
    (``bench/unsealed.py``); forgeries would be accepted, so none are injected."""

    def __post_init__(self) -> None:
        if self.unsealed and (self.n_forgeries or self.n_kills or self.broker_restarts):
            raise ValueError("an unsealed run takes no faults: set forgeries=0 and kills=0")

    @property
    def n_forgeries(self) -> int:
        return self.forgeries if self.forgeries is not None else max(8, self.jobs // 25)

    @property
    def n_kills(self) -> int:
        return self.kills if self.kills is not None else max(2, self.jobs // 1500)


@dataclass
class SoakReport:
    """What the soak measured; ``ok`` when nothing was lost, duplicated or wrongly rejected."""

    jobs: int
    seed: int
    elapsed_s: float = 0.0
    done: int = 0
    failed: int = 0
    lost: int = 0
    duplicated: int = 0
    redundant_final_events: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    rejected_dead_letters: int = 0
    rejected_audit_records: int = 0
    wrong_reasons: list[str] = field(default_factory=list)
    unexpected_dead_letters: list[str] = field(default_factory=list)
    gateway_open_failures: int = 0
    kills: list[str] = field(default_factory=list)
    broker_restarts: list[dict[str, float]] = field(default_factory=list)
    audit_records: int = 0
    audit_verified: bool = False
    audit_verify_detail: str = ""
    exit_codes: dict[str, int] = field(default_factory=dict)
    rss: list[dict[str, Any]] = field(default_factory=list)
    replay_journal_entries: dict[str, int] = field(default_factory=dict)
    load_before: str = ""
    load_after: str = ""

    @property
    def forgeries(self) -> int:
        return sum(self.injected.values())

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.rejected_dead_letters == self.forgeries
            and self.rejected_audit_records == self.forgeries
            and not self.wrong_reasons
            and not self.unexpected_dead_letters
            and self.gateway_open_failures == 0
            and self.audit_verified
            and self.done + self.failed == self.jobs
        )

    def rss_growth(self) -> dict[str, tuple[int, int, float] | None]:
        """Per daemon: RSS at the first sample after 1,000 finished jobs and at the end, for
        the incarnation that was running at the end (``None`` if it had no such pair)."""
        growth: dict[str, tuple[int, int, float] | None] = {}
        for service in SERVICES:
            samples = [s for s in self.rss if service in s["daemons"]]
            if not samples:
                growth[service] = None
                continue
            last = samples[-1]
            incarnation = last["daemons"][service]["incarnation"]
            same = [
                s
                for s in samples
                if s["daemons"][service]["incarnation"] == incarnation
                and s["finished"] >= min(1000, self.jobs // 5)
            ]
            if len(same) < 2:
                growth[service] = None
                continue
            first_rss = same[0]["daemons"][service]["rss"]
            last_rss = same[-1]["daemons"][service]["rss"]
            growth[service] = (first_rss, last_rss, last_rss / first_rss - 1 if first_rss else 0)
        return growth

    def lines(self) -> Iterator[str]:
        """The figures, for people."""
        yield (
            f"soak: {self.jobs} jobs, seed {self.seed}, {self.elapsed_s:.1f} s "
            f"({self.jobs_per_second:.1f} jobs/s); load before {self.load_before}, "
            f"after {self.load_after}"
        )
        yield f"  final states: done {self.done}, failed {self.failed}"
        yield f"  lost = {self.lost}, duplicated = {self.duplicated}"
        yield (
            f"  redundant final events at the gateway (at-least-once, absorbed): "
            f"{self.redundant_final_events}"
        )
        yield f"  injected forgeries: {self.forgeries} {dict(sorted(self.injected.items()))}"
        yield (
            f"  rejected: {self.rejected_dead_letters} dead letters, "
            f"{self.rejected_audit_records} envelope.rejected audit records"
        )
        if self.wrong_reasons:
            yield f"  WRONG REASONS: {self.wrong_reasons[:10]}"
        if self.unexpected_dead_letters:
            yield f"  UNEXPECTED DEAD LETTERS: {self.unexpected_dead_letters[:10]}"
        yield f"  kills: {', '.join(self.kills) or 'none'}"
        for restart in self.broker_restarts:
            yield f"  broker restart: {restart}"
        yield (
            f"  audit log: {self.audit_records} records, verify "
            f"{'intact' if self.audit_verified else 'FAILED: ' + self.audit_verify_detail}"
        )
        yield f"  daemon exit codes on SIGTERM: {self.exit_codes}"
        if self.rss:
            end = self.rss[-1]["daemons"]
            yield "  RSS at the end (MiB): " + ", ".join(
                f"{s} {end[s]['rss'] / 2**20:.1f}" for s in SERVICES if s in end
            )
        for service, growth in self.rss_growth().items():
            if growth is None:
                yield f"  RSS growth {service}: no two samples of one incarnation"
            else:
                first, last, ratio = growth
                yield (
                    f"  RSS growth {service}: {first / 2**20:.1f} → {last / 2**20:.1f} MiB "
                    f"({ratio:+.1%})"
                )
        yield f"  replay journal live entries: {self.replay_journal_entries}"
        yield f"  RESULT: {'ok' if self.ok else 'FAILED'}"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def document(i: int, seed: int) -> tuple[str, str, bytes]:
    """Job ``i``'s document: a different one each time (the blob store dedups equal bytes)."""
    words = f"soak document {i} of seed {seed} about harbours and tides"
    match i % 6:
        case 0:
            return f"d{i}.txt", "text/plain", (words + "\n").encode() * 4
        case 1:
            return f"d{i}.md", "text/markdown", f"# Doc {i}\n\n{words}\n".encode()
        case 2:
            html = f"<html><body><h1>{i}</h1><p>{words}</p><script>x()</script></body></html>"
            return f"d{i}.html", "text/html", html.encode()
        case 3:
            return f"d{i}.json", "application/json", json.dumps({"i": i, "text": words}).encode()
        case 4:
            return f"d{i}.csv", "text/csv", f"n,text\n{i},{words}\n".encode()
        case _:
            return f"d{i}.pdf", "application/pdf", text_pdf(words)


@dataclass
class _Plan:
    """The seeded fault schedule: job index → faults to inject just before that job."""

    at: dict[int, list[tuple[str, str]]]

    @classmethod
    def draw(cls, config: SoakConfig) -> _Plan:
        rng = random.Random(config.seed)
        lo, hi = max(1, config.jobs // 20), max(2, config.jobs - config.jobs // 10)
        at: dict[int, list[tuple[str, str]]] = collections.defaultdict(list)
        for n in range(config.n_forgeries):
            kind = KINDS[n % len(KINDS)] if n < len(KINDS) else rng.choice(KINDS)
            at[rng.randrange(lo, hi)].append(("forge", f"{kind}:{rng.choice(QUEUES)}"))
        for n in range(config.n_kills):
            service = SERVICES[(n + 2) % len(SERVICES)] if n < 3 else rng.choice(SERVICES)
            at[rng.randrange(lo, hi)].append(("kill", service))
        for _ in range(config.broker_restarts):
            at[rng.randrange(lo, hi)].append(("broker", "restart"))
        return cls(dict(at))


async def _counts_or_none(channel: Any, names: list[str]) -> list[int] | None:
    """Message counts of ``names``, or ``None`` while the broker is away (someone restarts it)."""
    try:
        return [(await queue_counts(channel, name))[0] for name in names]
    except (AMQPError, ConnectionError, RuntimeError):
        return None


def rabbitmqctl(*args: str) -> None:
    """Run ``rabbitmqctl`` on the local broker (bounded in time)."""
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


BrokerFault = Callable[[], Awaitable[dict[str, float]]]
"""A broker-side fault other than the local restart (a cluster node stopped); its figures."""


class Soak:
    """One soak run on one namespace; :meth:`run` returns the report."""

    def __init__(
        self,
        config: SoakConfig,
        *,
        amqp_url: str,
        namespace: str,
        work_dir: Path,
        broker_fault: BrokerFault | None = None,
    ) -> None:
        self.config = config
        self.broker_fault = broker_fault
        self.amqp_url = amqp_url
        self.namespace = namespace
        self.work_dir = work_dir
        self.data_dir = work_dir / "data"
        self.keys_dir = work_dir / "keys"
        self.topology = Topology(namespace)
        self.report = SoakReport(jobs=config.jobs, seed=config.seed)
        self.rng = random.Random(config.seed + 1)
        self.final_events: collections.Counter[str] = collections.Counter()
        self.final_at: dict[str, float] = {}
        self.submitted: dict[str, Sealed] = {}
        self.replayed: set[str] = set()
        self.forgeries: list[Forgery] = []
        self.job_ids: list[str] = []
        self._slots = asyncio.Semaphore(config.in_flight)
        self._all_final = asyncio.Event()
        self._restarts: dict[str, asyncio.Task[None]] = {}
        self._next_rss = config.rss_every
        self.store: JobStore | None = None

    async def run(self) -> SoakReport:
        """Start everything, run the jobs and faults, then count and verify."""
        self.report.load_before = _load()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.keys_dir / "trust.json").exists():
            for service in ALL_SERVICES:
                KeyRing.create(self.keys_dir, service)
            write_trust_store(self.keys_dir)
        env = daemon_env(
            self.amqp_url,
            self.namespace,
            self.data_dir,
            self.keys_dir,
            SEALFLOW_SHUTDOWN_GRACE="15",
            SEALFLOW_RETRY_BASE_DELAY="0.1",
        )
        connection = await connect(self.amqp_url, name="soak")
        try:
            channel = await open_channel(connection)
            listen_channel = await open_channel(connection, prefetch=256)
            await self.topology.declare(channel)
            daemons = Daemons(env, unsealed=self.config.unsealed, history=60)
            try:
                await asyncio.to_thread(daemons.start, *SERVICES)
                await self._run_with(daemons, channel, listen_channel)
            finally:
                # A restart runs in a thread that cannot be cancelled: let it end, then stop all.
                await asyncio.gather(*self._restarts.values(), return_exceptions=True)
                self.report.exit_codes = await asyncio.to_thread(daemons.stop_all)
                await asyncio.to_thread(daemons.kill_leftovers)
            await self._count_dead_letters(channel)
            await asyncio.to_thread(self._count_audit)
        finally:
            await connection.close()
        self.report.load_after = _load()
        return self.report

    async def _run_with(self, daemons: Daemons, channel: Any, listen_channel: Any) -> None:
        sealer_class, opener_class = (
            (UnsealedSealer, UnsealedOpener) if self.config.unsealed else (Sealer, Opener)
        )
        gateway = sealer_class(KeyRing.load(self.keys_dir, "gateway").signing_key())
        worker = Sealer(KeyRing.load(self.keys_dir, "worker").signing_key())
        publisher = Publisher(channel, self.topology, gateway)
        audit = BrokerAuditSink(publisher)
        forger = Forger(publisher, gateway, worker)
        self.store = store = await SqliteJobStore.open(self.data_dir / "jobs.db")
        blobs = BlobStore(self.data_dir / "blobs")
        opener = opener_class(
            "gateway",
            TrustStoreFile(self.keys_dir / "trust.json"),
            spent=SpentIds(self.config.jobs * 4 + 10_000),
        )
        events = await listen_channel.declare_queue(
            self.topology.queue("gateway.events"), passive=True
        )
        tag = await events.consume(functools.partial(self._on_event, opener))
        plan = _Plan.draw(self.config)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.config.timeout):
                for i in range(self.config.jobs):
                    for action, arg in plan.at.get(i, []):
                        await self._fault(action, arg, daemons, channel, publisher, forger)
                    await self._slots.acquire()
                    await self._submit(i, blobs, publisher, audit)
                    self._sample_rss(daemons)
                await self._all_final.wait()
                self.report.elapsed_s = time.monotonic() - started
                await asyncio.gather(*self._restarts.values())
                await self._wait_accounted(channel, daemons)
                await self._wait_drained(channel)
            self._sample_rss(daemons, force=True)
        finally:
            await events.cancel(tag)
            await self._count_store(store)
            await store.close()
        self.report.replay_journal_entries = self._journal_sizes()

    async def _submit(self, i: int, blobs: BlobStore, publisher: Publisher, audit: Any) -> None:
        """One document through the gateway's upload path (``gateway.submission``)."""
        filename, content_type, data = document(i, self.config.seed)
        sha = await asyncio.to_thread(blobs.put, data)
        assert self.store is not None
        # A broker restart makes a publish fail: it is tried again with a fresh envelope (a
        # second copy that did reach the broker is absorbed by the worker's idempotence).
        submitted = await submit_document(
            self.store,
            publisher,
            audit,
            owner=OWNER,
            document=Document(filename, content_type, len(data), sha),
            blobs=blobs,
            via="the soak bench",
            attempts=120,
            retry_delay=0.5,
        )
        self.job_ids.append(submitted.job_id)
        self.submitted[submitted.job_id] = submitted.sealed

    async def _on_event(self, opener: Opener, message: Any) -> None:
        try:
            opened = opener.open(
                message.body,
                message.headers,
                message_id=message.message_id,
                message_type=message.type,
                redelivered=bool(message.redelivered),
            )
        except EnvelopeError as error:
            if not (error.reason == "replay" and message.redelivered):
                self.report.gateway_open_failures += 1
            await message.ack()
            return
        opener.complete(opened.claims.jti)
        await message.ack()
        if opened.claims.typ not in FINAL:
            return
        job_id = opened.message.job_id
        self.final_events[job_id] += 1
        if self.final_events[job_id] == 1:
            self.final_at[job_id] = time.monotonic()
            self._slots.release()
            if len(self.final_at) >= self.config.jobs:
                self._all_final.set()

    async def _fault(
        self,
        action: str,
        arg: str,
        daemons: Daemons,
        channel: Any,
        publisher: Publisher,
        forger: Forger,
    ) -> None:
        if action == "forge":
            kind, queue = arg.split(":")
            forgery = self._replay(forger) if kind == "replay" else forger.forge(kind, queue)
            if forgery is None:
                forgery = forger.forge("tampered_body", queue)
            await publisher.publish_raw(
                forgery.message, routing_key=self.topology.queue(forgery.queue)
            )
            self.forgeries.append(forgery)
            self.report.injected[forgery.kind] = self.report.injected.get(forgery.kind, 0) + 1
        elif action == "kill":
            # A rejection is dead-lettered, acked, then audited: a SIGKILL in between would lose
            # the audit record of a forgery (DESIGN-level gap reported in bench/README.md), so
            # every forgery so far is first fully accounted for.
            # Jobs keep flowing while it restarts.
            await self._wait_accounted(channel, daemons)
            previous = self._restarts.get(arg)
            if previous is not None:
                await previous
            await asyncio.to_thread(daemons.kill, arg)
            self.report.kills.append(f"{arg}@{len(self.job_ids)}")
            self._restarts[arg] = asyncio.create_task(self._restart(daemons, arg))
        else:
            await self._wait_accounted(channel, daemons)
            if self.broker_fault is not None:
                self.report.broker_restarts.append(await self.broker_fault())
            else:
                self.report.broker_restarts.append(
                    await restart_broker(channel, self.topology, self.config.outage_seconds)
                )

    def _replay(self, forger: Forger) -> Forgery | None:
        """A copy of a finished job's ``job.submitted`` whose ``jti`` the worker's replay
        journal already holds on disk, so the worker refuses it whichever incarnation runs.

        The journal is flushed every 0.2 s, so a SIGKILL loses the last moments' ids: a job
        the killed worker took just before it died finishes later, with its ``jti`` lost.
        Choosing by the journal itself, not by how long ago a job finished, never picks one.
        """
        journaled = self._journaled("worker")
        for job_id in self.final_at:
            sealed = self.submitted[job_id]
            if job_id in self.replayed or sealed.jti not in journaled:
                continue
            if sealed.exp - time.time() < 60:
                continue
            self.replayed.add(job_id)
            return forger.replay_of(sealed)
        return None

    async def _restart(self, daemons: Daemons, service: str) -> None:
        """Start ``service`` again after a SIGKILL (jobs keep flowing meanwhile)."""
        await asyncio.to_thread(daemons.start, service)

    async def _dead_letter_count(self, channel: Any) -> int | None:
        names = [self.topology.queue(f"{base}.dlq") for base in (*QUEUES, "gateway.events")]
        counts = await _counts_or_none(channel, names)
        return None if counts is None else sum(counts)

    def _audit_rejections(self) -> set[str]:
        ids: set[str] = set()
        directory = self.data_dir / "audit"
        if not directory.exists():
            return ids
        for record in iter_records(directory):
            if record.event.type == "envelope.rejected":
                ids.add(_message_id(record.event.detail))
        return ids

    async def _wait_accounted(self, channel: Any, daemons: Daemons, timeout: float = 120) -> None:
        """Until every forgery so far is dead-lettered and audited; fails at once when a
        daemon that should be rejecting them has ended or could not be restarted."""
        expected = len(self.forgeries)
        dead: int | None = None
        audited = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    dead = await self._dead_letter_count(channel)
                    audited = len(await asyncio.to_thread(self._audit_rejections))
                    if dead is not None and dead >= expected and audited >= expected:
                        return
                    self._check_daemons(daemons)
                    await asyncio.sleep(0.2)
        except TimeoutError as exc:
            kinds = [f"{f.kind}@{f.queue}" for f in self.forgeries]
            raise TimeoutError(
                f"{expected} forgeries {kinds}: {dead} dead letters, {audited} audited"
            ) from exc

    def _check_daemons(self, daemons: Daemons) -> None:
        """Raise if a restart failed or a daemon that should run has ended."""
        for service, restart in self._restarts.items():
            if restart.done() and restart.exception() is not None:
                raise RuntimeError(f"{service} could not be restarted") from restart.exception()
        ended = daemons.ended()
        if ended:
            raise RuntimeError(
                f"{', '.join(ended)} ended during the soak:\n"
                + "".join(daemons[name].tail() for name in ended)
            )

    async def _wait_drained(self, channel: Any, timeout: float = 120) -> None:
        """Until the daemons' queues and retry queues are empty (all work acknowledged)."""
        names = [self.topology.queue(q) for q in QUEUES]
        names += [self.topology.retry_queue(q) for q in QUEUES]
        async with asyncio.timeout(timeout):
            while True:
                counts = await _counts_or_none(channel, names)
                if counts is not None and not any(counts):
                    return
                await asyncio.sleep(0.2)

    def _sample_rss(self, daemons: Daemons, *, force: bool = False) -> None:
        """RSS of every daemon at the start, after each ``rss_every`` finished jobs, and at
        the end; each sample names the daemon's incarnation (a SIGKILL starts a new one)."""
        finished = len(self.final_at)
        if not force and self.report.rss and finished < self._next_rss:
            return
        if self.report.rss:
            self._next_rss = (finished // self.config.rss_every + 1) * self.config.rss_every
        self.report.rss.append(
            {
                "finished": finished,
                "daemons": {
                    name: {"rss": rss, "incarnation": incarnation}
                    for name, (rss, incarnation) in daemons.rss().items()
                },
            }
        )

    def _journaled(self, service: str) -> dict[str, float]:
        """The unexpired spent ``jti``s in ``service``'s journal on disk (settled or pending:
        either way a copy that is not a redelivery is refused), with their expiry."""
        path = self.data_dir / "replay" / f"{service}.jtis"
        live: dict[str, float] = {}
        if not path.exists():
            return live
        now = time.time()
        with path.open(encoding="ascii", errors="replace") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) not in (2, 3):
                    continue  # a line still being written
                try:
                    expires_at = float(parts[1])
                except ValueError:
                    continue
                if expires_at >= now:
                    live[parts[0]] = expires_at
        return live

    def _journal_sizes(self) -> dict[str, int]:
        """Live entries of each replay journal there is."""
        journals = self.data_dir / "replay"
        return {
            service: len(self._journaled(service))
            for service in SERVICES
            if (journals / f"{service}.jtis").exists()
        }

    async def _count_store(self, store: JobStore) -> None:
        report = self.report
        for job_id in self.job_ids:
            job = await store.get(job_id)
            events = await store.events(job_id)
            finals = [e for e in events if e.state in {"done", "failed"}]
            if job is None or job.state not in {"done", "failed"} or job_id not in self.final_at:
                report.lost += 1
                continue
            if job.state == "done":
                report.done += 1
                if await store.get_result(job_id) is None:
                    report.lost += 1
            else:
                report.failed += 1
            if len(finals) > 1:
                report.duplicated += 1
        report.redundant_final_events = sum(n - 1 for n in self.final_events.values() if n > 1)

    async def _count_dead_letters(self, channel: Any) -> None:
        expected = {f.message_id: f for f in self.forgeries}
        seen: collections.Counter[str] = collections.Counter()
        for base in (*QUEUES, "gateway.events"):
            dlq = await channel.declare_queue(self.topology.queue(f"{base}.dlq"), passive=True)
            while (message := await dlq.get(fail=False, no_ack=True)) is not None:
                reason = str((message.headers or {}).get(REJECT_REASON_HEADER, "-"))
                forgery = expected.get(message.message_id or "")
                if forgery is None or forgery.queue != base:
                    self.report.unexpected_dead_letters.append(f"{base}:{reason}")
                    continue
                seen[forgery.message_id] += 1
                if reason != forgery.expected_reason:
                    self.report.wrong_reasons.append(
                        f"{forgery.kind}@{base}: {reason} (expected {forgery.expected_reason})"
                    )
        self.report.rejected_dead_letters = len(seen)
        for message_id, n in seen.items():
            if n > 1:
                self.report.unexpected_dead_letters.append(f"twice:{message_id}")

    def _count_audit(self) -> None:
        directory = self.data_dir / "audit"
        expected = {f.message_id for f in self.forgeries}
        rejected: set[str] = set()
        records = 0
        for record in iter_records(directory):
            records += 1
            if record.event.type == "envelope.rejected":
                message_id = _message_id(record.event.detail)
                if message_id in expected:
                    rejected.add(message_id)
                else:
                    self.report.unexpected_dead_letters.append(f"audit:{record.event.reason}")
        self.report.audit_records = records
        self.report.rejected_audit_records = len(rejected)
        verdict = verify_log(directory, TrustStore.from_rings(self.keys_dir))
        self.report.audit_verified = verdict.ok
        self.report.audit_verify_detail = "" if verdict.ok else str(verdict)


def _message_id(detail: str | None) -> str:
    """The ``message_id=`` a rejection record names (unverified, as the record says)."""
    if not detail or "message_id=" not in detail:
        return "-"
    return detail.split("message_id=", 1)[1].split(" ", 1)[0]


async def restart_broker(channel: Any, topology: Topology, outage: float) -> dict[str, float]:
    """Stop the RabbitMQ application for ``outage`` seconds, start it again (always), and
    measure how long each daemon's consumer takes to come back."""
    stopped = time.monotonic()
    try:
        await asyncio.to_thread(rabbitmqctl, "stop_app")
        await asyncio.sleep(outage)  # the outage itself, not a synchronisation
    finally:
        await asyncio.to_thread(rabbitmqctl, "start_app")
        await asyncio.to_thread(rabbitmqctl, "await_startup")
    up = time.monotonic()
    recovered: dict[str, float] = {"outage_s": round(up - stopped, 2)}
    waiting = {"worker": "worker.jobs", "parser": "parser.requests", "audit": "audit.events"}
    async with asyncio.timeout(180):
        while waiting:
            for service, queue in list(waiting.items()):
                with contextlib.suppress(AMQPError, ConnectionError, RuntimeError):
                    if (await queue_counts(channel, topology.queue(queue)))[1] >= 1:
                        recovered[f"{service}_s"] = round(time.monotonic() - up, 2)
                        del waiting[service]
            await asyncio.sleep(0.05)
    return recovered


async def run_soak(
    config: SoakConfig,
    *,
    amqp_url: str,
    namespace: str,
    work_dir: Path,
    broker_fault: BrokerFault | None = None,
) -> SoakReport:
    """Run one soak and delete its namespace afterwards; ``broker_restarts`` of the config
    inject ``broker_fault`` when one is given, else a restart of the local broker."""
    try:
        soak = Soak(
            config,
            amqp_url=amqp_url,
            namespace=namespace,
            work_dir=work_dir,
            broker_fault=broker_fault,
        )
        return await soak.run()
    finally:
        connection = await connect(amqp_url, name="soak-cleanup")
        try:
            await Topology(namespace).delete(await connection.channel())
        finally:
            await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--forgeries", type=int, default=None)
    parser.add_argument("--kills", type=int, default=None)
    parser.add_argument("--broker-restarts", type=int, default=0)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    config = SoakConfig(
        jobs=args.jobs,
        seed=args.seed,
        forgeries=args.forgeries,
        kills=args.kills,
        broker_restarts=args.broker_restarts,
        in_flight=args.in_flight,
        timeout=args.timeout,
    )
    amqp_url = os.environ.get("SEALFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    with tempfile.TemporaryDirectory(prefix="sealflow-soak-") as tmp:
        report = asyncio.run(
            run_soak(
                config,
                amqp_url=amqp_url,
                namespace=f"soak-{secrets.token_hex(4)}",
                work_dir=Path(tmp),
            )
        )
    for line in report.lines():
        print(line)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(report), indent=2))
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
