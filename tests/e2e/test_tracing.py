"""One trace from the upload at the gateway to ``job.completed``, across gateway, worker, parser
and audit, with every hop the child of the one before (the daemons run in this process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from gateway_testing import Issuer, gateway_settings_for
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id
from pipeline_testing import daemons_for

from audit import iter_records
from broker import BrokerSettings
from broker.tracing import install_tracer_provider
from gateway import STORE_KEY, create_app

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(180)]

_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
_CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every Sealflow span of this process, kept in memory; tracing is off again afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    install_tracer_provider(provider)
    try:
        yield exporter
    finally:
        install_tracer_provider(None)
        provider.shutdown()


@pytest.fixture
async def api(
    broker_settings: BrokerSettings, issuer: Issuer, cleanup_namespace: None
) -> AsyncIterator[tuple[TestClient, str, BrokerSettings]]:
    """The identity provider, the gateway (a client of its API) and the pipeline daemons."""
    settings = gateway_settings_for(issuer, broker_settings)
    app = create_app(settings, broker_settings=broker_settings)
    async with TestClient(TestServer(app)) as client, daemons_for(app, broker_settings):
        yield client, issuer.token("alice"), broker_settings


def _one(spans: Sequence[ReadableSpan], test: Callable[[ReadableSpan], bool]) -> ReadableSpan:
    [span] = [s for s in spans if test(s)]
    return span


def _sends(spans: Sequence[ReadableSpan], routing_key: str) -> list[ReadableSpan]:
    return [
        s
        for s in spans
        if s.kind is SpanKind.PRODUCER
        and (s.attributes or {}).get("messaging.rabbitmq.destination.routing_key") == routing_key
    ]


def _process_of(spans: Sequence[ReadableSpan], send: ReadableSpan) -> ReadableSpan:
    """The CONSUMER span whose parent is ``send``."""
    assert send.context is not None
    return _one(
        spans,
        lambda s: (
            s.kind is SpanKind.CONSUMER
            and s.parent is not None
            and s.parent.span_id == send.context.span_id
        ),  # type: ignore[union-attr]
    )


def _parent_is(child: ReadableSpan, parent: ReadableSpan) -> bool:
    """True when ``child``'s parent is ``parent``."""
    if child.parent is None or parent.context is None:
        return False
    return child.parent.span_id == parent.context.span_id


