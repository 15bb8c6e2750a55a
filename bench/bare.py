"""The anchors Sealflow's throughput is measured against: the same work on the bare stack.

- ``run_bare_flow``: the job flow of DESIGN §2 on aio-pika alone, with Sealflow's hops, quorum
  queues, publisher confirms and prefetch, and eight confirmed publishes per job as Sealflow
  sends (each hop's message plus its audit event), in four processes (gateway, worker, parser,
  audit) — but no envelopes, no storage, no parsing.
- ``bare_upload_app``: an aiohttp handler that takes a multipart file, writes it, fsyncs the
  file and its directory, and makes one confirmed publish to a quorum queue.

``bench/e2e.py`` and ``bench/gateway_http.py`` run these in the same invocation as the Sealflow
figure they compare with, and print both and the ratio.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from aiohttp import web

__all__ = ["BareFlowReport", "bare_upload_app", "run_bare_flow"]

PREFETCH = 16  # SEALFLOW_PREFETCH's default
_QUORUM = {"x-queue-type": "quorum"}
# queue -> routing keys bound to it, as in DESIGN §3
_QUEUES = {
    "worker.jobs": ("job.submitted", "parse.completed"),
    "parser.requests": ("parse.requested",),
    "gateway.events": ("job.completed",),
    "audit.events": ("audit.#",),
}


@dataclass(frozen=True)
class BareFlowReport:
    """Jobs/s of one bare run, with the load average around it."""

    jobs: int
    elapsed_s: float
    load_before: str
    load_after: str

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.elapsed_s


def _load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


async def _topology(channel: AbstractChannel, prefix: str) -> AbstractExchange:
    exchange = await channel.declare_exchange(
        f"{prefix}sealflow.jobs", aio_pika.ExchangeType.TOPIC, durable=True
    )
    for queue_name, keys in _QUEUES.items():
        queue = await channel.declare_queue(
            f"{prefix}{queue_name}", durable=True, arguments=_QUORUM
        )
        for key in keys:
            await queue.bind(exchange, key)
    return exchange


async def _publish(exchange: AbstractExchange, key: str, body: dict[str, Any]) -> None:
    """One persistent message, awaited until the broker confirms it."""
    message = aio_pika.Message(
        json.dumps(body).encode(),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=secrets.token_hex(16),
        type=key,
        content_type="application/json",
    )
    await exchange.publish(message, routing_key=key)


async def _hop(exchange: AbstractExchange, key: str, body: dict[str, Any]) -> None:
    """A hop's message and its audit event, as Sealflow publishes both."""
    await _publish(exchange, key, body)
    await _publish(exchange, f"audit.{key}", {"job": body["job"], "action": key})


Handler = Callable[[AbstractExchange, dict[str, Any], str], Awaitable[None]]


async def _worker(exchange: AbstractExchange, body: dict[str, Any], key: str) -> None:
    if key == "job.submitted":
        await _hop(exchange, "parse.requested", body)
    else:
        await _hop(exchange, "job.completed", body | {"state": "done"})


async def _parser(exchange: AbstractExchange, body: dict[str, Any], key: str) -> None:
    await _hop(exchange, "parse.completed", body | {"text": body.get("name", "")})


async def _audit(exchange: AbstractExchange, body: dict[str, Any], key: str) -> None:
    return None


_ROLES: dict[str, tuple[str, Handler]] = {
    "worker": ("worker.jobs", _worker),
    "parser": ("parser.requests", _parser),
    "audit": ("audit.events", _audit),
}


async def _serve(amqp_url: str, prefix: str, role: str, stop: Any) -> None:
    queue_name, handler = _ROLES[role]
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=PREFETCH)
        exchange = await _topology(channel, prefix)
        queue = await channel.get_queue(f"{prefix}{queue_name}")

        async def on_message(message: AbstractIncomingMessage) -> None:
            await handler(exchange, json.loads(message.body), message.routing_key or "")
            await message.ack()

        await queue.consume(on_message)
        await asyncio.to_thread(stop.wait)


