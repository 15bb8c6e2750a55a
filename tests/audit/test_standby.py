"""A standby audit daemon on a real broker: ``audit.events`` has a single active consumer, so the
standby takes nothing while the active daemon runs and everything once it stops. Each keeps its
own log, anchored in a file or, with PostgreSQL, in a row of its own that every host sees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from gateway_testing import free_port
from sealflow_testing import queue_counts

from audit import AuditSettings, iter_records, verify_log
from audit.anchor import PgAnchor
from audit.daemon import AuditDaemonSettings, serve
from broker import BrokerSettings, ServiceRuntime, make_audit_event
from keys import KeyRing, TrustStore, write_trust_store
from schemas import SERVICES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@dataclass
class Daemon:
    """One audit daemon running in-process on its own data directory."""

    data_dir: Path
    stop: asyncio.Event
    task: asyncio.Task[None]
    log_settings: AuditSettings

    def records(self) -> int:
        return sum(1 for _ in iter_records(self.data_dir / "audit"))

    async def halt(self) -> None:
        self.stop.set()
        async with asyncio.timeout(30):
            await self.task


@pytest.fixture
def all_keys(tmp_path: Path) -> Path:
    directory = tmp_path / "all-keys"
    for service in SERVICES:
        KeyRing.open_or_create(directory, service)
    write_trust_store(directory)
    return directory


def _settings(amqp_url: str, namespace: str, keys_dir: Path, data_dir: Path) -> BrokerSettings:
    data_dir.mkdir(parents=True, exist_ok=True)
    return BrokerSettings(
        amqp_url=amqp_url, namespace=namespace, data_dir=data_dir, keys_dir=keys_dir
    )


@pytest.fixture(params=["file", "postgresql"])
def anchor_database(request: pytest.FixtureRequest) -> str | None:
    """Where the daemons anchor their logs: None for the anchor file, else a database URL."""
    if request.param == "file":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


async def _start(
    settings: BrokerSettings, database_url: str | None, health_port: int = 0
) -> Daemon:
    stop = asyncio.Event()
    log_settings = AuditSettings(
        data_dir=settings.data_dir,
        keys_dir=settings.keys_dir,
        database_url=database_url,
        namespace=settings.namespace,
    )
    task = asyncio.create_task(
        serve(
            settings,
            AuditDaemonSettings(health_port=health_port, api_port=0, batch_wait=0.001),
            log_settings,
            stop=stop,
        )
    )
    return Daemon(settings.data_dir, stop, task, log_settings)


async def _wait_for(predicate, daemons: list[Daemon], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            for daemon in daemons:
                if daemon.task.done():
                    daemon.task.result()
            await asyncio.sleep(0.05)


@pytest.fixture
async def sender(
    amqp_url: str, namespace: str, all_keys: Path, tmp_path: Path, cleanup_namespace: None
) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime("gateway", _settings(amqp_url, namespace, all_keys, tmp_path / "gw"))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def _emit(sender: ServiceRuntime, count: int, label: str) -> None:
    assert sender.audit is not None
    for index in range(count):
        await sender.audit.emit(
            make_audit_event(
                source="gateway",
                type="job.submitted",
                action="submit",
                outcome="success",
                actor="alice",
                detail=f"{label} {index}",
            )
        )


async def test_a_standby_stays_idle_while_the_active_writer_runs_and_takes_over_when_it_stops(
    amqp_url: str,
    namespace: str,
    all_keys: Path,
    tmp_path: Path,
    sender: ServiceRuntime,
    anchor_database: str | None,
) -> None:
    active = await _start(
        _settings(amqp_url, namespace, all_keys, tmp_path / "active"), anchor_database
    )
    assert sender.consume_channel is not None
    queue = sender.topology.queue("audit.events")

    async def consumers(n: int) -> bool:
        return (await queue_counts(sender.consume_channel, queue))[1] == n

    standby: Daemon | None = None
    try:
        await _wait_for(lambda: consumers(1), [active])
        port = free_port()
        standby = await _start(
            _settings(amqp_url, namespace, all_keys, tmp_path / "standby"),
            anchor_database,
            health_port=port,
        )

        async def standby_ready() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"http://127.0.0.1:{port}/readyz") as response,
                ):
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await _wait_for(standby_ready, [active, standby])
        assert await consumers(1)  # the broker counts only the active consumer

        await _emit(sender, 20, "first")

        async def active_has_all() -> bool:
            return active.records() == 20

        await _wait_for(active_has_all, [active, standby])
        assert standby.records() == 0  # registered, but not the active consumer

        await active.halt()
        await _emit(sender, 5, "after failover")

        async def standby_has_them() -> bool:
            return standby is not None and standby.records() == 5

        await _wait_for(standby_has_them, [standby])
        assert active.records() == 20
    finally:
        for daemon in (active, standby):
            if daemon is not None and not daemon.task.done():
                await daemon.halt()
    trust = TrustStore.from_rings(all_keys, ("audit",))
    for daemon in (active, standby):
        assert daemon is not None
        report = verify_log(daemon.data_dir / "audit", trust, anchor=daemon.log_settings.anchor())
        assert report.ok, report.detail
    if anchor_database is not None:
        assert standby is not None
        await _check_shared_anchors(active, standby)


async def _check_shared_anchors(active: Daemon, standby: Daemon) -> None:
    """Each daemon anchored its own log in its own row, and the standby's host, on its own data
    directory, reads the active's row as the active does."""
    rows = [daemon.log_settings.anchor() for daemon in (active, standby)]
    assert all(isinstance(row, PgAnchor) for row in rows)
    assert rows[0].where != rows[1].where
    anchored = [row.load() for row in rows]
    assert [a.checkpoint.seq if a is not None else None for a in anchored] == [20, 5]
    other_host = active.log_settings.model_copy(
        update={"data_dir": standby.data_dir, "audit_log_name": _log_name(active.log_settings)}
    )
    assert other_host.anchor().load() == anchored[0]


def _log_name(settings: AuditSettings) -> str:
    """The log name part of the settings' anchor row key."""
    return settings.log_id.split("/", 1)[1]
