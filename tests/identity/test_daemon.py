"""The identity daemon: where it binds, that it signs users in with the broker down, that its
audit events reach ``audit.events`` sealed for ``audit``, and that SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from control_testing import control_receiver
from daemon_processes import DaemonProcess, daemon_env
from gateway_testing import free_port
from identity_testing import PASSWORDS, REDIRECT, WEB, new_pkce
from prometheus_client import REGISTRY
from sealflow_testing import queue_counts

from broker import BrokerSettings, Opener, Topology, connect, open_channel
from identity import AUDIT_KEY, STORE_KEY, IdentitySettings, verify_access_token
from identity.daemon import IdentityServer
from keys import KeyRing, TrustStoreFile
from schemas import AuditEvent

REPO = Path(__file__).resolve().parents[2]


def test_it_binds_to_the_issuer_host_and_port_unless_overridden() -> None:
    assert IdentitySettings().bind() == ("localhost", 8081)
    assert IdentitySettings(issuer="https://id.example/").bind() == ("id.example", 443)
    assert IdentitySettings(issuer="http://id.example").bind() == ("id.example", 80)
    override = IdentitySettings(identity_host="0.0.0.0", identity_port=9000)
    assert override.bind() == ("0.0.0.0", 9000)


def test_the_bind_overrides_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALFLOW_IDENTITY_HOST", "127.0.0.1")
    monkeypatch.setenv("SEALFLOW_IDENTITY_PORT", "18081")
    assert IdentitySettings().bind() == ("127.0.0.1", 18081)


async def _sign_in(base: str, password: str) -> int:
    """Drive the login form over HTTP; the status of the form POST."""
    pkce = new_pkce()
    params = {
        "response_type": "code",
        "client_id": WEB,
        "redirect_uri": REDIRECT,
        "scope": "openid jobs:read",
        "state": "s",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    # unsafe=True: keep cookies from an IP-address host, as a browser does
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        page = await session.get(f"{base}/authorize", params=params)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
        assert csrf is not None
        form = params | {"csrf_token": csrf.group(1), "username": "alice", "password": password}
        posted = await session.post(f"{base}/authorize", data=form, allow_redirects=False)
        return posted.status


def _settings(tmp_path: Path, keys_dir: Path) -> IdentitySettings:
    return IdentitySettings(
        data_dir=tmp_path / "data",
        keys_dir=keys_dir,
        identity_host="127.0.0.1",
        identity_port=0,
        identity_health_port=0,
    )


async def _started(server: IdentityServer) -> str:
    await server.start()
    store = server.app[STORE_KEY]
    await store.add_user("alice", PASSWORDS["alice"], "user")
    await store.add_client(WEB, redirect_uris=[REDIRECT])
    return f"http://127.0.0.1:{server.port}"


def _publish_failures() -> float:
    value = REGISTRY.get_sample_value(
        "sealflow_identity_audit_failures_total", {"reason": "publish_failed"}
    )
    return value or 0.0


async def test_sign_ins_work_while_the_broker_is_down(tmp_path: Path, keys_dir: Path) -> None:
    dead = BrokerSettings(
        amqp_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/",
        data_dir=tmp_path / "data",
        keys_dir=keys_dir,
        connect_timeout=2,
    )
    server = IdentityServer(_settings(tmp_path, keys_dir), dead)
    before = _publish_failures()
    try:
        base = await _started(server)
        assert await _sign_in(base, "wrong") == 401
        assert await _sign_in(base, PASSWORDS["alice"]) == 302
        await asyncio.wait_for(server.app[AUDIT_KEY].drain(), 10)
        assert not server.broker_connected.is_set()
    finally:
        await server.stop()
    assert _publish_failures() - before == 2  # signin.failed, signin.succeeded: logged, counted


async def test_health_is_ready_without_the_broker_on_the_configured_host(
    tmp_path: Path, keys_dir: Path
) -> None:
    """The identity shares the one health listener: bound to ``SEALFLOW_HEALTH_HOST`` (here
    127.0.0.2, so 127.0.0.1 is refused) and ready while the broker is down, saying so."""
    dead = BrokerSettings(
        amqp_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/",
        data_dir=tmp_path / "data",
        keys_dir=keys_dir,
        connect_timeout=2,
        health_host="127.0.0.2",
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        port = int(sock.getsockname()[1])
    settings = _settings(tmp_path, keys_dir).model_copy(update={"identity_health_port": port})
    server = IdentityServer(settings, dead)
    try:
        await server.start()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.2:{port}/readyz") as response:
                assert response.status == 200
                assert await response.json() == {
                    "status": "ready",
                    "service": "identity",
                    "broker": False,
                }
            with pytest.raises(aiohttp.ClientConnectorError):
                async with session.get(f"http://127.0.0.1:{port}/healthz"):
                    pass
    finally:
        await server.stop()


@pytest.mark.integration
async def test_audit_events_arrive_sealed_on_the_audit_queue(
    tmp_path: Path, keys_dir: Path, broker_settings: BrokerSettings, cleanup_namespace: None
) -> None:
    server = IdentityServer(_settings(tmp_path, keys_dir), broker_settings)
    try:
        base = await _started(server)
        await asyncio.wait_for(server.broker_connected.wait(), 30)
        assert await _sign_in(base, "wrong") == 401
        assert await _sign_in(base, PASSWORDS["alice"]) == 302
        await asyncio.wait_for(server.app[AUDIT_KEY].drain(), 10)
    finally:
        await server.stop()

    topology = Topology(broker_settings.namespace)
    opener = Opener("audit", TrustStoreFile(keys_dir / "trust.json"))
    connection = await connect(broker_settings.amqp_url)
    try:
        channel = await open_channel(connection)
        name = topology.queue("audit.events")
        assert (await queue_counts(channel, name))[0] == 2
        queue = await channel.get_queue(name, ensure=False)
        events: list[AuditEvent] = []
        # audit.events is single-active-consumer, which refuses basic.get: consume instead.
        async with asyncio.timeout(30), queue.iterator(no_ack=True) as messages:
            async for message in messages:
                opened = opener.open(
                    message.body,
                    message.headers,
                    message_id=message.message_id,
                    message_type=message.type,
                )
                assert opened.claims.iss == "identity"
                assert opened.claims.aud == "audit"
                assert isinstance(opened.message, AuditEvent)
                events.append(opened.message)
                if len(events) == 2:
                    break
    finally:
        await connection.close()
    assert [(event.type, event.outcome) for event in events] == [
        ("signin.failed", "failure"),
        ("signin.succeeded", "success"),
    ]
    assert all(event.actor == "alice" for event in events)


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_sealflow_identity_serves_and_stops_cleanly_on_sigterm(
    tmp_path: Path, keys_dir: Path, amqp_url: str, namespace: str, cleanup_namespace: None
) -> None:
    port = free_port()
    env = daemon_env(
        amqp_url,
        namespace,
        tmp_path / "data",
        keys_dir,
        SEALFLOW_ISSUER=f"http://127.0.0.1:{port}",
        SEALFLOW_IDENTITY_HEALTH_PORT="0",
    )
    identity = DaemonProcess(["identity"], env)
    try:
        identity.wait_for("identity.broker_connected")
        assert identity.count("identity.listening") == 1
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /.well-known/openid-configuration HTTP/1.0\r\n\r\n")
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200")
        assert f"http://127.0.0.1:{port}/token".encode() in answer
        assert identity.stop() == 0
        assert identity.count("identity.stopped") == 1
        lines = list(identity.lines)
        assert all(line.text.startswith("{") for line in lines), identity.tail()
        assert all(line.fields.get("service") == "identity" for line in lines)
    finally:
        if identity.process.poll() is None:
            identity.kill()


@pytest.mark.integration
async def test_a_token_revoked_at_the_daemon_is_revoked_at_the_receivers(
    tmp_path: Path, keys_dir: Path, broker_settings: BrokerSettings, cleanup_namespace: None
) -> None:
    """/revoke is broadcast on sealflow.control, signed by the identity, and a receiver's
    revocation list applies it (issue 11.6)."""
    receiver = broker_settings.model_copy(update={"data_dir": tmp_path / "gateway-host"})
    server = IdentityServer(_settings(tmp_path, keys_dir), broker_settings)
    try:
        base = await _started(server)
        await server.app[STORE_KEY].add_client(
            "reports", secret="reports secret", grant_types=["client_credentials"], role="user"
        )
        await asyncio.wait_for(server.broker_connected.wait(), 30)
        async with control_receiver("gateway", receiver) as revocations:
            auth = {"Authorization": aiohttp.encode_basic_auth("reports", "reports secret")}
            async with aiohttp.ClientSession() as http:
                issued = await http.post(
                    f"{base}/token", data={"grant_type": "client_credentials"}, headers=auth
                )
                token = (await issued.json())["access_token"]
                revoked = await http.post(f"{base}/revoke", data={"token": token}, headers=auth)
                assert revoked.status == 200
            applied = await revocations.next()
    finally:
        await server.stop()
    claims = verify_access_token(
        token,
        KeyRing.load(keys_dir, "identity").verification_keys(),
        issuer=server.settings.issuer_url,
        audience=server.settings.api_audience,
    )
    assert (applied.kind, applied.value) == ("jti", claims.jti)
    assert revocations.revoked(kid="", jti=claims.jti, sub="", now=time.time()) == "jti"
