"""What tracing adds to one AMQP hop (send span + traceparent check + process span), off and on,
against the seal + open of the same hop, measured in one run on this machine.

Off is the default (no ``OTEL_*``): the cost is the tracing calls that find no tracer. On is an
SDK provider recording every span (with no exporter, so the export itself is not counted).

    .venv/bin/python bench/tracing.py [--rounds 7] [--n 5000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

from broker import ENVELOPE_HEADER, Opener, Sealer, SpentIds
from broker.tracing import install_tracer_provider, parent_context, processing, publishing
from keys import KeyRing, TrustStore
from schemas import SERVICES, JobSubmitted


def _per_op(fn: Callable[[], object], n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    """Print the median µs per hop of the tracing calls (off and on) and of seal + open."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--rounds", type=int, default=7)
    args.add_argument("--n", type=int, default=5000)
    options = args.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp)
        for service in SERVICES:
            KeyRing.create(keys, service)
        trust = TrustStore.from_rings(keys)
        sealer = Sealer(KeyRing.load(keys, "gateway").signing_key())
        opener = Opener("worker", trust, spent=SpentIds(10_000_000))
        message = JobSubmitted(
            job_id="0" * 32,
            owner="alice",
            filename="a.txt",
            content_type="text/plain",
            size=3,
            blob_sha256="0" * 64,
            submitted_at=datetime.now(UTC),
        )
        sealed = sealer.seal(message, aud="worker", sub="alice", trace="1" * 32)
        claims = opener.open(
            sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ
        ).claims

        def tracing_hop() -> None:
            with publishing("gateway", "sealflow.jobs", "job.submitted", claims.trace) as hop:
                headers = {ENVELOPE_HEADER: sealed.token, **hop.headers}
            parent = parent_context(headers, claims)
            with processing("worker", "worker.jobs", claims, parent, exchange="sealflow.jobs"):
                pass

        def sealed_hop() -> None:
            again = sealer.seal(message, aud="worker", sub="alice", trace="1" * 32)
            opener.open(again.body, again.headers(), message_id=again.jti, message_type=again.typ)

        provider = TracerProvider()
        off: list[float] = []
        on: list[float] = []
        envelope: list[float] = []
        for _ in range(options.rounds):
            install_tracer_provider(None)
            off.append(_per_op(tracing_hop, options.n))
            install_tracer_provider(provider)
            on.append(_per_op(tracing_hop, options.n))
            install_tracer_provider(None)
            envelope.append(_per_op(sealed_hop, max(options.n // 10, 1)))
        install_tracer_provider(None)
    median = {name: statistics.median(v) * 1e6 for name, v in (("off", off), ("on", on))}
    seal_open = statistics.median(envelope) * 1e6
    print(f"seal + open (ES256)        {seal_open:8.2f} µs per hop")
    for name, value in median.items():
        share = 100 * value / seal_open
        print(f"tracing {name:<3} (send+process) {value:8.2f} µs per hop  ({share:.1f} % of it)")


if __name__ == "__main__":
    main()
