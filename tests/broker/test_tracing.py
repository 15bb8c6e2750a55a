"""Trace context across an AMQP hop: the ``traceparent`` header bound to the signed ``trace``
claim, one span per send and per process, and nothing exported unless ``OTEL_*`` asks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from audit_testing import RecordingAuditSink
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id
from sealflow_testing import job_message

from broker import (
    REJECT_REASON_HEADER,
    BrokerSettings,
    Consumer,
    Delivery,
    Opened,
    Opener,
    Publisher,
    Sealer,
    SpentIds,
    Topology,
    connect,
    open_channel,
)
from broker.tracing import (
    TRACEPARENT_HEADER,
    configure_tracing,
    install_tracer_provider,
    tracer,
    tracing_requested,
)
from keys import KeyRing, TrustStoreFile

_OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
)
_OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process environment with none of the standard OTEL_* variables set."""
    for name in _OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Sealflow's spans, kept in memory for the test; tracing is off again afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    install_tracer_provider(provider)
    try:
        yield exporter
    finally:
        install_tracer_provider(None)
        provider.shutdown()


@dataclass
class Hop:
    """A gateway publisher, a worker consumer of ``worker.jobs`` and what the consumer saw."""

    channel: Any
    topology: Topology
    publisher: Publisher
    consumer: Consumer
    audit: RecordingAuditSink
    handled: asyncio.Queue[tuple[Opened[Any], Delivery]]

    async def dead_letter(self) -> Any:
        """The first message dead-lettered from ``worker.jobs`` (bounded wait)."""
        dlq = await self.channel.get_queue(self.topology.queue("worker.jobs.dlq"), ensure=False)
        async with asyncio.timeout(20):
            while (message := await dlq.get(fail=False, no_ack=True)) is None:
                await asyncio.sleep(0.05)
        return message


@pytest.fixture
async def hop(
    amqp_url: str, namespace: str, keys_dir: Path, cleanup_namespace: None
) -> AsyncIterator[Hop]:
    """One real AMQP hop, gateway → worker, on a fresh namespace."""
    settings = BrokerSettings(
        amqp_url=amqp_url, namespace=namespace, keys_dir=keys_dir, shutdown_grace=5
    )
    connection = await connect(amqp_url)
    channel = await open_channel(connection, prefetch=8)
    topology = Topology(namespace)
    await topology.declare(channel)
    handled: asyncio.Queue[tuple[Opened[Any], Delivery]] = asyncio.Queue()

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        await handled.put((opened, delivery))

    opener = Opener(
        "worker", TrustStoreFile(keys_dir / "trust.json", min_interval=0), spent=SpentIds(1000)
    )
    audit = RecordingAuditSink()
    consumer = Consumer(
        queue="worker.jobs",
        channel=channel,
        topology=topology,
        opener=opener,
        publisher=Publisher(
            channel, topology, Sealer(KeyRing.load(keys_dir, "worker").signing_key())
        ),
        audit=audit,
        handlers={"job.submitted": handler},
        settings=settings,
    )
    await consumer.start()
    gateway = Publisher(channel, topology, Sealer(KeyRing.load(keys_dir, "gateway").signing_key()))
    try:
        yield Hop(channel, topology, gateway, consumer, audit, handled)
    finally:
        await consumer.stop()
        await connection.close()


async def _next(hop: Hop) -> tuple[Opened[Any], Delivery]:
    async with asyncio.timeout(20):
        return await hop.handled.get()


def test_tracing_is_requested_only_by_the_standard_otel_variables() -> None:
    """Off by default; an exporter or an OTLP endpoint turns it on; OTEL_SDK_DISABLED wins."""
    assert not tracing_requested({})
    assert not tracing_requested({"OTEL_SERVICE_NAME": "worker"})
    assert not tracing_requested({"OTEL_TRACES_EXPORTER": "none"})
    assert tracing_requested({"OTEL_TRACES_EXPORTER": "otlp"})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert not tracing_requested(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}
    )


@pytest.mark.integration
async def test_a_hop_is_one_trace_header_and_claim_agreeing(
    hop: Hop, spans: InMemorySpanExporter
) -> None:
    """The send span's trace is signed and carried as traceparent; process is its child."""
    message = job_message()
    sealed = await hop.publisher.send(
        message, typ="job.submitted", aud="worker", sub="alice", job=message.job_id
    )
    opened, _ = await _next(hop)
    await hop.consumer.stop()
    send = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER)
    process = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER)
    assert send.context is not None
    assert process.context is not None
    assert sealed.trace == opened.claims.trace == format_trace_id(send.context.trace_id)
    assert process.context.trace_id == send.context.trace_id
    assert process.parent is not None
    assert process.parent.span_id == send.context.span_id
    assert send.name == f"send {hop.topology.exchange('jobs')}"
    assert send.attributes is not None
    assert process.attributes is not None
    assert send.attributes["messaging.system"] == "rabbitmq"
    assert send.attributes["messaging.rabbitmq.destination.routing_key"] == "job.submitted"
    assert send.attributes["messaging.message.id"] == sealed.jti
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.consumer.group.name"] == "worker.jobs"
    assert process.attributes["messaging.message.conversation_id"] == message.job_id


