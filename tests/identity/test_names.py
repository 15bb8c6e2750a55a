"""One namespace for users, client ids and service names (issue 11.11): a token's ``sub`` is
a username or a client id, and services seal envelopes as themselves, so no name may be two
of these at once, in any letter case."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from identity import IdentityStore, InvalidRequest
from schemas import SERVICES

_CC = {"secret": "a long client secret", "grant_types": ["client_credentials"], "role": "user"}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[IdentityStore]:
    opened = await IdentityStore.open(tmp_path / "identity.sqlite3")
    yield opened
    await opened.close()


async def test_a_client_named_like_a_user_is_refused(store: IdentityStore) -> None:
    """The attack: a client-credentials client ``alice`` would get tokens with sub=alice and
    own alice's jobs."""
    await store.add_user("alice", "long password", "user")
    with pytest.raises(InvalidRequest) as caught:
        await store.add_client("alice", **_CC)  # type: ignore[arg-type]
    assert "already taken by a user" in caught.value.description
    assert "share one namespace" in caught.value.description
    assert await store.get_client("alice") is None


async def test_a_user_named_like_a_client_is_refused(store: IdentityStore) -> None:
    await store.add_client("reports-bot", **_CC)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest) as caught:
        await store.add_user("reports-bot", "long password", "user")
    assert "already taken by a client" in caught.value.description
    assert await store.get_user("reports-bot") is None


@pytest.mark.parametrize("service", SERVICES)
async def test_service_names_are_never_free(store: IdentityStore, service: str) -> None:
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


async def test_names_differing_only_in_case_are_one_name(store: IdentityStore) -> None:
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
    store: IdentityStore,
) -> None:
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
