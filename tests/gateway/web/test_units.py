"""The browser side's small parts, without a server: return paths, session stores, snippets,
the session key file, the PKCE challenge, CSRF comparison."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway.web import (
    SESSION_KEY_FILE,
    SessionSecretError,
    SessionStores,
    TokenSet,
    WebSettings,
    load_session_secret,
    login_path,
    s256,
    safe_return_path,
)
from gateway.web.render import filesize, highlight


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/jobs/abc", "/jobs/abc"),
        ("/search?q=a+b", "/search?q=a+b"),
        (None, "/"),
        ("", "/"),
        ("jobs", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/ok\\evil", "/"),
        ("/a\r\nSet-Cookie: x", "/"),
        ("/login?next=/x", "/"),
        ("/callback?code=1", "/"),
        ("/web/api/jobs", "/"),
        ("/" + "a" * 2001, "/"),
    ],
)
def test_only_same_site_paths_are_returned_to(candidate: str | None, expected: str) -> None:
    assert safe_return_path(candidate) == expected


def test_login_path_carries_the_page_asked_for() -> None:
    assert login_path("/") == "/login"
    assert login_path("/search?q=x") == "/login?next=%2Fsearch%3Fq%3Dx"
    assert login_path("//evil") == "/login"


def _tokens() -> TokenSet:
    return TokenSet(access_token="a", expires_at=0, refresh_token=None, id_token=None)


def _stores(clock: list[float], **overrides: float) -> SessionStores:
    options: dict[str, float] = {
        "max_sessions": 2,
        "max_pending": 2,
        "idle_seconds": 100,
        "max_seconds": 1000,
        "login_seconds": 10,
    }
    options.update(overrides)
    return SessionStores(
        max_sessions=int(options["max_sessions"]),
        max_pending=int(options["max_pending"]),
        idle_seconds=options["idle_seconds"],
        max_seconds=options["max_seconds"],
        login_seconds=options["login_seconds"],
        clock=lambda: clock[0],
    )


def test_sessions_expire_when_idle_and_at_their_absolute_limit() -> None:
    clock = [1000.0]
    stores = _stores(clock)
    session = stores.start(subject="alice", roles=("user",), scopes=(), tokens=_tokens())
    clock[0] += 99
    assert stores.session(session.sid) is session
    clock[0] += 99
    assert stores.session(session.sid) is session  # seen: the idle clock restarted
    clock[0] += 101
    assert stores.session(session.sid) is None
    other = stores.start(subject="bob", roles=(), scopes=(), tokens=_tokens())
    for _ in range(20):
        clock[0] += 50
        stores.session(other.sid)
    assert stores.session(other.sid) is None  # past max_seconds however active


def test_a_full_store_evicts_the_least_recently_used_session() -> None:
    clock = [0.0]
    stores = _stores(clock)
    first = stores.start(subject="a", roles=(), scopes=(), tokens=_tokens())
    second = stores.start(subject="b", roles=(), scopes=(), tokens=_tokens())
    assert stores.session(first.sid) is first
    third = stores.start(subject="c", roles=(), scopes=(), tokens=_tokens())
    assert stores.session(second.sid) is None
    assert stores.session(first.sid) is first
    assert stores.session(third.sid) is third


def test_pending_sign_ins_are_single_use_short_lived_and_apart_from_sessions() -> None:
    clock = [0.0]
    stores = _stores(clock)
    session = stores.start(subject="a", roles=(), scopes=(), tokens=_tokens())
    logins = [stores.begin_login(return_to="/", browser="b") for _ in range(5)]
    assert stores.session(session.sid) is session  # a flood of /login evicts no session
    assert stores.take_login(logins[0].state) is None  # evicted by the cap of 2
    assert stores.take_login(logins[-1].state) is logins[-1]
    assert stores.take_login(logins[-1].state) is None  # single use
    clock[0] += 11
    assert stores.take_login(logins[-2].state) is None  # expired
    assert len({login.state for login in logins}) == 5
    assert all(len(login.verifier) >= 43 for login in logins)


def test_snippets_are_split_into_matches_and_text() -> None:
    assert highlight("a [b] c [d]") == [("a ", False), ("b", True), (" c ", False), ("d", True)]
    assert highlight("no match") == [("no match", False)]
    assert highlight("open [bracket") == [("open [bracket", False)]
    assert highlight("<script>[x]") == [("<script>", False), ("x", True)]


def test_file_sizes_read_like_people_write_them() -> None:
    assert filesize(0) == "0 B"
    assert filesize(1023) == "1023 B"
    assert filesize(1536) == "1.5 KB"
    assert filesize(16 * 1024 * 1024) == "16.0 MB"


def test_the_session_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    first = load_session_secret(tmp_path, None)
    path = tmp_path / SESSION_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_session_secret(tmp_path, None) == first
    os.chmod(path, 0o644)
    with pytest.raises(SessionSecretError, match=r"group/world"):
        load_session_secret(tmp_path, None)


def test_a_configured_session_secret_must_be_long_enough(tmp_path: Path) -> None:
    with pytest.raises(SessionSecretError):
        load_session_secret(tmp_path, "short")
    key = load_session_secret(tmp_path, "x" * 40)
    assert key != load_session_secret(tmp_path, "y" * 40)
    assert not (tmp_path / SESSION_KEY_FILE).exists()


def test_pkce_challenge_is_rfc_7636_s256() -> None:
    # RFC 7636 appendix B.
    assert (
        s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_web_settings_need_an_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALFLOW_GATEWAY_URL", "https://sealflow.example/")
    settings = WebSettings()
    assert settings.redirect_uri == "https://sealflow.example/callback"
    assert settings.secure_cookies
    monkeypatch.setenv("SEALFLOW_GATEWAY_URL", "https://sealflow.example/app")
    with pytest.raises(ValueError, match="origin"):
        WebSettings()
