"""The multi-host harness itself: hosts are separate network namespaces that reach each other,
and the root namespace's loopback-only RabbitMQ and PostgreSQL through the test's relays."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest
from multihost import Network

from broker import connect

pytestmark = [pytest.mark.multihost, pytest.mark.integration]

_PUBLISH = """
import asyncio, sys, aio_pika
async def main():
    connection = await aio_pika.connect(sys.argv[1], timeout=10)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(b"from " + sys.argv[3].encode()), routing_key=sys.argv[2]
        )
asyncio.run(main())
"""

_LISTEN = """
import socket, sys
server = socket.socket()
server.bind(("0.0.0.0", 7001))
server.listen()
print("ready", flush=True)
sys.stdin.read()  # until the test ends this process
"""

_TCP = """
import json, socket, sys
results = {}
for name, host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=3).close()
        results[name] = "open"
    except OSError as error:
        results[name] = type(error).__name__
print(json.dumps(results))
"""


async def test_a_host_publishes_to_the_root_broker_through_the_relay(
    network: Network, amqp_url: str, host_amqp_url: str, namespace: str
) -> None:
    """A message published from inside a namespace arrives in the root's broker."""
    host = network.add_host("B1")
    queue_name = f"{namespace}.probe"
    connection = await connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, auto_delete=False)
        done = await asyncio.to_thread(
            host.run,
            [sys.executable, "-c", textwrap.dedent(_PUBLISH), host_amqp_url, queue_name, "B1"],
        )
        assert done.returncode == 0, done.stderr
        message = await queue.get(timeout=10)
        assert message.body == b"from B1"
        await message.ack()
        await queue.delete()
    finally:
        await connection.close()


def test_hosts_are_separate_and_reach_each_other_and_the_relayed_services(
    network: Network, forwarder: object
) -> None:
    """Loopback is per host (A's 127.0.0.1 is not B's); the bridge joins them; PostgreSQL's
    port answers through the relay while the root's loopback is out of reach."""
    a, b = network.add_host("A"), network.add_host("B")
    listener = a.command([sys.executable, "-c", textwrap.dedent(_LISTEN)])
    server = subprocess.Popen(listener, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        probes = [
            ["a_over_bridge", a.address, 7001],
            ["own_loopback", "127.0.0.1", 7001],
            ["postgres_relayed", network.root_address, 5432],
            ["root_loopback_postgres", "127.0.0.1", 5432],
        ]
        done = b.run([sys.executable, "-c", _TCP, json.dumps(probes)])
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {
            "a_over_bridge": "open",
            "own_loopback": "ConnectionRefusedError",
            "postgres_relayed": "open",
            "root_loopback_postgres": "ConnectionRefusedError",
        }
    finally:
        server.kill()
        server.wait(timeout=10)
