"""The device authorization grant (RFC 8628) as ``sealflow login`` uses it."""

from __future__ import annotations

import asyncio
import re
import sqlite3

from identity_testing import CLI, Provider, csrf_of

from identity import DEVICE_CODE_GRANT, IdentitySettings, InvalidGrant, verify_access_token
from keys import KeyRing

USER_CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")


async def _error(response: object) -> str:
    assert hasattr(response, "json")
    body = await response.json()  # type: ignore[attr-defined]
    return str(body["error"])


async def test_discovery_advertises_the_device_endpoint(provider: Provider) -> None:
    doc = await (await provider.http.get("/.well-known/openid-configuration")).json()
    assert doc["device_authorization_endpoint"] == "http://localhost:8081/device_authorization"
    assert DEVICE_CODE_GRANT in doc["grant_types_supported"]


async def test_the_cli_client_is_seeded_public_with_device_and_refresh(provider: Provider) -> None:
    client = await provider.store.get_client(CLI)
    assert client is not None
    assert client.public
    assert set(client.grant_types) == {DEVICE_CODE_GRANT, "refresh_token"}


async def test_device_flow_happy_path(
    provider: Provider, identity_settings: IdentitySettings
) -> None:
    started = await provider.device_authorization()
    assert USER_CODE.match(started["user_code"])
    assert started["verification_uri"] == "http://localhost:8081/device"
    assert started["verification_uri_complete"].endswith(f"?user_code={started['user_code']}")
    assert started["expires_in"] == 600
    assert started["interval"] == 5

    pending = await provider.poll(started["device_code"])
    assert pending.status == 400
    assert await _error(pending) == "authorization_pending"

    page = await provider.http.get("/device", params={"user_code": started["user_code"]})
    assert page.status == 200
    assert f"{CLI} asks for access" in await page.text()
    approved = await provider.device_decide(started["user_code"])
    assert approved.status == 200
    assert "Device approved" in await approved.text()

    provider.clock.advance(5)
    response = await provider.poll(started["device_code"])
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    keys = KeyRing.load(identity_settings.keys_dir, "identity").verification_keys()
    claims = verify_access_token(
        body["access_token"], keys, issuer="http://localhost:8081", audience="sealflow-gateway"
    )
    assert claims.subject == "alice"
    assert claims.client_id == CLI
    assert set(body["scope"].split()) == {"openid", "jobs:read", "jobs:write"}
    assert body["id_token"]
    assert body["refresh_token"]

    # single use: the same device code never gives tokens twice
    provider.clock.advance(5)
    again = await provider.poll(started["device_code"])
    assert await _error(again) == "invalid_grant"
    # the CLI keeps its session with the refresh token
    refreshed = await provider.refresh(body["refresh_token"], client_id=CLI)
    assert refreshed.status == 200, await refreshed.text()


async def test_polling_too_fast_is_slow_down_and_the_interval_grows(provider: Provider) -> None:
    started = await provider.device_authorization()
    assert await _error(await provider.poll(started["device_code"])) == "authorization_pending"
    assert await _error(await provider.poll(started["device_code"])) == "slow_down"
    provider.clock.advance(6)  # the interval is now 10 s: 6 s is still too fast
    assert await _error(await provider.poll(started["device_code"])) == "slow_down"
    provider.clock.advance(15)
    assert await _error(await provider.poll(started["device_code"])) == "authorization_pending"


async def test_an_expired_device_code_is_expired_token(provider: Provider) -> None:
    started = await provider.device_authorization()
    provider.clock.advance(601)
    assert await _error(await provider.poll(started["device_code"])) == "expired_token"
    # and the page no longer accepts its user code
    late = await provider.device_decide(started["user_code"])
    assert late.status == 400
    assert "unknown or expired code" in await late.text()


async def test_a_denied_request_is_access_denied(provider: Provider) -> None:
    started = await provider.device_authorization()
    denied = await provider.device_decide(started["user_code"], action="deny")
    assert denied.status == 200
    assert "Device denied" in await denied.text()
    response = await provider.poll(started["device_code"])
    assert response.status == 400
    assert await _error(response) == "access_denied"
    events = (await provider.audit()).of_type("device.denied")
    assert [event.actor for event in events] == ["alice"]


async def test_a_wrong_password_on_the_device_page_approves_nothing(provider: Provider) -> None:
    started = await provider.device_authorization()
    wrong = await provider.device_decide(started["user_code"], password="guess")
    assert wrong.status == 401
    assert "invalid username or password" in await wrong.text()
    assert await _error(await provider.poll(started["device_code"])) == "authorization_pending"


