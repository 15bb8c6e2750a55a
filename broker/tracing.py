"""OpenTelemetry across every hop: one span per publish and per consume, the W3C ``traceparent``
AMQP header, and its binding to the envelope's signed ``trace`` claim (DESIGN §4).

Off unless the standard ``OTEL_*`` variables ask for an exporter (:func:`configure_tracing`);
while off, a hop costs a ``None`` check and a ``nullcontext`` per side (``bench/tracing.py``).
The header format is the API's :class:`TraceContextTextMapPropagator`, never parsed here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from broker.envelope import EnvelopeError, Reason

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    from schemas import EnvelopeClaims

__all__ = [
    "TRACEPARENT_HEADER",
    "PublishHop",
    "configure_tracing",
    "current_trace_id",
    "extract_traceparent",
    "install_tracer_provider",
    "parent_context",
    "processing",
    "publishing",
    "tracer",
    "tracing_requested",
]

TRACEPARENT_HEADER: Final = "traceparent"
"""The W3C Trace Context header, carried as an AMQP header beside the envelope."""
_MAX_TRACEPARENT: Final = 128
_PROPAGATOR: Final = TraceContextTextMapPropagator()
_INSTRUMENTATION: Final = "sealflow"
_TRUE: Final = frozenset({"true", "1", "yes", "on"})

_tracer: Tracer | None = None


def tracer() -> Tracer | None:
    """The tracer every Sealflow span comes from, or ``None`` while tracing is off."""
    return _tracer


def install_tracer_provider(provider: TracerProvider | None) -> None:
    """Make ``provider`` the source of Sealflow's spans (``None``: tracing off again)."""
    global _tracer
    _tracer = None if provider is None else provider.get_tracer(_INSTRUMENTATION)


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """True when the standard ``OTEL_*`` variables ask for traces to be exported.

    Sealflow exports nothing by default (unlike the SDK's own default of ``otlp``): an exporter
    is named by ``OTEL_TRACES_EXPORTER`` (other than ``none``) or implied by an OTLP endpoint,
    and ``OTEL_SDK_DISABLED=true`` wins over both.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing(service: str) -> SdkTracerProvider | None:
    """Export this process's spans over OTLP if ``OTEL_*`` asks for it (see
    :func:`tracing_requested`); returns the provider to shut down at exit, else ``None``.

    The exporter reads its endpoint, headers, protocol and timeouts from ``OTEL_EXPORTER_OTLP_*``
    itself; ``OTEL_SERVICE_NAME`` (or ``OTEL_RESOURCE_ATTRIBUTES``) overrides ``service``.
    """
    if not tracing_requested():
        install_tracer_provider(None)
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    named = bool(os.environ.get("OTEL_SERVICE_NAME"))
    resource = Resource.create({} if named else {SERVICE_NAME: service})
    provider = SdkTracerProvider(resource=resource)
    named_exporters = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")
    exporters = {name.strip().lower() for name in named_exporters}
    if "console" in exporters:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    if exporters - {"console", "none"}:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install_tracer_provider(provider)
    return provider


def current_trace_id() -> str | None:
    """The W3C trace id of the current context (a request's span or its incoming
    ``traceparent``), or ``None`` when there is none."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def _messaging(operation: str, kind: str, exchange: str, routing_key: str) -> dict[str, Any]:
    """The messaging semantic-convention attributes shared by a send and a process span."""
    return {
        "messaging.system": "rabbitmq",
        "messaging.operation.name": operation,
        "messaging.operation.type": kind,
        "messaging.destination.name": exchange,
        "messaging.rabbitmq.destination.routing_key": routing_key,
    }


@dataclass(slots=True)
class PublishHop:
    """What a publish needs of its span: the trace id to sign and the headers to carry it.

    ``trace`` is the envelope's ``trace`` claim; ``headers`` holds ``traceparent`` only when the
    span belongs to that same trace, so a receiver never sees a header the claim contradicts.
    """

    trace: str | None
    span: Span | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def describe(self, *, message_id: str, body_size: int, job: str | None) -> None:
        """Name the sealed message on the span (its id, body size and job)."""
        if self.span is None:
            return
        self.span.set_attribute("messaging.message.id", message_id)
        self.span.set_attribute("messaging.message.body.size", body_size)
        if job is not None:
            self.span.set_attribute("messaging.message.conversation_id", job)


