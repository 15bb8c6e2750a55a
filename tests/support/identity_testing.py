"""Helpers for the identity tests: a recording audit sink, a clock the test moves, and a
``Provider`` that drives the identity's pages and endpoints like a browser or CLI would."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

from broker import PublishFailed
from identity import AUDIT_KEY, STORE_KEY, AnyIdentityStore, IdentitySettings
from schemas import AuditEvent, Revocation

REDIRECT = "https://app.example/callback"
WEB = "sealflow-web"
CLI = "sealflow-cli"
PASSWORDS = {"alice": "correct horse", "root": "admin password", "vic": "viewer password"}

TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
"""Argon2id at the smallest cost argon2 allows (8 KiB, one pass): tests only, see conftest."""


@dataclass
class FakeClock:
    """Wall-clock time that only moves when the test says so."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RecordingSink:
    """An ``AuditSink`` that keeps what it is given, or fails like a broker that is down."""

    events: list[AuditEvent] = field(default_factory=list)
    fail: bool = False

    async def emit(self, event: AuditEvent) -> None:
        if self.fail:
            raise PublishFailed("broker down (test)")
        self.events.append(event)

    def of_type(self, type_: str) -> list[AuditEvent]:
        return [event for event in self.events if event.type == type_]


@dataclass
class RecordingRevocations:
    """A ``RevocationSink`` that keeps the revocations the identity would broadcast."""

    sent: list[Revocation] = field(default_factory=list)

    async def publish(self, revocation: Revocation) -> None:
        """Keep ``revocation``."""
        self.sent.append(revocation)

    def values(self, kind: str) -> list[str]:
        """The revoked values of one kind, in order."""
        return [revocation.value for revocation in self.sent if revocation.kind == kind]


@dataclass
class Pkce:
    verifier: str
    challenge: str


def new_pkce() -> Pkce:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return Pkce(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


@dataclass
class Provider:
    """The provider under test and the ways a test talks to it."""

    http: TestClient
    sink: RecordingSink
    clock: FakeClock
    settings: IdentitySettings

    @property
    def store(self) -> AnyIdentityStore:
        return self.http.app[STORE_KEY]

    async def audit(self) -> RecordingSink:
        """The sink, once every event recorded so far has reached it."""
        await asyncio.wait_for(self.http.app[AUDIT_KEY].drain(), 10)
        return self.sink

    def authorize_params(self, pkce: Pkce, **extra: str) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": WEB,
            "redirect_uri": REDIRECT,
            "scope": "openid offline_access jobs:read jobs:write",
            "state": "st-1",
            "nonce": "n-1",
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
        }
        return params | extra

    async def login(
        self, pkce: Pkce, username: str = "alice", password: str | None = None
    ) -> ClientResponse:
        params = self.authorize_params(pkce)
        page = await self.http.get("/authorize", params=params)
        assert page.status == 200, await page.text()
        form = params | {
            "csrf_token": csrf_of(await page.text()),
            "username": username,
            "password": PASSWORDS.get(username, "x") if password is None else password,
        }
        return await self.http.post("/authorize", data=form, allow_redirects=False)

    async def code_form(self, username: str = "alice") -> dict[str, str]:
        """Sign in through the login page: the token request that redeems the code."""
        pkce = new_pkce()
        response = await self.login(pkce, username)
        assert response.status == 302, await response.text()
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        return {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "client_id": WEB,
            "code_verifier": pkce.verifier,
        }

    async def tokens(self, username: str = "alice") -> dict[str, str]:
        """A full sign-in through the code flow: the token response."""
        token = await self.http.post("/token", data=await self.code_form(username))
        assert token.status == 200, await token.text()
        body: dict[str, str] = await token.json()
        return body

    async def refresh(self, refresh_token: str, client_id: str = WEB) -> ClientResponse:
        return await self.http.post(
            "/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": client_id,
            },
        )

    async def device_authorization(
        self, scope: str = "openid jobs:read jobs:write"
    ) -> dict[str, str]:
        response = await self.http.post(
            "/device_authorization", data={"client_id": CLI, "scope": scope}
        )
        assert response.status == 200, await response.text()
        body: dict[str, str] = await response.json()
        return body

    async def device_decide(
        self,
        user_code: str,
        action: str = "approve",
        username: str = "alice",
        password: str | None = None,
    ) -> ClientResponse:
        page = await self.http.get("/device", params={"user_code": user_code})
        form = {
            "csrf_token": csrf_of(await page.text()),
            "user_code": user_code,
            "username": username,
            "password": PASSWORDS.get(username, "x") if password is None else password,
            "action": action,
        }
        return await self.http.post("/device", data=form)

    async def poll(self, device_code: str, client_id: str = CLI) -> ClientResponse:
        return await self.http.post(
            "/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": device_code,
                "client_id": client_id,
            },
        )