@pytest.mark.integration
@pytest.mark.parametrize("tracing_on", [True, False], ids=["tracing-on", "tracing-off"])
async def test_a_swapped_traceparent_is_refused_dead_lettered_and_audited(
    hop: Hop, request: pytest.FixtureRequest, tracing_on: bool
) -> None:
    """A traceparent header naming another trace than the signed claim means the headers were
    changed in transit: refused as ``trace_mismatch`` (whether or not this process traces),
    never handled. Before the binding, the handler ran and the forged parent was believed."""
    if tracing_on:
        request.getfixturevalue("spans")
    message = job_message()
    sealed = hop.publisher.sealer.seal(
        message, typ="job.submitted", aud="worker", sub="alice", trace="1" * 32
    )
    amqp = hop.publisher.message_for(
        sealed, {TRACEPARENT_HEADER: f"00-{_OTHER_TRACE}-b7ad6b7169203331-01"}
    )
    await hop.publisher.publish_raw(amqp, routing_key=hop.topology.queue("worker.jobs"))
    dead = await hop.dead_letter()
    assert dead.headers[REJECT_REASON_HEADER] == "trace_mismatch"
    await hop.consumer.stop()  # the refusal is audited after its dead letter is confirmed
    assert hop.handled.empty()
    [event] = hop.audit.events
    assert (event.type, event.reason, event.trace) == (
        "envelope.rejected",
        "trace_mismatch",
        "1" * 32,
    )


@pytest.mark.integration
async def test_a_traceparent_on_an_envelope_that_signs_no_trace_is_refused(hop: Hop) -> None:
    """A trace can not be grafted onto a message whose envelope binds none."""
    sealed = hop.publisher.sealer.seal(job_message(), typ="job.submitted", aud="worker", sub="a")
    amqp = hop.publisher.message_for(
        sealed, {TRACEPARENT_HEADER: f"00-{_OTHER_TRACE}-b7ad6b7169203331-01"}
    )
    await hop.publisher.publish_raw(amqp, routing_key=hop.topology.queue("worker.jobs"))
    dead = await hop.dead_letter()
    assert dead.headers[REJECT_REASON_HEADER] == "trace_mismatch"


@pytest.mark.integration
async def test_the_matching_traceparent_of_another_tracer_is_the_parent(
    hop: Hop, spans: InMemorySpanExporter
) -> None:
    """An upstream traceparent that agrees with the claim is followed: the process span is the
    child of the span it names."""
    trace_id, parent = _OTHER_TRACE, "b7ad6b7169203331"
    sealed = hop.publisher.sealer.seal(
        job_message(), typ="job.submitted", aud="worker", sub="alice", trace=trace_id
    )
    amqp = hop.publisher.message_for(sealed, {TRACEPARENT_HEADER: f"00-{trace_id}-{parent}-01"})
    await hop.publisher.publish_raw(amqp, routing_key=hop.topology.queue("worker.jobs"))
    await _next(hop)
    await hop.consumer.stop()
    [process] = spans.get_finished_spans()
    assert process.context is not None
    assert process.parent is not None
    assert format_trace_id(process.context.trace_id) == trace_id
    assert format_span_id(process.parent.span_id) == parent


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that only counts what it is sent."""

    received: list[str]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def collector() -> Iterator[tuple[str, list[str]]]:
    """A local OTLP/HTTP collector on a free port: its URL and the paths it was sent."""
    received: list[str] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.integration
async def test_with_no_otel_variables_nothing_is_traced_or_exported(
    hop: Hop, no_otel_env: None, collector: tuple[str, list[str]]
) -> None:
    """The default: no provider, no exporter, no traceparent on the wire; the signed trace
    claim still travels (the audit log's correlation does not depend on OpenTelemetry)."""
    assert configure_tracing("gateway") is None
    assert tracer() is None
    message = job_message()
    await hop.publisher.send(
        message, typ="job.submitted", aud="worker", sub="alice", trace=_OTHER_TRACE
    )
    opened, _ = await _next(hop)
    assert opened.claims.trace == _OTHER_TRACE
    _, received = collector
    assert received == []


@pytest.mark.integration
async def test_an_otlp_endpoint_exports_every_hop_and_sdk_disabled_wins(
    hop: Hop,
    no_otel_env: None,
    collector: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT alone turns the OTLP exporter on; OTEL_SDK_DISABLED turns
    it off again."""
    url, received = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert configure_tracing("gateway") is None
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    provider = configure_tracing("gateway")
    assert provider is not None
    try:
        message = job_message()
        await hop.publisher.send(message, typ="job.submitted", aud="worker", sub="alice")
        await _next(hop)
        await hop.consumer.stop()
    finally:
        install_tracer_provider(None)
        await asyncio.to_thread(provider.shutdown)
    assert received
    assert set(received) == {"/v1/traces"}


@pytest.mark.integration
async def test_an_envelope_sealed_without_a_trace_is_published_without_a_traceparent(
    hop: Hop, spans: InMemorySpanExporter
) -> None:
    """A message sealed before its publish (a dead letter's replay) keeps the trace it signs:
    with none signed, the send span's traceparent is not attached, so it is not refused."""
    sealed = hop.publisher.sealer.seal(job_message(), typ="job.submitted", aud="worker", sub="a")
    await hop.publisher.publish(sealed)
    opened, _ = await _next(hop)
    assert opened.claims.trace is None
    assert hop.audit.events == []
    send = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER)
    assert (send.attributes or {})["messaging.message.id"] == sealed.jti


def test_service_name_is_the_daemons_unless_otel_service_name_says_otherwise(
    no_otel_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resource names the daemon; OTEL_SERVICE_NAME, the standard variable, wins."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    names = []
    for override in (None, "sealflow-worker-eu"):
        if override is not None:
            monkeypatch.setenv("OTEL_SERVICE_NAME", override)
        provider = configure_tracing("worker")
        assert provider is not None
        names.append(provider.resource.attributes["service.name"])
        install_tracer_provider(None)
        provider.shutdown()
    assert names == ["worker", "sealflow-worker-eu"]
