"""Gateway test helpers: the real identity provider as issuer, a gateway on a real broker, tokens.

The issuer is the identity app itself, served on a localhost port with the test users: the
gateway reads its discovery document and JWKS over HTTP exactly as it would any provider's. Tokens are signed
with the identity ring's active key by ``keys.TokenSigner`` (what the identity's /token does),
so a test can ask for any subject, role or lifetime; ``issue_client_token`` takes one from
the real /token endpoint instead.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, FormData, web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from broker import BrokerSettings
from gateway import AUDIT_KEY, RUNTIME_KEY, STORE_KEY, GatewaySettings
from identity import STORE_KEY as IDENTITY_STORE_KEY
from identity import IdentitySettings, scopes_for_role
from identity import create_app as create_identity_app
from keys import KeyRing, TokenSigner
from schemas import AuditEvent
from store import BlobStore, Job, JobStore

AUDIENCE = "sealflow-gateway"
PASSWORD = "a password made for this test only"
USERS = {"alice": "user", "bob": "user", "vera": "viewer", "root": "admin"}
"""The identity's test users (each with ``PASSWORD``) and their roles."""


def free_port() -> int:
    """A port free now, for a setting a server binds later itself (a short race remains)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_socket() -> socket.socket:
    """A localhost socket bound to a fresh port and kept: its URL is known before the app is
    made, and no other process can take the port in between (``serve_on`` serves on it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://127.0.0.1:<port>`` of a bound socket."""
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def serve_on(app: web.Application, sock: socket.socket) -> TestServer:
    """A test server for ``app`` that will listen on ``sock`` (call ``start_server``)."""
    return TestServer(
        app, host="127.0.0.1", port=sock.getsockname()[1], socket_factory=lambda *_: sock
    )


@contextlib.asynccontextmanager
async def identity_server(
    keys_dir: Path, data_dir: Path, **overrides: Any
) -> AsyncIterator[Issuer]:
    """The real identity provider on a localhost port, with the test users (``USERS``);
    ``overrides`` are further ``IdentitySettings`` fields."""
    sock = listening_socket()
    url = url_of(sock)
    settings = IdentitySettings(
        issuer=url, data_dir=data_dir, keys_dir=keys_dir, api_audience=AUDIENCE, **overrides
    )
    server = serve_on(create_identity_app(settings), sock)
    await server.start_server()
    try:
        store = server.app[IDENTITY_STORE_KEY]
        for name, role in USERS.items():
            await store.add_user(name, PASSWORD, role)  # type: ignore[arg-type]
        yield Issuer(url=url, keys_dir=keys_dir, server=server)
    finally:
        await server.close()


def gateway_settings_for(issuer: Issuer, broker_settings: BrokerSettings) -> GatewaySettings:
    """The gateway's test settings: small upload limits, no JWKS refetch pause, quick SSE, and
    the audit query API on a port of its own (``audit_api_port``; nothing answers there unless
    the test runs the audit daemon)."""
    return GatewaySettings(
        issuer=issuer.url,
        api_audience=AUDIENCE,
        data_dir=broker_settings.data_dir,
        keys_dir=broker_settings.keys_dir,
        database_url=broker_settings.database_url,
        max_upload_bytes=64 * 1024,
        max_request_bytes=256 * 1024,
        max_files_per_upload=8,
        jwks_refetch_interval=0.0,
        sse_heartbeat_seconds=1.0,
        sse_poll_seconds=1.0,
        audit_url=f"http://127.0.0.1:{free_port()}",
        audit_timeout=5.0,
    )


@dataclass
class Issuer:
    """The identity provider running on localhost, and a way to mint its access tokens."""

    url: str
    keys_dir: Path
    server: TestServer

    @property
    def app(self) -> web.Application:
        return self.server.app

    def signer(self, *, issuer: str | None = None, audience: str = AUDIENCE) -> TokenSigner:
        return TokenSigner(issuer or self.url, audience, access_lifetime=900)

    def token(
        self,
        subject: str = "alice",
        role: str = "user",
        *,
        scopes: tuple[str, ...] | None = None,
        issuer: str | None = None,
        audience: str = AUDIENCE,
        now: float | None = None,
    ) -> str:
        key = KeyRing.load(self.keys_dir, "identity").signing_key()
        token, _ = self.signer(issuer=issuer, audience=audience).access_token(
            key,
            subject=subject,
            client_id="sealflow-cli",
            scope=scopes if scopes is not None else scopes_for_role(role),  # type: ignore[arg-type]
            roles=[role],
            now=now,
        )
        return token


@dataclass
class Gateway:
    """A running gateway and helpers to call it as someone."""

    client: TestClient
    settings: GatewaySettings
    issuer: Issuer
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def app(self) -> web.Application:
        return self.client.server.app

    @property
    def store(self) -> JobStore:
        return self.app[STORE_KEY]

    @property
    def blobs(self) -> BlobStore:
        return BlobStore(self.settings.data_dir / "blobs")

    def auth(self, who: str = "alice", role: str | None = None) -> dict[str, str]:
        """Authorization header for a named test user (alice/bob: user, vera: viewer, root: admin)."""
        roles = {"alice": "user", "bob": "user", "vera": "viewer", "root": "admin"}
        chosen = role or roles[who]
        key = f"{who}:{chosen}"
        if key not in self.tokens:
            self.tokens[key] = self.issuer.token(who, chosen)
        return {"Authorization": f"Bearer {self.tokens[key]}"}

    async def upload(
        self,
        files: list[tuple[str, str | None, bytes]],
        who: str = "alice",
        headers: dict[str, str] | None = None,
    ) -> ClientResponse:
        form = FormData()
        for name, content_type, data in files:
            form.add_field("file", data, filename=name, content_type=content_type)
        return await self.client.post(
            "/api/jobs", data=form, headers=headers if headers is not None else self.auth(who)
        )

    async def all_jobs(self) -> list[Job]:
        return await self.store.list(owner=None, limit=500)

    def blob_files(self) -> list[Path]:
        root = self.settings.data_dir / "blobs"
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    async def close_publish_channel(self) -> None:
        """Really close the channel the gateway publishes on: every publish now fails."""
        channel = self.app[RUNTIME_KEY].publish_channel
        assert channel is not None
        await channel.close()


async def error_body(
    response: ClientResponse, status: int, code: str | None = None
) -> dict[str, Any]:
    """Assert ``response`` is the JSON error shape with ``status`` (and ``code``)."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str)
    assert isinstance(body["detail"], str)
    if code is not None:
        assert body["error"] == code, body
    return body


async def issue_client_token(issuer: Issuer, client_id: str, role: str) -> str:
    """An access token from the identity's real /token (client_credentials)."""
    secret = f"{client_id}-secret-value"
    await issuer.app[IDENTITY_STORE_KEY].add_client(
        client_id,
        secret=secret,
        grant_types=["client_credentials"],
        role=role,  # type: ignore[arg-type]
    )
    from aiohttp import ClientSession

    async with ClientSession() as session:
        response = await session.post(
            f"{issuer.url}/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        assert response.status == 200, await response.text()
        body = await response.json()
    return str(body["access_token"])


async def next_event(response: ClientResponse) -> tuple[str, dict[str, Any]] | None:
    """The next ``(event, data)`` of a server-sent event stream; None once the server closed it.

    Heartbeat comments are skipped; lines may end in CRLF (aiohttp-sse's default) or LF.
    """
    name: str | None = None
    data: list[str] = []
    while raw := await response.content.readline():
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if name is not None:
                return name, json.loads("\n".join(data))
            name, data = None, []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].lstrip())
    return None


async def read_events(response: ClientResponse) -> list[tuple[str, dict[str, Any]]]:
    """Every remaining ``(event, data)`` of a stream, until the server closes it."""
    events: list[tuple[str, dict[str, Any]]] = []
    while (event := await next_event(response)) is not None:
        events.append(event)
    return events


def audit_api_port(settings: GatewaySettings) -> int:
    """The port where ``settings`` has the gateway read the audit log (the daemon serves it)."""
    return URL(settings.audit_url).port or 0


def record_audit(app: web.Application, monkeypatch: pytest.MonkeyPatch) -> list[AuditEvent]:
    """Every audit event the gateway emits from now on, in order (still published as well)."""
    sink = app[AUDIT_KEY]
    emit = sink.emit
    events: list[AuditEvent] = []

    async def recording(event: AuditEvent) -> None:
        events.append(event)
        await emit(event)

    monkeypatch.setattr(sink, "emit", recording)
    return events
