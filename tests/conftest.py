"""Shared fixtures: a real RabbitMQ for integration tests, a namespace per test, key rings made
once per session and copied into each test, and cheap password hashing for the whole run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from identity_testing import TEST_HASHER
from keys_testing import ENVELOPE_ALGORITHMS, copy_rings, make_rings
from sealflow_testing import Env, EnvelopeKeys

pytest_plugins = ["pipeline_fixtures"]

_LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _ensure_local_broker(url: str) -> str:
    """Make sure the broker at ``url`` answers, starting a local RabbitMQ if it is down."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    if _port_open(host, port):
        return url
    if host not in {"127.0.0.1", "localhost", "::1"} or shutil.which("rabbitmq-server") is None:
        pytest.fail(
            f"RabbitMQ does not answer at {host}:{port} and cannot be started here; "
            "install rabbitmq-server, run a Docker engine, or set SEALFLOW_TEST_AMQP_URL",
            pytrace=False,
        )
    subprocess.run(["rabbitmq-server", "-detached"], check=False, timeout=60)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if _port_open(host, port):
            subprocess.run(["rabbitmqctl", "await_startup"], check=False, timeout=90)
            return url
        time.sleep(0.5)
    pytest.fail(
        f"started rabbitmq-server but {host}:{port} did not open within 90 s", pytrace=False
    )


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A real broker: SEALFLOW_TEST_AMQP_URL → a testcontainers RabbitMQ → the local one."""
    explicit = os.environ.get("SEALFLOW_TEST_AMQP_URL")
    if explicit:
        yield _ensure_local_broker(explicit)
        return
    if _docker_engine_answers():
        from testcontainers.community.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-management") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(container.port)
            vhost = container.vhost.lstrip("/") or "%2F"
            yield f"amqp://{container.username}:{container.password}@{host}:{port}/{vhost}"
        return
    yield _ensure_local_broker(_LOCAL_AMQP_URL)


@pytest.fixture
def namespace() -> str:
    """A fresh SEALFLOW_NAMESPACE, so tests sharing one broker never see each other's messages."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def rings_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rings for every service (ES256) and trust.json, made once: copy it, never change it."""
    return make_rings(tmp_path_factory.mktemp("rings") / "keys")


@pytest.fixture(scope="session")
def envelope_rings_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The envelope tests' rings (parser RS256, identity EdDSA, the rest ES256), made once."""
    return make_rings(tmp_path_factory.mktemp("envelope-rings") / "keys", ENVELOPE_ALGORITHMS)


@pytest.fixture(scope="session")
def envelope_keys(envelope_rings_template: Path) -> EnvelopeKeys:
    """The envelope rings' signing keys and trust store, loaded once; tests only read them."""
    return EnvelopeKeys.load(envelope_rings_template)


@pytest.fixture(scope="module")
def handler_env(
    envelope_keys: EnvelopeKeys,
    envelope_rings_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Env:
    """The envelope keys for one module, over its own copy of the rings (a handler test's
    recording runtime writes trust.json there)."""
    keys_dir = copy_rings(envelope_rings_template, tmp_path_factory.mktemp("keys") / "keys")
    return envelope_keys.env(keys_dir)


@pytest.fixture
def keys_dir(rings_template: Path, tmp_path: Path) -> Path:
    """This test's own key rings for every service plus the trust store (a copy of the template)."""
    return copy_rings(rings_template, tmp_path / "keys")


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Argon2id with the smallest parameters it allows, in this test process only.

    Production keeps argon2-cffi's RFC 9106 profile (``identity.hashing``; pinned by
    ``tests/identity/test_hashing.py``, which checks it in a fresh interpreter). Daemons the
    tests start as subprocesses hash with the production parameters.
    """
    from identity import hashing

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hashing, "_HASHER", TEST_HASHER)
        patch.setattr(hashing, "_DUMMY_HASH", TEST_HASHER.hash("a dummy password"))
        yield


@pytest.fixture
async def cleanup_namespace(amqp_url: str, namespace: str) -> AsyncIterator[None]:
    """Delete the namespace's queues and exchanges after the test."""
    yield
    from broker import Topology, connect

    connection = await connect(amqp_url)
    try:
        channel = await connection.channel()
        await Topology(namespace).delete(channel)
    finally:
        await connection.close()
