"""The identity store on both backends: hashing at rest, single use under concurrency, family
revocation."""

from __future__ import annotations

import asyncio
import time

import pytest
from store_testing import identity_rows

from identity import AccessDenied, AnyIdentityStore, InvalidClient, InvalidGrant, InvalidRequest


async def test_passwords_are_argon2id(store: AnyIdentityStore) -> None:
    """Passwords are stored as Argon2id hashes; a taken name is refused."""
    await store.add_user("alice", "s3cret pass", "viewer")
    [(stored,)] = await identity_rows(store, "SELECT password_hash FROM users")
    assert str(stored).startswith("$argon2id$")
    assert (await store.authenticate_user("alice", "s3cret pass")).role == "viewer"
    with pytest.raises(AccessDenied) as caught:
        await store.authenticate_user("alice", "wrong")
    assert caught.value.reason == "access_denied"
    with pytest.raises(InvalidRequest):
        await store.add_user("alice", "again", "user")


async def test_disabled_user_cannot_sign_in(store: AnyIdentityStore) -> None:
    await store.add_user("bob", "pw pw pw", "user")
    await store.set_user_disabled("bob", True)
    with pytest.raises(AccessDenied):
        await store.authenticate_user("bob", "pw pw pw")


async def test_client_secrets(store: AnyIdentityStore) -> None:
    await store.add_client("svc", secret="abc", grant_types=["client_credentials"], role="user")
    await store.add_client("web", redirect_uris=["https://a.example/cb"])
    assert (await store.authenticate_client("svc", "abc")).client_id == "svc"
    assert (await store.authenticate_client("web", None)).public
    for client_id, secret in [("svc", "abd"), ("svc", None), ("web", "x"), ("nobody", "x")]:
        with pytest.raises(InvalidClient):
            await store.authenticate_client(client_id, secret)
    with pytest.raises(InvalidRequest):
        await store.add_client("pub", grant_types=["client_credentials"], role="user")
    with pytest.raises(InvalidRequest):
        await store.add_client("frag", redirect_uris=["https://a.example/cb#x"])


async def _code(store: AnyIdentityStore) -> str:
    return await store.issue_code(
        client_id="web",
        redirect_uri="https://a.example/cb",
        username="alice",
        scope=["openid"],
        code_challenge=None,
        nonce=None,
        auth_time=1,
        lifetime=600,
    )


async def test_code_lifetime_capped_and_single_use_under_concurrency(
    store: AnyIdentityStore,
) -> None:
    """A code is stored hashed, lives 60 s at most and is redeemed once of five at once."""
    code = await _code(store)
    [(stored, expires)] = await identity_rows(store, "SELECT code_hash, expires_at FROM codes")
    assert code not in str(stored)
    assert float(str(expires)) - time.time() <= 60.5
    results = await asyncio.gather(
        *(store.redeem_code(code, "web") for _ in range(5)), return_exceptions=True
    )
    assert sum(not isinstance(result, BaseException) for result in results) == 1
    assert all(isinstance(r, InvalidGrant) for r in results if isinstance(r, BaseException))


async def test_refresh_tokens_hashed_rotated_and_family_revoked(store: AnyIdentityStore) -> None:
    """Refresh tokens are stored hashed; of three concurrent rotations one wins and the rest
    revoke the family as reuse."""
    await store.add_user("alice", "pw pw pw", "user")
    token = await store.issue_refresh_token(
        family_id="fam",
        client_id="web",
        username="alice",
        scope=["openid"],
        auth_time=1,
        lifetime=3600,
    )
    hashes = [
        str(row[0]) for row in await identity_rows(store, "SELECT token_hash FROM refresh_tokens")
    ]
    assert token not in hashes
    assert len(hashes[0]) == 64
    results = await asyncio.gather(
        *(store.rotate_refresh_token(token, "web", lifetime=3600) for _ in range(3)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    # the losers counted as reuse: the family, including the winner's new token, is revoked
    assert await store.is_family_revoked("fam")
    with pytest.raises(InvalidGrant):
        await store.rotate_refresh_token(winners[0].new_token, "web", lifetime=3600)


async def test_seeding_a_public_client_is_idempotent_and_keeps_what_exists(
    store: AnyIdentityStore,
) -> None:
    assert await store.ensure_public_client("cli", grant_types=["refresh_token"])
    assert not await store.ensure_public_client("cli", grant_types=["authorization_code"])
    client = await store.get_client("cli")
    assert client is not None
    assert client.grant_types == ("refresh_token",)
    await store.add_client("bff", secret="s3cret", redirect_uris=["https://a.example/cb"])
    assert not await store.ensure_public_client("bff", grant_types=["refresh_token"])
    assert [c.client_id for c in await store.list_clients()] == ["bff", "cli"]


async def test_roles_change_and_users_list(store: AnyIdentityStore) -> None:
    await store.add_user("bob", "pw pw pw", "viewer")
    await store.add_user("alice", "pw pw pw", "user")
    assert (await store.set_user_role("bob", "admin")).role == "admin"
    with pytest.raises(InvalidRequest):
        await store.set_user_role("nobody", "admin")
    with pytest.raises(ValueError, match="unknown role"):
        await store.set_user_role("bob", "root")  # type: ignore[arg-type]
    assert [(u.username, u.role) for u in await store.list_users()] == [
        ("alice", "user"),
        ("bob", "admin"),
    ]


async def test_names_no_row_can_hold_are_refused_not_crashed(store: AnyIdentityStore) -> None:
    """A NUL in a typed username or client id (PostgreSQL text cannot hold one) is an
    ordinary failure, not a database error."""
    await store.add_user("alice", "pw pw pw", "user")
    with pytest.raises(AccessDenied):
        await store.authenticate_user("alice\x00", "pw pw pw")
    assert await store.get_user("alice\x00") is None
    with pytest.raises(InvalidClient):
        await store.authenticate_client("web\x00", None)
