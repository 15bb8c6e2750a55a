"""What every daemon runs on: keys, envelopes, a robust connection, consumers, health and metrics.

A daemon (gateway, worker, parser, audit) builds a :class:`ServiceRuntime` in its ``serve()``,
registers its handlers with :meth:`ServiceRuntime.consume`, and awaits :meth:`ServiceRuntime.run`,
which handles SIGTERM/SIGINT: stop taking messages, let in-flight ones finish (bounded), close,
exit 0. The command line starts every daemon the same way, with :func:`run_daemon`.

When ``SEALFLOW_DATABASE_URL`` names PostgreSQL, spent envelope ids and revocations are
shared there by every replica on every host (``store.PgSpentEnvelopes``, ``store.PgRevocations``)
and the local revocation journal is not used; unset, everything stays per process and on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import structlog
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection

from broker.auditing import AuditSink, BrokerAuditSink
from broker.connection import connect, open_channel
from broker.consumer import Consumer, Handler
from broker.control import ControlSubscriber
from broker.envelope import Opener, Sealer
from broker.health import serve_health
from broker.logging import configure_logging
from broker.policy import Policy
from broker.publisher import Publisher
from broker.revocation import RevocationList
from broker.settings import BrokerSettings
from broker.spent_ids import SpentIds
from broker.spent_ids_journal import SpentIdsJournal
from broker.topology import Topology
from broker.tracing import configure_tracing
from keys import BundleSource, KeyRing, TrustStoreFile
from store import PgRevocations, PgSpentEnvelopes, backend_of

__all__ = ["ServiceRuntime", "run_daemon", "stop_on_signals"]

_log = structlog.get_logger("sealflow.runtime")

# How often (in 1 s ticks of the key watcher) a daemon asks its bundle source for a newer bundle.
BUNDLE_POLL_TICKS = 5

SHARED_TENDING_INTERVAL = 30.0
"""Seconds between the runtime's passes over the shared store: revocations it did not take yet
are offered again, expired spent ids and lapsed revocations are pruned."""


class ServiceRuntime:
    """The broker-side plumbing of one service process."""

    def __init__(
        self,
        service: str,
        settings: BrokerSettings | None = None,
        *,
        bundle_source: BundleSource | None = None,
    ) -> None:
        self.service = service
        self.bundle_source = bundle_source
        self.settings = settings if settings is not None else BrokerSettings()
        self.topology = Topology(self.settings.namespace)
        keys_dir = self.settings.keys_dir
        self._ring_file = keys_dir / service / "ring.json"
        self._ring_stamp = _stamp(self._ring_file)
        ring = KeyRing.load(keys_dir, service)
        self.policy = (
            Policy.load(self.settings.policy_file)
            if self.settings.policy_file is not None
            else Policy.default()
        )
        self.sealer = Sealer(
            ring.signing_key(), policy=self.policy, lifetime=self.settings.envelope_lifetime
        )
        self.trust = TrustStoreFile(keys_dir / "trust.json", min_interval=1.0)
        self._shared_url = (
            self.settings.database_url
            if backend_of(self.settings.database_url) == "postgresql"
            else None
        )
        self.revocations = RevocationList(
            journal=None
            if self._shared_url is not None
            else self.settings.data_dir / "revocations.jsonl"
        )
        self.shared_spent: PgSpentEnvelopes | None = None
        self.shared_revocations: PgRevocations | None = None
        self.control: ControlSubscriber | None = None
        self.spent_ids = SpentIds(
            self.settings.spent_ids_entries,
            journal=SpentIdsJournal(self.settings.data_dir / "replay" / f"{service}.jtis"),
        )
        self.opener = Opener(
            service,
            self.trust,
            policy=self.policy,
            spent=self.spent_ids,
            revocations=self.revocations,
            leeway=self.settings.leeway,
            max_body_bytes=self.settings.max_body_bytes,
        )
        self.connection: AbstractRobustConnection | None = None
        self.consume_channel: AbstractRobustChannel | None = None
        self.publish_channel: AbstractRobustChannel | None = None
        self.publisher: Publisher | None = None
        self.audit: AuditSink | None = None
        self.consumers: list[Consumer] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Connect, declare the topology, and open the publishing and consuming channels.

        With a shared store, its spent ids and revocations are opened first (a store that does
        not answer fails the start: a daemon never consumes without them) and the live
        revocations are loaded before any message is taken.
        """
        if self._shared_url is not None:
            self.shared_spent = await PgSpentEnvelopes.open(self._shared_url)
            self.shared_revocations = PgRevocations(self.shared_spent.pool)
            self.revocations.shared = self.shared_revocations
        self.connection = await connect(
            self.settings.amqp_url, timeout=self.settings.connect_timeout, name=self.service
        )
        self.publish_channel = await open_channel(self.connection)
        self.consume_channel = await open_channel(self.connection, prefetch=self.settings.prefetch)
        await self.topology.declare(self.publish_channel)
        self.publisher = Publisher(self.publish_channel, self.topology, self.sealer)
        self.audit = BrokerAuditSink(self.publisher)
        self.control = ControlSubscriber(
            channel=self.consume_channel,
            topology=self.topology,
            opener=self.opener,
            revocations=self.revocations,
            trust=self.trust,
            audit=self.audit,
        )
        await self.control.start()
        await self._poll_bundle_source()
        restored = self.spent_ids.restore(time.time())
        revoked = self.revocations.restore(time.time())
        revoked += await self.revocations.restore_shared(time.time())
        self._tasks.append(asyncio.create_task(self._watch_keys(), name="watch-keys"))
        self._tasks.append(asyncio.create_task(self._flush_spent_ids(), name="flush-spent-ids"))
        if self.shared_spent is not None:
            self._tasks.append(asyncio.create_task(self._tend_shared(), name="tend-shared"))
        _log.info(
            "runtime.started",
            namespace=self.settings.namespace,
            kid=self.sealer.kid,
            shared_store=self.shared_spent is not None,
            spent_ids_restored=restored,
            revocations_restored=revoked,
        )

    def consume(
        self,
        queue: str,
        handlers: Mapping[str, Handler],
        *,
        audit: AuditSink | None = None,
        per_instance: bool = False,
    ) -> Consumer:
        """Register a consumer of ``queue``; it starts with :meth:`run`.

        Ids are spent across replicas (with a shared store) unless ``per_instance``: a queue of
        this process's own, where every replica receives its own copy of one envelope, must
        not make the other replicas refuse theirs as a replay.
        """
        if self.consume_channel is None or self.publisher is None or self.audit is None:
            raise RuntimeError("ServiceRuntime.start() must run before consume()")
        consumer = Consumer(
            queue=queue,
            channel=self.consume_channel,
            topology=self.topology,
            opener=self.opener,
            publisher=self.publisher,
            audit=audit if audit is not None else self.audit,
            handlers=handlers,
            settings=self.settings,
            shared_spent=None if per_instance else self.shared_spent,
        )
        self.consumers.append(consumer)
        return consumer

    @property
    def ready(self) -> bool:
        """Connected, and every registered consumer is taking messages."""
        return (
            self.connection is not None
            and not self.connection.is_closed
            and all(consumer.consuming for consumer in self.consumers)
        )

    async def start_consumers(self) -> None:
        """Start taking messages on every registered consumer."""
        for consumer in self.consumers:
            await consumer.start()

    async def stop(self) -> None:
        """Stop consumers (bounded wait for in-flight work), then close the connection."""
        for consumer in self.consumers:
            await consumer.stop()
        if self.control is not None:
            await self.control.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.spent_ids.flush(time.time())
        if self.spent_ids.journal is not None:
            self.spent_ids.journal.close()
        if self.connection is not None:
            await self.connection.close()
        if self.shared_spent is not None:
            await self.shared_spent.close()
        _log.info("runtime.stopped")

    async def run(
        self,
        setup: Callable[[ServiceRuntime], Awaitable[None]],
        *,
        health_port: int | None,
        stop: asyncio.Event | None = None,
        cleanup: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Start, ``setup``, consume until SIGTERM/SIGINT (or ``stop``), then shut down cleanly."""
        stop = stop_on_signals(stop)
        health = (
            await serve_health(
                self.service, self.settings.health_host, health_port, ready=lambda: self.ready
            )
            if health_port
            else None
        )
        try:
            await self.start()
            await setup(self)
            await self.start_consumers()
            _log.info("daemon.ready")
            await stop.wait()
            _log.info("daemon.stopping")
        finally:
            await self.stop()
            if cleanup is not None:
                await cleanup()
            if health is not None:
                await health.cleanup()

    async def _flush_spent_ids(self) -> None:
        """Make spent jtis durable every 0.2 s: a SIGKILL forgets at most that much."""
        while True:
            await asyncio.sleep(0.2)
            self.spent_ids.flush(time.time())

    async def _poll_bundle_source(self) -> None:
        """Take the newest trust bundle from the bundle source, if there is one and it is newer."""
        if self.bundle_source is None:
            return
        try:
            token = await self.bundle_source.latest()
            if token is not None:
                self.trust.accept(token, origin="source")
        except Exception as exc:  # noqa: BLE001 - keep the bundle held, say why
            _log.warning("trust_bundle.source_failed", error=str(exc))

    async def _tend_shared(self) -> None:
        """Offer revocations the shared store missed again, and prune what has expired there."""
        assert self.shared_spent is not None
        assert self.shared_revocations is not None
        while True:
            await asyncio.sleep(SHARED_TENDING_INTERVAL)
            now = time.time()
            await self.revocations.offer()
            try:
                await self.shared_spent.prune(now)
                await self.shared_revocations.prune(now)
            except Exception as exc:  # noqa: BLE001 - the store may be away: say so, try again
                _log.error("shared_store.prune_failed", error=f"{type(exc).__name__}: {exc}"[:500])

    async def _watch_keys(self) -> None:
        """Switch signing to a newly promoted key and reload trust, without a restart."""
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            self.trust.refresh()
            ticks += 1
            if ticks % BUNDLE_POLL_TICKS == 0:
                await self._poll_bundle_source()
            stamp = _stamp(self._ring_file)
            if stamp == self._ring_stamp:
                continue
            self._ring_stamp = stamp
            try:
                key = KeyRing.load(self.settings.keys_dir, self.service).signing_key()
            except Exception as exc:  # noqa: BLE001 - keep signing with the old key, say why
                _log.error("keys.reload_failed", error=str(exc))
                continue
            if key.kid != self.sealer.kid:
                self.sealer.use(key)
                _log.info("keys.signing_key_switched", kid=key.kid)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def stop_on_signals(stop: asyncio.Event | None = None) -> asyncio.Event:
    """``stop`` (or a new event), set by SIGTERM or SIGINT where the running loop allows."""
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    return stop


def run_daemon(service: str, serve: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """The one way a daemon runs from the command line: JSON logs bound to ``service``, then
    ``serve()`` (which returns on SIGTERM/SIGINT, see :meth:`ServiceRuntime.run`), exporting
    spans only if the ``OTEL_*`` variables ask for it (:func:`broker.tracing.configure_tracing`)."""
    configure_logging(service)
    provider = configure_tracing(service)
    try:
        asyncio.run(serve())
    finally:
        if provider is not None:
            provider.shutdown()  # flushes the spans still batched
