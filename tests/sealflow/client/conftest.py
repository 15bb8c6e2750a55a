"""Test peers for the client: a small OAuth provider speaking RFC 8628, and a small gateway.

They are real aiohttp servers on loopback that answer as the RFCs and the API contract say,
with scripts that tests set (what the next device-code polls answer, which token to refuse),
so that the client's state machines are exercised over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner, Result
from structlog_testing import structlog_restored

from sealflow.cli import cli
from sealflow.client import ClientSettings, TokenCache, TokenSet

CLIENT_ID = "sealflow-cli"
SERVICE_ID = "nightly-script"
SERVICE_SECRET = "s3cret-for-tests"


def _oauth_error(error: str, description: str = "", status: int = 400) -> web.Response:
    return web.json_response(
        {"error": error, "error_description": description},
        status=status,
        headers={"Cache-Control": "no-store"},
    )


@dataclass
class IdentityPeer:
    """An OAuth 2.0 provider with the device grant, refresh rotation, revocation, userinfo."""

    url: str = ""
    # What successive device-code polls answer: an OAuth error code, or "approve".
    polls: list[str] = field(default_factory=lambda: ["approve"])
    interval: int = 5
    device_expires_in: int = 600
    expires_in: int = 900
    with_device_endpoint: bool = True
    poll_log: list[str] = field(default_factory=list)
    live_access: set[str] = field(default_factory=set)
    live_refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> subject
    spent_refresh: set[str] = field(default_factory=set)
    revoked: list[str] = field(default_factory=list)
    refreshes: int = 0
    refresh_fails_with: str | None = None
    revoke_status: int = 200
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def issue(self, subject: str, *, refresh: bool = True) -> dict[str, Any]:
        access = f"at-{secrets.token_hex(8)}"
        self.live_access.add(access)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": "openid jobs:read jobs:write",
        }
        if refresh:
            token = f"rt-{secrets.token_hex(8)}"
            self.live_refresh[token] = subject
            body["refresh_token"] = token
        return body

    def token_set(self, *, expires_at: float, subject: str = "alice") -> TokenSet:
        """A cache entry as a past sign-in would have left it."""
        body = self.issue(subject)
        return TokenSet(
            issuer=self.url,
            client_id=CLIENT_ID,
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            expires_at=expires_at,
            scope=body["scope"],
            subject=subject,
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_post("/device_authorization", self._device_authorization)
        app.router.add_post("/token", self._token)
        app.router.add_post("/revoke", self._revoke)
        app.router.add_get("/userinfo", self._userinfo)
        return app

    async def _discovery(self, request: web.Request) -> web.Response:
        body = {
            "issuer": self.url,
            "token_endpoint": f"{self.url}/token",
            "revocation_endpoint": f"{self.url}/revoke",
            "userinfo_endpoint": f"{self.url}/userinfo",
        }
        if self.with_device_endpoint:
            body["device_authorization_endpoint"] = f"{self.url}/device_authorization"
        return web.json_response(body)

    async def _form(self, request: web.Request, path: str) -> dict[str, str]:
        form = {key: str(value) for key, value in (await request.post()).items()}
        if "Authorization" in request.headers:
            form["_authorization"] = request.headers["Authorization"]
        self.requests.append((path, form))
        return form

    async def _device_authorization(self, request: web.Request) -> web.Response:
        form = await self._form(request, "/device_authorization")
        if form.get("client_id") != CLIENT_ID:
            return _oauth_error("invalid_client", "unknown client", 401)
        return web.json_response(
            {
                "device_code": "device-code-1",
                "user_code": "WDJB-MJHT",
                "verification_uri": f"{self.url}/device",
                "verification_uri_complete": f"{self.url}/device?user_code=WDJB-MJHT",
                "expires_in": self.device_expires_in,
                "interval": self.interval,
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = await self._form(request, "/token")
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            if form.get("device_code") != "device-code-1":
                return _oauth_error("invalid_grant", "unknown device code")
            answer = self.polls.pop(0) if self.polls else "expired_token"
            self.poll_log.append(answer)
            if answer == "garbage":
                return web.Response(status=502, text="<html>bad gateway</html>")
            if answer != "approve":
                return _oauth_error(answer)
            return web.json_response(self.issue("alice"))
        if grant == "refresh_token":
            self.refreshes += 1
            token = form.get("refresh_token", "")
            if self.refresh_fails_with is not None:
                return _oauth_error(self.refresh_fails_with, "refresh refused")
            if token in self.spent_refresh or token not in self.live_refresh:
                return _oauth_error("invalid_grant", "refresh token is not valid")
            subject = self.live_refresh.pop(token)
            self.spent_refresh.add(token)
            return web.json_response(self.issue(subject))
        if grant == "client_credentials":
            import base64

            header = form.get("_authorization", "")
            expected = (
                "Basic " + base64.b64encode(f"{SERVICE_ID}:{SERVICE_SECRET}".encode()).decode()
            )
            if header != expected:
                return _oauth_error("invalid_client", "bad client credentials", 401)
            return web.json_response(self.issue(SERVICE_ID, refresh=False))
        return _oauth_error("unsupported_grant_type")

    async def _revoke(self, request: web.Request) -> web.Response:
        form = await self._form(request, "/revoke")
        if self.revoke_status != 200:
            return web.Response(status=self.revoke_status, text="unavailable")
        token = form.get("token", "")
        self.revoked.append(token)
        self.live_refresh.pop(token, None)
        return web.Response(status=200)

    async def _userinfo(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.live_access:
            return _oauth_error("invalid_token", "", 401)
        return web.json_response({"sub": "alice", "preferred_username": "alice"})


@dataclass
class PeerJob:
    job_id: str
    filename: str
    content_type: str
    data: bytes
    states: list[str]  # the states still to come, in order
    state: str = "queued"

    def view(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "owner": "alice",
            "filename": self.filename,
            "content_type": self.content_type,
            "size": len(self.data),
            "state": self.state,
            "created_at": "2026-12-01T19:00:00Z",
            "updated_at": "2026-12-01T19:00:01Z",
            "finished_at": "2026-12-01T19:00:02Z" if self.state in {"done", "failed"} else None,
            "error_reason": "parse_failed" if self.state == "failed" else None,
            "error_detail": "not a document" if self.state == "failed" else None,
            "links": {"self": f"/api/jobs/{self.job_id}"},
        }

    def advance(self) -> None:
        if self.states:
            self.state = self.states.pop(0)


@dataclass
class GatewayPeer:
    """The gateway's job API as /tmp/api.md fixes it, over an in-memory job table."""

    identity: IdentityPeer
    url: str = ""
    jobs: dict[str, PeerJob] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)  # access tokens answered with 401
    refuse_all: bool = False
    events_enabled: bool = True
    states_after_upload: list[str] = field(default_factory=lambda: ["processing", "done"])
    uploads: list[dict[str, Any]] = field(default_factory=list)
    seen_tokens: list[str] = field(default_factory=list)
    events_requests: int = 0
    list_params: list[dict[str, str]] = field(default_factory=list)
    release_events: asyncio.Event = field(default_factory=asyncio.Event)
    hold_events: bool = False

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/api/jobs", self._upload)
        app.router.add_get("/api/jobs", self._list)
        app.router.add_get("/api/jobs/{id}", self._get)
        app.router.add_get("/api/jobs/{id}/result", self._result)
        app.router.add_get("/api/jobs/{id}/events", self._events)
        return app

    @web.middleware
    async def _auth(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.seen_tokens.append(token)
        if self.refuse_all or token in self.refuse or token not in self.identity.live_access:
            return web.json_response(
                {"error": "unauthorized", "detail": "token expired"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        response: web.StreamResponse = await handler(request)
        return response

    def _job(self, request: web.Request) -> PeerJob:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": "not_found", "detail": "no such job"}),
                content_type="application/json",
            )
        return job

    async def _upload(self, request: web.Request) -> web.Response:
        reader = await request.multipart()
        accepted = []
        async for part in reader:
            if part.name != "file":  # type: ignore[union-attr]
                continue
            data = await part.read()  # type: ignore[union-attr]
            content_type = part.headers.get("Content-Type", "")
            filename = part.filename or "upload"  # type: ignore[union-attr]
            self.uploads.append(
                {
                    "filename": filename,
                    "content_type": content_type,
                    "data": bytes(data),
                    "content_length": request.headers.get("Content-Length"),
                    "chunked": request.headers.get("Transfer-Encoding"),
                }
            )
            if content_type == "application/octet-stream":
                return web.json_response(
                    {"error": "unsupported_type", "detail": f"{content_type} is not accepted"},
                    status=415,
                )
            job = PeerJob(
                secrets.token_hex(16),
                filename,
                content_type,
                bytes(data),
                list(self.states_after_upload),
            )
            self.jobs[job.job_id] = job
            accepted.append(
                {
                    "job_id": job.job_id,
                    "filename": filename,
                    "state": "queued",
                    "status_url": f"/api/jobs/{job.job_id}",
                }
            )
        return web.json_response({"jobs": accepted}, status=202)

    async def _list(self, request: web.Request) -> web.Response:
        self.list_params.append(dict(request.query))
        state = request.query.get("state")
        views = [job.view() for job in self.jobs.values() if state in (None, job.state)]
        return web.json_response({"jobs": views, "next": None})

    async def _get(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if not self.events_enabled:
            job.advance()  # each poll sees the next state
        body = job.view() | {"history": [{"state": job.state, "at": "2026-12-01T19:00:01Z"}]}
        return web.json_response(body)

    async def _result(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job.state != "done":
            return web.json_response(
                {"error": "not_ready", "detail": f"job is {job.state}"}, status=409
            )
        return web.json_response(
            {
                "job_id": job.job_id,
                "text": job.data.decode(errors="replace"),
                "metadata": {"title": "Sample"},
                "pages": 1,
                "parser": "markdown",
                "chunks": [{"index": 0, "start": 0, "end": len(job.data), "page": None}],
            }
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        self.events_requests += 1
        if not self.events_enabled:
            return web.json_response(
                {"error": "not_found", "detail": "no event stream"}, status=404
            )
        job = self._job(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b": keep-alive comment\n\n")
        await response.write(f"event: state\ndata: {json.dumps(job.view())}\n\n".encode())
        if self.hold_events:
            await self.release_events.wait()
        while job.states:
            job.advance()
            await response.write(b"event: other\ndata: ignored\n\n")
            data = json.dumps(job.view())
            await response.write(f"event: state\r\ndata: {data}\r\n\r\n".encode())
        await response.write_eof()
        return response


@pytest.fixture
async def identity_peer() -> AsyncIterator[IdentityPeer]:
    peer = IdentityPeer()
    server = TestServer(peer.app(), host="127.0.0.1")
    await server.start_server()
    peer.url = str(server.make_url("")).rstrip("/")
    try:
        yield peer
    finally:
        await server.close()


@pytest.fixture
async def gateway_peer(identity_peer: IdentityPeer) -> AsyncIterator[GatewayPeer]:
    peer = GatewayPeer(identity_peer)
    server = TestServer(peer.app(), host="127.0.0.1")
    await server.start_server()
    peer.url = str(server.make_url("")).rstrip("/")
    try:
        yield peer
    finally:
        peer.release_events.set()
        await server.close()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "config" / "sealflow"


@pytest.fixture
def settings(
    identity_peer: IdentityPeer, gateway_peer: GatewayPeer, config_dir: Path
) -> ClientSettings:
    return ClientSettings(
        issuer=identity_peer.url,
        gateway_url=gateway_peer.url,
        client_id=CLIENT_ID,
        client_secret=None,
        config_dir=config_dir,
        http_timeout=10,
    )


@pytest.fixture
def cache(settings: ClientSettings) -> TokenCache:
    return TokenCache(settings.token_file)


@pytest.fixture
def cli_env(settings: ClientSettings) -> dict[str, str | None]:
    """The environment a user's shell would have for the commands."""
    return {
        "SEALFLOW_ISSUER": settings.issuer,
        "SEALFLOW_GATEWAY_URL": settings.gateway_url,
        "SEALFLOW_CLIENT_ID": CLIENT_ID,
        "SEALFLOW_CLIENT_SECRET": None,
        "SEALFLOW_CONFIG_DIR": str(settings.config_dir),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


@pytest.fixture
def script_settings(settings: ClientSettings) -> ClientSettings:
    """A script's settings: a confidential client with SEALFLOW_CLIENT_SECRET set."""
    return ClientSettings.model_validate(
        settings.model_dump() | {"client_id": SERVICE_ID, "client_secret": SERVICE_SECRET}
    )


@pytest.fixture
def service_secret() -> str:
    return SERVICE_SECRET


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """Commands configure structlog for a CLI process; give later tests what they had."""
    with structlog_restored():
        yield


@dataclass
class Cli:
    """``sealflow`` run through CliRunner in a thread, so the test peers keep serving."""

    env: dict[str, str | None]

    async def __call__(self, *args: str, **env: str | None) -> Result:
        runner = CliRunner()
        return await asyncio.to_thread(
            runner.invoke, cli, list(args), env=self.env | env, catch_exceptions=False
        )


@pytest.fixture
def run_cli(cli_env: dict[str, str | None]) -> Cli:
    return Cli(cli_env)