async def test_an_unknown_user_code_is_refused(provider: Provider) -> None:
    for typed in ("BCDF-GHJK", "not a code", "AEIO-UAEI"):
        response = await provider.device_decide(typed)
        assert response.status == 400
        assert "unknown or expired code" in await response.text()


async def test_user_codes_are_read_without_case_or_dash(provider: Provider) -> None:
    started = await provider.device_authorization()
    typed = started["user_code"].replace("-", "").lower()
    assert (await provider.device_decide(typed)).status == 200
    provider.clock.advance(5)
    assert (await provider.poll(started["device_code"])).status == 200


async def test_the_device_page_needs_its_csrf_cookie(provider: Provider) -> None:
    started = await provider.device_authorization()
    page = await provider.http.get("/device")
    form = {
        "csrf_token": csrf_of(await page.text()) + "x",
        "user_code": started["user_code"],
        "username": "alice",
        "password": "correct horse",
        "action": "approve",
    }
    response = await provider.http.post("/device", data=form)
    assert response.status == 400
    assert await _error(await provider.poll(started["device_code"])) == "authorization_pending"


async def test_device_codes_are_bound_to_their_client(provider: Provider) -> None:
    await provider.store.add_client("other-cli", grant_types=[DEVICE_CODE_GRANT])
    started = await provider.device_authorization()
    await provider.device_decide(started["user_code"])
    provider.clock.advance(5)
    stolen = await provider.poll(started["device_code"], client_id="other-cli")
    assert await _error(stolen) == "invalid_grant"


async def test_a_client_without_the_grant_cannot_start_a_device_flow(provider: Provider) -> None:
    response = await provider.http.post("/device_authorization", data={"client_id": "sealflow-web"})
    assert response.status == 400
    assert await _error(response) == "unauthorized_client"
    unknown = await provider.http.post("/device_authorization", data={"client_id": "nobody"})
    assert unknown.status == 401
    bad_scope = await provider.http.post(
        "/device_authorization", data={"client_id": CLI, "scope": "x" * 1025}
    )
    assert await _error(bad_scope) == "invalid_scope"


async def test_device_and_user_codes_are_stored_hashed(
    provider: Provider, identity_settings: IdentitySettings
) -> None:
    started = await provider.device_authorization()
    with sqlite3.connect(identity_settings.database_path) as db:
        rows = db.execute("SELECT * FROM device_codes").fetchall()
    flat = " ".join(str(value) for row in rows for value in row)
    assert started["device_code"] not in flat
    assert started["user_code"].replace("-", "") not in flat


async def test_two_concurrent_polls_of_an_approved_code_yield_one_grant(provider: Provider) -> None:
    started = await provider.device_authorization()
    await provider.device_decide(started["user_code"])
    provider.clock.advance(5)
    devices = provider.store.devices
    results = await asyncio.gather(
        devices.poll(started["device_code"], CLI),
        devices.poll(started["device_code"], CLI),
        return_exceptions=True,
    )
    assert sum(not isinstance(result, BaseException) for result in results) == 1
    assert sum(isinstance(result, InvalidGrant) for result in results) == 1


async def test_a_disabled_user_cannot_approve_a_device(provider: Provider) -> None:
    await provider.store.set_user_disabled("alice", True)
    started = await provider.device_authorization()
    response = await provider.device_decide(started["user_code"])
    assert response.status == 401
    assert await _error(await provider.poll(started["device_code"])) == "authorization_pending"


async def test_unknown_scopes_are_dropped_and_the_role_cuts_the_rest(provider: Provider) -> None:
    started = await provider.device_authorization("openid root:everything jobs:read jobs:admin")
    await provider.device_decide(started["user_code"])
    provider.clock.advance(5)
    body = await (await provider.poll(started["device_code"])).json()
    assert body["scope"].split() == ["openid", "jobs:read"]


async def test_the_device_pages_say_what_the_users_role_will_get(provider: Provider) -> None:
    """A plain user asked for admin scopes is told, before and after approving, what the role
    really gets: the page lists each role's grant, the approval names granted and withheld."""
    started = await provider.device_authorization(
        scope="jobs:read jobs:write jobs:admin audit:read"
    )
    page = await (
        await provider.http.get("/device", params={"user_code": started["user_code"]})
    ).text()
    assert "It will get only what your role allows" in page
    assert "user <code>jobs:read jobs:write</code>" in page
    approved = await (await provider.device_decide(started["user_code"])).text()
    assert "gets jobs:read jobs:write" in approved
    assert "not granted: jobs:admin audit:read" in approved
