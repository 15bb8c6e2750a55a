"""A real external OpenID provider as the issuer: panva's ``oidc-provider`` (npm) issues an
RFC 9068 JWT access token for the gateway's audience by client credentials, and it uploads.

The provider's packages are installed by ``make install`` (pinned by
``provider/package-lock.json``) under the environment; when they are missing the fixture runs
the same ``npm ci``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from gateway_testing import AUDIENCE

from broker import BrokerSettings
from gateway import STORE_KEY, GatewaySettings, create_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PROVIDER_SOURCE = Path(__file__).parent / "provider"
PROVIDER_CACHE = Path(sys.prefix) / "share" / "sealflow" / "oidc-provider"
RESOURCE = "https://gateway.sealflow.test/"
CLIENT_ID = "sealflow-interop"


@dataclass
class ExternalProvider:
    """The running ``oidc-provider`` and its confidential client."""

    issuer: str
    client_secret: str

    async def client_credentials_token(self, scope: str = "jobs:read jobs:write") -> str:
        """An access token from the provider's /token (client_secret_post, a resource)."""
        form = {
            "grant_type": "client_credentials",
            "scope": scope,
            "resource": RESOURCE,
            "client_id": CLIENT_ID,
            "client_secret": self.client_secret,
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.issuer}/token", data=form) as response,
        ):
            assert response.status == 200, await response.text()
            body = await response.json()
        return str(body["access_token"])


async def _ensure_installed() -> Path:
    """``node_modules`` of the pinned provider (``npm ci`` as ``make install`` runs it)."""
    modules = PROVIDER_CACHE / "node_modules"
    if not (modules / "oidc-provider" / "package.json").exists():
        PROVIDER_CACHE.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PROVIDER_SOURCE / name, PROVIDER_CACHE / name)
        npm = await asyncio.create_subprocess_exec(
            "npm", "ci", "--no-audit", "--no-fund", "--silent", cwd=PROVIDER_CACHE
        )
        assert await asyncio.wait_for(npm.wait(), 240) == 0, "npm ci of oidc-provider failed"
    return modules


@pytest.fixture
async def external_provider(tmp_path: Path) -> AsyncIterator[ExternalProvider]:
    """``oidc-provider`` started on a free port; stopped when the test ends."""
    if shutil.which("node") is None:
        pytest.fail("node is needed for the external provider tests (Node 20 or later)")
    modules = await _ensure_installed()
    workdir = tmp_path / "provider"
    workdir.mkdir()
    shutil.copyfile(PROVIDER_SOURCE / "server.mjs", workdir / "server.mjs")
    (workdir / "node_modules").symlink_to(modules, target_is_directory=True)
    secret = secrets.token_urlsafe(24)
    env = {**os.environ, "INTEROP_CLIENT_SECRET": secret, "INTEROP_AUDIENCE": AUDIENCE}
    env["INTEROP_RESOURCE"] = RESOURCE
    process = await asyncio.create_subprocess_exec(
        "node",
        "server.mjs",
        cwd=workdir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line, "oidc-provider exited before listening"
        yield ExternalProvider(issuer=json.loads(line)["issuer"], client_secret=secret)
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def test_oidc_provider_token_uploads_through_the_gateway(
    external_provider: ExternalProvider,
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    cleanup_namespace: None,
) -> None:
    """Default settings suffice: oidc-provider signs ``at+jwt`` (ES256) with ``client_id`` and
    a short lifetime; the job belongs to the token's ``sub`` (the client)."""
    token = await external_provider.client_credentials_token()
    settings = gateway_settings.model_copy(update={"issuer": external_provider.issuer})
    app = create_app(settings, broker_settings=broker_settings)
    async with TestClient(TestServer(app)) as client:
        form = FormData()
        form.add_field("file", b"hello harbour", filename="notes.txt", content_type="text/plain")
        response = await client.post(
            "/api/jobs", data=form, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 202, await response.text()
        [job] = (await response.json())["jobs"]
        stored = await app[STORE_KEY].get(job["job_id"])
        assert stored is not None
        assert stored.owner == CLIENT_ID
        listed = await client.get("/api/jobs", headers={"Authorization": f"Bearer {token}"})
        assert listed.status == 200
        assert [j["job_id"] for j in (await listed.json())["jobs"]] == [job["job_id"]]


async def test_oidc_provider_token_for_another_audience_is_refused(
    external_provider: ExternalProvider,
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    cleanup_namespace: None,
) -> None:
    """A gateway with another audience refuses the provider's token (``aud`` is checked)."""
    token = await external_provider.client_credentials_token()
    settings = gateway_settings.model_copy(
        update={"issuer": external_provider.issuer, "api_audience": "another-api"}
    )
    app = create_app(settings, broker_settings=broker_settings)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/jobs", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 401, await response.text()