async def test_one_trace_from_upload_to_job_completed_across_every_daemon(
    api: tuple[TestClient, str, BrokerSettings], spans: InMemorySpanExporter
) -> None:
    """The caller's traceparent → gateway request → job.submitted → worker → parse.requested →
    parser → parse.completed → worker → job.completed → gateway, and each audit event into the
    audit daemon: one trace id, each span the child of the hop that caused it."""
    client, token, settings = api
    form = FormData()
    form.add_field(
        "file", b"words about the harbour\n", filename="a.txt", content_type="text/plain"
    )
    response = await client.post(
        "/api/jobs",
        data=form,
        headers={
            "Authorization": f"Bearer {token}",
            "traceparent": f"00-{_TRACE}-{_CALLER_SPAN}-01",
        },
    )
    assert response.status == 202, await response.text()
    [job] = (await response.json())["jobs"]
    job_id = job["job_id"]

    def job_completed_audited() -> bool:
        directory = settings.data_dir / "audit"
        return directory.exists() and any(
            r.event.job == job_id and r.event.type == "job.completed"
            for r in iter_records(directory)
        )

    def finished() -> bool:
        """job.completed is sent and audited, and every message sent so far was processed."""
        done = spans.get_finished_spans()
        consumers = [s for s in done if s.kind is SpanKind.CONSUMER]
        producers = [s for s in done if s.kind is SpanKind.PRODUCER]
        return (
            len(_sends(done, "job.completed")) == 1
            and len(_sends(done, "audit.job.completed")) == 1
            and all(any(_parent_is(c, p) for c in consumers) for p in producers)
            and job_completed_audited()
        )

    async with asyncio.timeout(60):
        while not finished():
            await asyncio.sleep(0.05)
    assert (await client.app[STORE_KEY].get(job_id)).state == "done"  # type: ignore[union-attr]

    done = spans.get_finished_spans()
    assert {format_trace_id(s.context.trace_id) for s in done if s.context} == {_TRACE}

    request = _one(done, lambda s: s.kind is SpanKind.SERVER and s.name == "POST /api/jobs")
    assert request.parent is not None
    assert format_span_id(request.parent.span_id) == _CALLER_SPAN

    # The job's own hops, hop by hop.
    submitted = _one(_sends(done, "job.submitted"), lambda s: _parent_is(s, request))
    worker_takes = _process_of(done, submitted)
    parse_requested = _one(_sends(done, "parse.requested"), lambda s: _parent_is(s, worker_takes))
    parser_takes = _process_of(done, parse_requested)
    parse_completed = _one(_sends(done, "parse.completed"), lambda s: _parent_is(s, parser_takes))
    worker_finishes = _process_of(done, parse_completed)
    completed = _one(_sends(done, "job.completed"), lambda s: _parent_is(s, worker_finishes))
    gateway_learns = _process_of(done, completed)
    services = [
        (s.attributes or {}).get("messaging.client.id")
        for s in (
            submitted,
            worker_takes,
            parse_requested,
            parser_takes,
            parse_completed,
            worker_finishes,
            completed,
            gateway_learns,
        )
    ]
    assert services == [
        "gateway",
        "worker",
        "worker",
        "parser",
        "parser",
        "worker",
        "worker",
        "gateway",
    ]
    assert (gateway_learns.attributes or {})["messaging.consumer.group.name"] == "gateway.events"

    # Every audit event about the job is sent from within the hop that decided it, and the
    # audit daemon's process span is that send's child.
    audit_sends = [
        s
        for s in done
        if s.kind is SpanKind.PRODUCER
        and str((s.attributes or {}).get("messaging.rabbitmq.destination.routing_key")).startswith(
            "audit."
        )
    ]
    assert {
        (s.attributes or {})["messaging.rabbitmq.destination.routing_key"] for s in audit_sends
    } >= {"audit.job.submitted", "audit.job.completed"}
    for send in audit_sends:
        audit_takes = _process_of(done, send)
        assert (audit_takes.attributes or {})["messaging.client.id"] == "audit"
    audit_submitted = _one(
        audit_sends, lambda s: s.name.startswith("send") and _parent_is(s, request)
    )
    assert (audit_submitted.attributes or {})[
        "messaging.rabbitmq.destination.routing_key"
    ] == "audit.job.submitted"

    # And the trace continues into the audit records.
    records = [r for r in iter_records(settings.data_dir / "audit") if r.event.job == job_id]
    assert records
    assert {r.event.trace for r in records} == {_TRACE}


async def test_with_tracing_off_a_callers_traceparent_still_names_the_jobs_trace(
    api: tuple[TestClient, str, BrokerSettings],
) -> None:
    """No OTEL_*: no spans, but a valid API traceparent is the trace sealed into the job (and
    so into its audit records); a malformed or oversized one is ignored for a fresh trace."""
    client, token, _ = api
    cases = {
        f"00-{_TRACE}-{_CALLER_SPAN}-01": _TRACE,
        f"00-{_TRACE}-{_CALLER_SPAN}": None,
        f"00-{_TRACE}-{_CALLER_SPAN}-01" + "," * 200: None,
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01": None,
    }
    for header, expected in cases.items():
        form = FormData()
        form.add_field("file", b"words\n", filename="a.txt", content_type="text/plain")
        response = await client.post(
            "/api/jobs",
            data=form,
            headers={"Authorization": f"Bearer {token}", "traceparent": header},
        )
        assert response.status == 202, await response.text()
        [job] = (await response.json())["jobs"]
        stored = await client.app[STORE_KEY].get(job["job_id"])
        assert stored is not None
        if expected is not None:
            assert stored.trace == expected
        else:
            assert stored.trace != _TRACE
            assert len(stored.trace or "") == 32
