"""Broker throughput with and without envelopes, and end-to-end job latency, in one run.

(1) bare aio-pika: N messages published with confirms, consumed with manual acks;
(2) the same through ``broker/``: seal + confirmed publish, then the Consumer (open every
    envelope, replay cache, metrics) with a no-op handler.
Both on the same broker, same queue type (quorum), same body, same publish concurrency and
prefetch; rounds alternate so drift hits both alike. Then the end-to-end latency of small text
jobs (published → ``job.completed`` on ``gateway.events``) through the real worker, parser and
audit daemons, run in this process.

    .venv/bin/python bench/pipeline.py [--n 5000] [--rounds 3] [--jobs 200]
    SEALFLOW_TEST_AMQP_URL=amqp://… to use another broker (default: the local one)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import structlog

from broker import (
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
from keys import KeyRing, TrustStoreFile, write_trust_store
from schemas import SERVICES, JobSubmitted

CONCURRENCY = 64
PREFETCH = 128


class _NoAudit:
    async def emit(self, event: Any) -> None:
        raise AssertionError(f"unexpected audit event in the benchmark: {event}")


def _message() -> JobSubmitted:
    return JobSubmitted(
        job_id=secrets.token_hex(16),
        owner="alice@example.com",
        filename="report.txt",
        content_type="text/plain",
        size=4096,
        blob_sha256="9" * 64,
        submitted_at=datetime.now(UTC),
    )


async def _publish_all(n: int, publish_one: Any) -> float:
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with semaphore:
            await publish_one()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - start)


async def bare_round(
    channel: Any, consume_channel: Any, queue_name: str, n: int
) -> tuple[float, float]:
    exchange = channel.default_exchange
    body = _message().model_dump_json().encode()

    async def publish_one() -> None:
        await exchange.publish(
            aio_pika.Message(
                body=body,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=secrets.token_hex(16),
                type="job.submitted",
                content_type="application/json",
            ),
            routing_key=queue_name,
            mandatory=True,
        )

    pub_rate = await _publish_all(n, publish_one)
    queue = await consume_channel.get_queue(queue_name, ensure=False)
    received = 0
    done = asyncio.Event()

    async def on_message(message: Any) -> None:
        nonlocal received
        _ = JobSubmitted.model_validate_json(message.body)  # the same parse the sealed path does
        await message.ack()
        received += 1
        if received == n:
            done.set()

    start = time.perf_counter()
    tag = await queue.consume(on_message)
    await done.wait()
    rate = n / (time.perf_counter() - start)
    await queue.cancel(tag)
    return pub_rate, rate


async def sealed_round(
    publisher: Publisher,
    consume_channel: Any,
    topology: Topology,
    keys_dir: Path,
    settings: BrokerSettings,
    n: int,
) -> tuple[float, float]:
    message = _message()

    async def publish_one() -> None:
        await publisher.send(
            message, typ="job.submitted", aud="worker", sub="alice@example.com", job=message.job_id
        )

    pub_rate = await _publish_all(n, publish_one)
    received = 0
    done = asyncio.Event()

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        nonlocal received
        received += 1
        if received == n:
            done.set()

    consumer = Consumer(
        queue="worker.jobs",
        channel=consume_channel,
        topology=topology,
        opener=Opener("worker", TrustStoreFile(keys_dir / "trust.json"), spent=SpentIds(n * 4)),
        publisher=publisher,
        audit=_NoAudit(),
        handlers={"job.submitted": handler},
        settings=settings,
    )
    start = time.perf_counter()
    await consumer.start()
    await done.wait()
    rate = n / (time.perf_counter() - start)
    await consumer.stop()
    return pub_rate, rate


async def latency(
    amqp_url: str, keys_dir: Path, data_dir: Path, jobs: int
) -> tuple[list[float], float]:
    from audit.daemon import AuditDaemonSettings
    from audit.daemon import serve as serve_audit
    from parser.daemon import ParserSettings
    from parser.daemon import serve as serve_parser
    from store import BlobStore, NewJob, SqliteJobStore
    from workers import WorkerSettings
    from workers import serve as serve_worker

    namespace = f"bench-e2e-{secrets.token_hex(4)}"
    settings = BrokerSettings(
        amqp_url=amqp_url, namespace=namespace, keys_dir=keys_dir, data_dir=data_dir
    )
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            serve_audit(settings, AuditDaemonSettings(health_port=0, api_port=0), stop=stop)
        ),
        asyncio.create_task(
            serve_parser(settings, ParserSettings(health_port=0, processes=1), stop=stop)
        ),
        asyncio.create_task(serve_worker(settings, WorkerSettings(health_port=0), stop=stop)),
    ]
    connection = await connect(amqp_url)
    channel = await open_channel(connection, prefetch=64)
    topology = Topology(namespace)
    await topology.declare(channel)
    publisher = Publisher(
        channel, topology, Sealer(KeyRing.load(keys_dir, "gateway").signing_key())
    )
    opener = Opener("gateway", TrustStoreFile(keys_dir / "trust.json"), spent=SpentIds(jobs * 8))
    store = await SqliteJobStore.open(data_dir / "jobs.db")
    blobs = BlobStore(data_dir / "blobs")
    sent: dict[str, float] = {}
    latencies: list[float] = []

    async def on_event(message: Any) -> None:
        opened = opener.open(
            message.body, message.headers, message_id=message.message_id, message_type=message.type
        )
        await message.ack()
        if opened.claims.typ == "job.completed":
            latencies.append(time.perf_counter() - sent[opened.message.job_id])

    events = await channel.get_queue(topology.queue("gateway.events"), ensure=False)
    await events.consume(on_event)
    await asyncio.sleep(1.0)  # let the daemons finish starting before timing anything

    async def submit(i: int) -> None:
        data = f"small document {i}\n".encode() * 20
        sha = blobs.put(data)
        job_id = secrets.token_hex(16)
        await store.create(
            NewJob(
                job_id=job_id,
                owner="alice",
                filename=f"d{i}.txt",
                content_type="text/plain",
                size=len(data),
                blob_sha256=sha,
            )
        )
        message = JobSubmitted(
            job_id=job_id,
            owner="alice",
            filename=f"d{i}.txt",
            content_type="text/plain",
            size=len(data),
            blob_sha256=sha,
            submitted_at=datetime.now(UTC),
        )
        sent[job_id] = time.perf_counter()
        await publisher.send(
            message,
            typ="job.submitted",
            aud="worker",
            sub="alice",
            job=job_id,
            act={"sub": "gateway"},
        )

    # Unloaded latency: one job in flight at a time.
    for i in range(jobs):
        target = len(latencies) + 1
        await submit(i)
        async with asyncio.timeout(60):
            while len(latencies) < target:
                await asyncio.sleep(0.001)
    unloaded = list(latencies)
    # Throughput: a burst of jobs, all submitted at once.
    latencies.clear()
    burst_start = time.perf_counter()
    await asyncio.gather(*(submit(jobs + i) for i in range(jobs)))
    async with asyncio.timeout(300):
        while len(latencies) < jobs:
            await asyncio.sleep(0.01)
    throughput = jobs / (time.perf_counter() - burst_start)
    stop.set()
    await asyncio.gather(*tasks)
    await store.close()
    await topology.delete(channel)
    await connection.close()
    return unloaded, throughput


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    amqp_url = os.environ.get("SEALFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))

    with tempfile.TemporaryDirectory() as tmp:
        keys_dir = Path(tmp) / "keys"
        for service in SERVICES:
            KeyRing.create(keys_dir, service)
        write_trust_store(keys_dir)
        namespace = f"bench-{secrets.token_hex(4)}"
        settings = BrokerSettings(
            amqp_url=amqp_url, namespace=namespace, keys_dir=keys_dir, prefetch=PREFETCH
        )
        connection = await connect(amqp_url)
        channel = await open_channel(connection)
        consume_channel = await open_channel(connection, prefetch=PREFETCH)
        topology = Topology(namespace)
        await topology.declare(channel)
        bare_queue = topology.name("bare")
        await channel.declare_queue(bare_queue, durable=True, arguments={"x-queue-type": "quorum"})
        publisher = Publisher(
            channel, topology, Sealer(KeyRing.load(keys_dir, "gateway").signing_key())
        )
        bare_pub, bare_con, sealed_pub, sealed_con = [], [], [], []
        for _ in range(args.rounds):
            p, c = await bare_round(channel, consume_channel, bare_queue, args.n)
            bare_pub.append(p)
            bare_con.append(c)
            p, c = await sealed_round(
                publisher, consume_channel, topology, keys_dir, settings, args.n
            )
            sealed_pub.append(p)
            sealed_con.append(c)
        await channel.queue_delete(bare_queue)
        await topology.delete(channel)
        await connection.close()

        bp, bc = statistics.median(bare_pub), statistics.median(bare_con)
        sp, sc = statistics.median(sealed_pub), statistics.median(sealed_con)
        print(
            f"pipeline benchmark: {args.rounds} rounds × {args.n} messages, quorum queues, "
            f"{CONCURRENCY} publishes in flight, prefetch {PREFETCH}; median msg/s"
        )
        print(f"{'':<10} {'bare':>9} {'sealed':>9} {'ratio':>7}  target")
        print(
            f"{'publish':<10} {bp:>9.0f} {sp:>9.0f} {sp / bp:>6.0%}  ≥85%  {'ok' if sp / bp >= 0.85 else 'MISSED'}"
        )
        print(
            f"{'consume':<10} {bc:>9.0f} {sc:>9.0f} {sc / bc:>6.0%}  ≥85%  {'ok' if sc / bc >= 0.85 else 'MISSED'}"
        )

        lat, throughput = await latency(amqp_url, keys_dir, Path(tmp) / "data", args.jobs)
        lat_ms = sorted(x * 1000 for x in lat)
        p50 = lat_ms[len(lat_ms) // 2]
        p99 = lat_ms[min(len(lat_ms) - 1, int(len(lat_ms) * 0.99))]
        print(
            f"end-to-end latency (published → job.completed), {args.jobs} small text jobs one at a "
            f"time: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )
        print(
            f"end-to-end throughput, a burst of {args.jobs} small text jobs: {throughput:.0f} jobs/s"
        )


if __name__ == "__main__":
    asyncio.run(main())
