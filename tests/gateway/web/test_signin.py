"""Sign-in through the identity's real form: code + PKCE, session rotation, return to the page
asked for (same-site only), silent refresh, expiry, sign-out revoking everything."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from web_testing import Browser, WebGateway, browser, csrf_of

from gateway.web import SESSION_COOKIE, WEB_KEY

pytestmark = [pytest.mark.integration]


def _cookie(client: Browser) -> str | None:
    for cookie in client.session.cookie_jar:
        if cookie.key == SESSION_COOKIE:
            return cookie.value
    return None


async def test_landing_page_when_signed_out(anonymous: Browser) -> None:
    response = await anonymous.get("/")
    assert response.status == 200
    html = await response.text()
    assert 'href="/login"' in html
    assert "upload-form" not in html
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_login_sends_to_the_identity_with_pkce_state_and_nonce(
    anonymous: Browser, site: WebGateway
) -> None:
    response = await anonymous.get("/login", allow_redirects=False)
    assert response.status == 303
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}" == site.issuer.url
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["client_id"] == "sealflow-web"
    assert query["redirect_uri"] == f"{site.url}/callback"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 32
    assert len(query["nonce"]) >= 32
    assert "openid" in query["scope"].split()
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"


async def test_sign_in_shows_the_jobs_and_rotates_the_session(
    anonymous: Browser, site: WebGateway
) -> None:
    await anonymous.get("/login", allow_redirects=False)
    before = _cookie(anonymous)
    assert before is not None
    page = await anonymous.sign_in("alice")
    assert page.status == 200
    html = await page.text()
    assert "Your jobs" in html
    assert "alice" in html
    assert "upload-form" in html
    after = _cookie(anonymous)
    assert after is not None
    assert after != before
    sessions = site.app[WEB_KEY].stores.sessions.values()
    assert [s.subject for s in sessions] == ["alice"]
    # The cookie holds no token: what the browser has is encrypted, and short.
    assert len(after) < 400
    assert sessions[0].tokens.access_token not in after


async def test_a_protected_page_goes_through_sign_in_and_back(
    anonymous: Browser, site: WebGateway
) -> None:
    first = await anonymous.get("/search?q=alpha", allow_redirects=False)
    assert first.status == 303
    location = urlsplit(first.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/search?q=alpha"]}
    page = await anonymous.sign_in("alice", "/search?q=alpha")
    assert page.status == 200
    assert urlsplit(str(page.url)).path == "/search"
    assert "Search your documents" in await page.text()


@pytest.mark.parametrize(
    "evil",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "https:/evil.example",
        "javascript:alert(1)",
        "/\r\nSet-Cookie: x=1",
        "\t//evil.example",
        "/login?next=https://evil.example",
    ],
)
async def test_an_open_redirect_after_sign_in_goes_home(
    anonymous: Browser, site: WebGateway, evil: str
) -> None:
    response = await anonymous.get("/login", params={"next": evil}, allow_redirects=False)
    assert response.status == 303
    callback = await anonymous.through_identity(response, "alice")
    assert callback.status == 303
    assert callback.headers["Location"] == "/"


async def test_a_callback_with_a_state_from_elsewhere_is_refused(
    anonymous: Browser, site: WebGateway
) -> None:
    # The attacker starts a sign-in in their own browser and feeds its state to the victim.
    async with browser(site) as attacker:
        started = await attacker.get("/login", allow_redirects=False)
        state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    response = await anonymous.get(f"/callback?state={state}&code=made-up")
    assert response.status == 400
    assert "This sign-in has expired" in await response.text()
    assert not site.app[WEB_KEY].stores.sessions.values()


async def test_a_callback_without_a_pending_sign_in_is_refused(anonymous: Browser) -> None:
    response = await anonymous.get("/callback?state=nothing&code=nothing")
    assert response.status == 400
    assert "text/html" in response.headers["Content-Type"]


async def test_silent_refresh_when_the_access_token_is_near_expiry(
    alice: Browser, site: WebGateway
) -> None:
    session = site.app[WEB_KEY].stores.sessions.values()[0]
    old_access, old_refresh = session.tokens.access_token, session.tokens.refresh_token
    assert old_refresh is not None
    session.tokens = type(session.tokens)(
        access_token=old_access,
        expires_at=site.app[WEB_KEY].stores.clock() + 1,
        refresh_token=old_refresh,
        id_token=session.tokens.id_token,
    )
    page = await alice.get("/")
    assert page.status == 200
    assert "Your jobs" in await page.text()
    assert session.tokens.access_token != old_access
    assert session.tokens.refresh_token not in {None, old_refresh}


async def test_a_failed_refresh_ends_the_session_and_asks_to_sign_in(
    alice: Browser, site: WebGateway
) -> None:
    session = site.app[WEB_KEY].stores.sessions.values()[0]
    session.tokens = type(session.tokens)(
        access_token=session.tokens.access_token,
        expires_at=0,
        refresh_token="not-a-refresh-token",
        id_token=None,
    )
    response = await alice.get("/search", allow_redirects=False)
    assert response.status == 303
    assert parse_qs(urlsplit(response.headers["Location"]).query) == {"next": ["/search"]}
    assert not site.app[WEB_KEY].stores.sessions.values()
    api = await alice.get("/web/api/jobs")
    assert api.status == 401
    assert (await api.json())["error"] == "session_expired"


async def test_sign_out_revokes_and_the_back_button_shows_nothing(
    alice: Browser, site: WebGateway
) -> None:
    session = site.app[WEB_KEY].stores.sessions.values()[0]
    refresh = session.tokens.refresh_token
    assert refresh is not None
    html = await (await alice.get("/")).text()
    response = await alice.post(
        "/logout", data={"csrf_token": csrf_of(html)}, allow_redirects=False
    )
    assert response.status == 303
    end_session = urlsplit(response.headers["Location"])
    assert end_session.path == "/end_session"
    page = await alice.follow(response)
    assert page.status == 200
    assert urlsplit(str(page.url)).path == "/signed-out"
    assert "You are signed out" in await page.text()
    assert not site.app[WEB_KEY].stores.sessions.values()
    # The refresh token is dead at the identity.
    async with alice.session.post(
        f"{site.issuer.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "sealflow-web"},
    ) as refused:
        assert refused.status == 400
    # Back: the jobs page is the landing page again; a job page sends to sign-in.
    landing = await alice.get("/")
    assert "upload-form" not in await landing.text()
    again = await alice.get("/jobs/" + "0" * 32, allow_redirects=False)
    assert again.status == 303
    assert again.headers["Location"].startswith("/login")


async def test_sign_out_without_the_csrf_token_is_refused(alice: Browser, site: WebGateway) -> None:
    response = await alice.post("/logout", data={}, allow_redirects=False)
    assert response.status == 403
    assert "security token" in await response.text()
    assert site.app[WEB_KEY].stores.sessions.values()
    wrong = await alice.post("/logout", data={"csrf_token": "x" * 43}, allow_redirects=False)
    assert wrong.status == 403