def _serve_process(amqp_url: str, prefix: str, role: str, stop: Any) -> None:
    asyncio.run(_serve(amqp_url, prefix, role, stop))


async def _drive(amqp_url: str, prefix: str, jobs: int, in_flight: int) -> float:
    """Submit ``jobs`` with at most ``in_flight`` outstanding; seconds to the last completion."""
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=PREFETCH)
        exchange = await _topology(channel, prefix)
        slots = asyncio.Semaphore(in_flight)
        finished = 0
        all_done = asyncio.Event()

        async def on_event(message: AbstractIncomingMessage) -> None:
            nonlocal finished
            await message.ack()
            finished += 1
            slots.release()
            if finished == jobs:
                all_done.set()

        await (await channel.get_queue(f"{prefix}gateway.events")).consume(on_event)
        started = time.perf_counter()
        for n in range(jobs):
            await slots.acquire()
            await _hop(exchange, "job.submitted", {"job": secrets.token_hex(16), "name": f"d{n}"})
        await all_done.wait()
        return time.perf_counter() - started


def run_bare_flow(amqp_url: str, jobs: int, in_flight: int) -> BareFlowReport:
    """The bare job flow in four processes (this one is the gateway); a fresh prefix per run."""
    prefix = f"bench-bare-{secrets.token_hex(4)}."
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    load_before = _load()
    # The queues exist before any consumer looks for them.
    asyncio.run(_declare_only(amqp_url, prefix))
    processes = [
        context.Process(target=_serve_process, args=(amqp_url, prefix, role, stop), daemon=True)
        for role in _ROLES
    ]
    for process in processes:
        process.start()
    try:
        elapsed = asyncio.run(_drive(amqp_url, prefix, jobs, in_flight))
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        asyncio.run(_delete(amqp_url, prefix))
    return BareFlowReport(jobs, elapsed, load_before, _load())


async def _declare_only(amqp_url: str, prefix: str) -> None:
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        await _topology(await connection.channel(), prefix)


async def _delete(amqp_url: str, prefix: str) -> None:
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue_name in _QUEUES:
            await channel.queue_delete(f"{prefix}{queue_name}")
        await channel.exchange_delete(f"{prefix}sealflow.jobs")


def bare_upload_app(amqp_url: str, data_dir: Path) -> web.Application:
    """POST /api/jobs: write each ``file`` part, fsync it and its directory, one confirmed publish."""
    app = web.Application(client_max_size=64 * 2**20)
    state: dict[str, Any] = {}
    queue_name = f"bench-bare-upload-{secrets.token_hex(4)}"

    async def startup(app: web.Application) -> None:
        state["connection"] = await aio_pika.connect_robust(amqp_url)
        channel = await state["connection"].channel(publisher_confirms=True)
        await channel.declare_queue(queue_name, durable=True, arguments=_QUORUM)
        state["channel"] = channel

    async def cleanup(app: web.Application) -> None:
        await state["channel"].queue_delete(queue_name)
        await state["connection"].close()

    def write(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = data_dir / digest
        with open(path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        directory = os.open(data_dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return digest

    async def upload(request: web.Request) -> web.Response:
        reader = await request.multipart()
        accepted = []
        async for part in reader:
            if getattr(part, "name", None) != "file":
                continue
            data = await part.read()  # type: ignore[union-attr]
            digest = await asyncio.to_thread(write, bytes(data))
            job_id = secrets.token_hex(16)
            await state["channel"].default_exchange.publish(
                aio_pika.Message(
                    json.dumps({"job": job_id, "blob": digest}).encode(),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=queue_name,
            )
            accepted.append({"job_id": job_id, "state": "queued"})
        return web.json_response({"jobs": accepted}, status=202)

    app.router.add_post("/api/jobs", upload)
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return app
