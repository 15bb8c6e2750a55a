"""The command line as a client of the real stack: identity, gateway, worker and parser.

The identity has its test users; ``sealflow login`` runs the device flow through click
while the test, acting as the user's browser, approves the code on the identity's ``/device``
form over HTTP. Then ``upload --wait`` reaches done, and ``jobs``, ``result``, ``token`` and
``logout`` work against the gateway, on a real RabbitMQ under the test's namespace.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner, Result
from gateway_testing import PASSWORD, identity_server
from pipeline_testing import in_process_daemons, wait_consuming
from structlog_testing import logs_to_real_stderr

from broker import BrokerSettings, Topology, connect, open_channel
from gateway.daemon import serve as serve_gateway
from gateway.settings import GatewaySettings
from identity import STORE_KEY
from sealflow.cli import cli

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "docs" / "sample.md"
USER = "alice"
"""One of the identity's test users (``gateway_testing.USERS``), signing in with ``PASSWORD``."""
SCRIPT_ID, SCRIPT_SECRET = "nightly-import", "a-secret-made-for-this-test-only"


@dataclass
class Stack:
    issuer: str
    gateway_url: str
    env: dict[str, str | None]
    opened: list[str] = field(default_factory=list)  # what `login --browser` asked to open

    async def cli(self, *args: str, **env: str | None) -> Result:
        """Run ``sealflow ARGS`` in a thread, so the servers on this loop keep answering."""
        runner = CliRunner()
        return await asyncio.to_thread(
            runner.invoke, cli, list(args), env=self.env | env, catch_exceptions=False
        )


@pytest.fixture
def server_logs_to_stderr() -> Iterator[None]:
    """The servers run in this process while CliRunner swaps sys.stdout for each command:
    their log lines go to the real stderr, so they never mix into a command's stdout."""
    with logs_to_real_stderr():
        yield


