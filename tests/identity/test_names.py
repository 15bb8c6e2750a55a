"""One namespace for users, client ids and service names (issue 11.11): a token's ``sub`` is
a username or a client id, and services seal envelopes as themselves, so no name may be two
of these at once, in any letter case."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import encode_basic_auth
from aiohttp.test_utils import TestClient, TestServer
from identity_testing import PASSWORDS, REDIRECT, WEB, Provider, new_pkce

from identity import AnyIdentityStore, IdentitySettings, IdentityStore, InvalidRequest, create_app
from identity.hashing import hash_password
from schemas import SERVICES

_CC = {"secret": "a long client secret", "grant_types": ["client_credentials"], "role": "user"}


async def test_a_client_named_like_a_user_is_refused(store: AnyIdentityStore) -> None:
    """The attack: a client-credentials client ``alice`` would get tokens with sub=alice and
    own alice's jobs."""
    await store.add_user("alice", "long password", "user")
    with pytest.raises(InvalidRequest) as caught:
        await store.add_client("alice", **_CC)  # type: ignore[arg-type]
    assert "already taken by a user" in caught.value.description
    assert "share one namespace" in caught.value.description
    assert await store.get_client("alice") is None


async def test_a_user_named_like_a_client_is_refused(store: AnyIdentityStore) -> None:
    """The other way round: a user may not take a client's id as name."""
    await store.add_client("reports-bot", **_CC)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest) as caught:
        await store.add_user("reports-bot", "long password", "user")
    assert "already taken by a client" in caught.value.description
    assert await store.get_user("reports-bot") is None


@pytest.mark.parametrize("service", SERVICES)
async def test_service_names_are_never_free(store: AnyIdentityStore, service: str) -> None:
    """A user ``worker`` revoked by sub would silence the worker: names of services are
    refused for users and clients, whatever their case."""
    for name in (service, service.upper(), service.capitalize()):
        with pytest.raises(InvalidRequest) as caught:
            await store.add_user(name, "long password", "user")
        assert "name of a Sealflow service" in caught.value.description
        with pytest.raises(InvalidRequest):
            await store.add_client(name, redirect_uris=["https://app.example/cb"])
    assert await store.list_users() == []
    assert await store.list_clients() == []


async def test_names_differing_only_in_case_are_one_name(store: AnyIdentityStore) -> None:
    """``Alice`` and ``alice`` are one name, for users and clients alike."""
    await store.add_user("Alice", "long password", "user")
    with pytest.raises(InvalidRequest) as as_user:
        await store.add_user("alice", "long password", "user")
    assert "already taken by a user" in as_user.value.description
    with pytest.raises(InvalidRequest):
        await store.add_client("ALICE", redirect_uris=["https://app.example/cb"])
    with pytest.raises(InvalidRequest) as again:
        await store.add_user("Alice", "long password", "user")
    assert "user 'Alice' already exists" in again.value.description


async def test_a_user_and_a_client_racing_for_one_name_get_it_once(
    store: AnyIdentityStore,
) -> None:
    """Concurrent creations of one name: exactly one wins."""
    results = await asyncio.gather(
        store.add_user("carol", "long password", "user"),
        store.add_client("carol", **_CC),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert len([r for r in results if isinstance(r, InvalidRequest)]) == 1
    users, clients = await store.list_users(), await store.list_clients()
    assert len(users) + len(clients) == 1


async def test_an_older_database_gets_its_names_claimed_and_clashes_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Names made before the namespace existed are claimed at open; clashes are reported."""
    path = tmp_path / "old.sqlite3"
    store = await IdentityStore.open(path)
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE names")
        for name in ("dave", "worker"):
            db.execute(
                "INSERT INTO users (username, password_hash, role, disabled, created_at)"
                " VALUES (?, 'x', 'user', 0, 0)",
                (name,),
            )
        db.execute(
            "INSERT INTO clients (client_id, secret_hash, redirect_uris, grant_types, role,"
            " created_at) VALUES ('dave', NULL, '[]', '[]', NULL, 0)"
        )
    store = await IdentityStore.open(path)
    try:
        assert "identity.name_clashes" in capsys.readouterr().out
        with pytest.raises(InvalidRequest):
            await store.add_client("Dave", redirect_uris=["https://app.example/cb"])
    finally:
        await store.close()


def _insert_old_user(provider: Provider, username: str) -> None:
    """A user row as an older identity could make it, bypassing the namespace."""
    with sqlite3.connect(provider.settings.database_path) as db:
        db.execute(
            "INSERT INTO users (username, password_hash, role, disabled, created_at)"
            " VALUES (?, ?, 'admin', 0, 0)",
            (username, hash_password(PASSWORDS["alice"])),
        )


async def test_an_older_clashing_client_gets_no_client_credentials_token(
    provider: Provider,
) -> None:
    """A clash made before the namespace existed is refused at the token endpoint too."""
    await provider.store.add_client("svc", **_CC)  # type: ignore[arg-type]
    _insert_old_user(provider, "svc")
    response = await provider.http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": encode_basic_auth("svc", _CC["secret"])},
    )
    assert response.status == 400
    assert (await response.json())["error"] == "unauthorized_client"


async def test_an_older_user_named_like_a_service_gets_no_tokens(provider: Provider) -> None:
    """A user ``worker`` from an older database may sign in but gets no token."""
    _insert_old_user(provider, "worker")
    pkce = new_pkce()
    signed_in = await provider.login(pkce, "worker", PASSWORDS["alice"])
    assert signed_in.status == 302  # the password is right: the refusal comes at /token
    code = parse_qs(urlsplit(signed_in.headers["Location"]).query)["code"][0]
    response = await provider.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": WEB,
            "code_verifier": pkce.verifier,
        },
    )
    assert response.status == 400
    assert "service's name" in (await response.json())["error_description"]


async def test_a_user_holding_the_cli_clients_name_does_not_stop_the_identity(
    identity_settings: IdentitySettings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seeded client ``sealflow-cli`` cannot be registered: logged, and the rest runs."""
    store = await IdentityStore.open(identity_settings.database_path)
    try:
        await store.add_user("sealflow-cli", "long password", "user")
    finally:
        await store.close()
    app = create_app(identity_settings)
    async with TestClient(TestServer(app)) as http:
        assert (await http.get("/.well-known/openid-configuration")).status == 200
    assert "identity.client_seed_failed" in capsys.readouterr().out