def publishing(
    service: str, exchange: str, routing_key: str, trace_id: str | None
) -> AbstractContextManager[PublishHop]:
    """A ``send`` (PRODUCER) span around one publish, child of the current context.

    ``trace_id`` is the trace the caller means to sign (``None``: the span's own). A trace that
    differs from the current context's (an event about an older job) is signed as given, and
    no ``traceparent`` is sent for it. While tracing is off, no span: the trace as given.
    """
    if _tracer is None:
        return nullcontext(PublishHop(trace=trace_id))
    return _send_span(_tracer, service, exchange, routing_key, trace_id)


@contextmanager
def _send_span(
    spans: Tracer, service: str, exchange: str, routing_key: str, trace_id: str | None
) -> Iterator[PublishHop]:
    attributes = _messaging("send", "send", exchange, routing_key)
    attributes["messaging.client.id"] = service
    with spans.start_as_current_span(
        f"send {exchange}", kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        context = span.get_span_context()
        own = trace.format_trace_id(context.trace_id) if context.is_valid else None
        hop = PublishHop(trace=trace_id if trace_id is not None else own, span=span)
        if own is not None and hop.trace == own:
            _PROPAGATOR.inject(hop.headers)
        yield hop


def extract_traceparent(value: object) -> Context | None:
    """The remote span context a ``traceparent`` value names, or ``None`` if it names none
    (absent, oversized, not a string, or not the W3C format)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str) or len(value) > _MAX_TRACEPARENT:
        return None
    context = _PROPAGATOR.extract({TRACEPARENT_HEADER: value})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def parent_context(headers: Mapping[str, Any] | None, claims: EnvelopeClaims) -> Context | None:
    """The remote parent a delivery's ``traceparent`` names, once checked against the signed
    ``trace`` claim; ``None`` when the message carries no ``traceparent``.

    A header whose trace id is not the signed one (or that is malformed, or present when no
    trace was signed) was changed in transit: the delivery is refused as ``trace_mismatch``.
    """
    raw = (headers or {}).get(TRACEPARENT_HEADER)
    if raw is None:
        return None
    context = extract_traceparent(raw)
    if context is None:
        raise _mismatch(claims, "traceparent header is not a W3C traceparent")
    carried = trace.format_trace_id(trace.get_current_span(context).get_span_context().trace_id)
    if claims.trace is None:
        raise _mismatch(claims, f"traceparent names trace {carried}, the envelope signs none")
    if carried != claims.trace:
        raise _mismatch(
            claims, f"traceparent names trace {carried}, the envelope signs {claims.trace}"
        )
    return context


def _mismatch(claims: EnvelopeClaims, detail: str) -> EnvelopeError:
    return EnvelopeError(Reason.TRACE_MISMATCH, detail, claims=claims)


_NO_SPAN: Final[AbstractContextManager[None]] = nullcontext()


def processing(
    service: str, queue: str, claims: EnvelopeClaims, parent: Context | None, *, exchange: str
) -> AbstractContextManager[Span | None]:
    """A ``process`` (CONSUMER) span around one handled delivery, child of the sender's send
    span (``parent``); ``None`` while tracing is off."""
    if _tracer is None:
        return _NO_SPAN
    return _process_span(_tracer, service, queue, claims, parent, exchange)


@contextmanager
def _process_span(
    spans: Tracer,
    service: str,
    queue: str,
    claims: EnvelopeClaims,
    parent: Context | None,
    exchange: str,
) -> Iterator[Span]:
    attributes = _messaging("process", "process", exchange, claims.typ)
    attributes.update(
        {
            "messaging.client.id": service,
            "messaging.consumer.group.name": queue,
            "messaging.destination.subscription.name": queue,
            "messaging.message.id": claims.jti,
        }
    )
    if claims.job is not None:
        attributes["messaging.message.conversation_id"] = claims.job
    with spans.start_as_current_span(
        f"process {queue}",
        context=parent if parent is not None else Context(),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    ) as span:
        yield span