@pytest.fixture
async def stack(
    broker_settings: BrokerSettings,
    keys_dir: Path,
    tmp_path: Path,
    cleanup_namespace: None,
    monkeypatch: pytest.MonkeyPatch,
    server_logs_to_stderr: None,
) -> AsyncIterator[Stack]:
    """Identity (polled every second), gateway, worker, parser and audit in this process."""
    async with identity_server(keys_dir, tmp_path / "identity", device_poll_interval=1) as idp:
        await idp.app[STORE_KEY].add_client(
            SCRIPT_ID, secret=SCRIPT_SECRET, grant_types=["client_credentials"], role="user"
        )
        stop, started = asyncio.Event(), asyncio.Event()
        gateway_settings = GatewaySettings(
            issuer=idp.url,
            host="127.0.0.1",
            port=0,
            health_port=0,
            data_dir=broker_settings.data_dir,
            keys_dir=keys_dir,
            sse_heartbeat_seconds=1.0,
            sse_poll_seconds=1.0,
        )
        gateway = asyncio.create_task(
            serve_gateway(gateway_settings, broker_settings, stop=stop, started=started)
        )
        connection = await connect(broker_settings.amqp_url)
        try:
            ready = asyncio.ensure_future(started.wait())
            async with asyncio.timeout(60):
                await asyncio.wait({ready, gateway}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                ready.cancel()
                gateway.result()  # its exception
                raise RuntimeError("the gateway stopped before it was listening")
            channel = await open_channel(connection)
            async with in_process_daemons(broker_settings, channel):
                topology = Topology(broker_settings.namespace)
                await wait_consuming(channel, topology, ["gateway.events"], [gateway])
                gateway_url = f"http://127.0.0.1:{gateway_settings.port}"
                config_dir = tmp_path / "home" / ".config" / "sealflow"
                result = Stack(
                    issuer=idp.url,
                    gateway_url=gateway_url,
                    env={
                        "SEALFLOW_ISSUER": idp.url,
                        "SEALFLOW_GATEWAY_URL": gateway_url,
                        "SEALFLOW_CONFIG_DIR": str(config_dir),
                        "SEALFLOW_CLIENT_ID": None,
                        "SEALFLOW_CLIENT_SECRET": None,
                        "NO_COLOR": "1",
                        "COLUMNS": "200",
                    },
                )

                def fake_browser(url: str, *args: object, **kwargs: object) -> bool:
                    result.opened.append(url)
                    return True

                monkeypatch.setattr("webbrowser.open", fake_browser)
                yield result
        finally:
            stop.set()
            await asyncio.gather(gateway, return_exceptions=True)
            await connection.close()
        gateway.result()  # a gateway that failed fails the test


async def _decide_in_browser(stack: Stack, url: str, action: str = "approve") -> str:
    """What the user does: open the verification page, sign in, press Approve (or Deny)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(url) as page:
            assert page.status == 200, await page.text()
            html = await page.text()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
        code = re.search(r'name="user_code"[^>]*value="([^"]+)"', html)
        assert csrf is not None
        assert code is not None
        form = {
            "csrf_token": csrf.group(1),
            "user_code": code.group(1),
            "username": USER,
            "password": PASSWORD,
            "action": action,
        }
        async with browser.post(f"{stack.issuer}/device", data=form) as answer:
            assert answer.status == 200, await answer.text()
            return await answer.text()


async def _login(stack: Stack, action: str = "approve") -> Result:
    login = asyncio.create_task(stack.cli("login", "--browser"))
    async with asyncio.timeout(30):
        while not stack.opened:  # the CLI opens the verification address once it has a code
            if login.done():
                pytest.fail(f"login ended before asking for approval: {login.result().output}")
            await asyncio.sleep(0.05)
    page = await _decide_in_browser(stack, stack.opened[0], action)
    assert ("Device approved" if action == "approve" else "Device denied") in page
    async with asyncio.timeout(60):
        return await login


async def test_login_upload_jobs_result_token_logout(stack: Stack) -> None:
    login = await _login(stack)
    assert login.exit_code == 0, login.output
    assert f"To sign in, open {stack.issuer}/device" in login.output
    assert f"Signed in as {USER} at {stack.issuer}" in login.output
    assert stack.opened[0].startswith(f"{stack.issuer}/device?user_code=")
    cache = Path(str(stack.env["SEALFLOW_CONFIG_DIR"])) / "tokens.json"
    assert cache.stat().st_mode & 0o777 == 0o600

    upload = await stack.cli("upload", str(SAMPLE), "--wait", "30")
    assert upload.exit_code == 0, upload.output
    row = next(line for line in upload.stdout.splitlines() if "sample.md" in line)
    job_id = re.search(r"\b[0-9a-f]{32}\b", row)
    assert job_id is not None, row
    assert "done" in row
    job = job_id.group(0)

    listing = await stack.cli("jobs")
    assert listing.exit_code == 0, listing.output
    assert job in listing.stdout
    as_json = await stack.cli("jobs", "--json", "--state", "done")
    assert as_json.exit_code == 0, as_json.output
    [listed] = json.loads(as_json.stdout)["jobs"]
    assert listed["job_id"] == job
    assert listed["owner"] == USER
    assert listed["state"] == "done"

    result = await stack.cli("result", job)
    assert result.exit_code == 0, result.output
    assert "signed, short-lived, single-use envelope" in result.stdout
    full = await stack.cli("result", job, "--json")
    assert json.loads(full.stdout)["job_id"] == job

    token = await stack.cli("token")
    assert token.exit_code == 0, token.output
    bearer = token.stdout.strip()
    assert "\n" not in bearer
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{stack.gateway_url}/api/status", headers={"Authorization": f"Bearer {bearer}"}
        ) as status,
    ):
        assert status.status == 200
        assert (await status.json())["subject"] == USER

    refresh_token = json.loads(cache.read_text())["refresh_token"]
    logout = await stack.cli("logout")
    assert logout.exit_code == 0, logout.output
    assert not cache.exists()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{stack.issuer}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": "sealflow-cli",
            },
        ) as refused,
    ):
        assert refused.status == 400
        assert (await refused.json())["error"] == "invalid_grant"

    after = await stack.cli("token")
    assert after.exit_code == 1
    assert after.stdout == ""
    assert "error: not signed in; run sealflow login" in after.stderr.splitlines()


async def test_a_denied_device_code_is_one_line(stack: Stack) -> None:
    result = await _login(stack, "deny")
    assert result.exit_code == 1
    assert "error: the sign-in was denied at the identity provider" in result.stderr.splitlines()
    assert not (Path(str(stack.env["SEALFLOW_CONFIG_DIR"])) / "tokens.json").exists()


async def test_a_script_uses_client_credentials_without_a_cache(stack: Stack) -> None:
    script = {"SEALFLOW_CLIENT_ID": SCRIPT_ID, "SEALFLOW_CLIENT_SECRET": SCRIPT_SECRET}
    upload = await stack.cli("upload", str(SAMPLE), "--wait", "30", **script)
    assert upload.exit_code == 0, upload.output
    listing = await stack.cli("jobs", "--json", **script)
    assert listing.exit_code == 0, listing.output
    [job] = json.loads(listing.stdout)["jobs"]
    assert job["owner"] == SCRIPT_ID
    assert job["state"] == "done"
    assert not Path(str(stack.env["SEALFLOW_CONFIG_DIR"])).exists()
    wrong = await stack.cli("token", SEALFLOW_CLIENT_ID=SCRIPT_ID, SEALFLOW_CLIENT_SECRET="wrong")
    assert wrong.exit_code == 1
    assert wrong.output.startswith(f"error: client credentials for {SCRIPT_ID} were refused")
