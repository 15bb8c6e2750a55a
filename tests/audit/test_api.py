"""The audit daemon's query API: the gateway's service token opens it, and every wrong token
(audience, expiry, replay, issuer, scope, typ, key, request) is refused and recorded."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer

from audit import AuditLog
from audit.api import RECORDS_PATH, QueryApi, create_query_app
from broker import RevocationList, SpentIds, SpentIdsJournal
from keys import (
    ACCESS_TOKEN_TYP,
    SERVICE_TOKEN_TYP,
    KeyRing,
    SigningKey,
    TrustStoreFile,
    issue_service_token,
    request_digest,
    write_trust_store,
)
from keys.jose import encode_token
from schemas import AuditEvent, Revocation

JOB = "d" * 32


@dataclass
class Sink:
    """Collects the audit events the API emits about refusals."""

    events: list[AuditEvent] = field(default_factory=list)

    async def emit(self, event: AuditEvent) -> None:
        self.events.append(event)


@dataclass
class Api:
    client: TestClient
    keys: dict[str, SigningKey]
    sink: Sink
    revocations: RevocationList

    def token(self, target: str, *, service: str = "gateway", **kwargs: Any) -> str:
        kwargs.setdefault("audience", "audit")
        kwargs.setdefault("scope", ["audit:read"])
        return issue_service_token(
            self.keys[service], request=request_digest("GET", target), **kwargs
        )

    async def get(self, query: str, token: str | None) -> tuple[int, Any]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        response = await self.client.get(f"{RECORDS_PATH}?{query}", headers=headers)
        return response.status, await response.json()


def _target(query: str) -> str:
    return f"{RECORDS_PATH}?{query}"


@pytest.fixture
async def api(
    tmp_path: Path, log_dir: Path, make_event: Callable[..., AuditEvent]
) -> AsyncIterator[Api]:
    keys_dir = tmp_path / "keys"
    services = ("gateway", "worker", "identity", "audit")
    keys = {service: KeyRing.create(keys_dir, service).signing_key() for service in services}
    write_trust_store(keys_dir, services)
    with AuditLog.open(log_dir, signer=keys["audit"]) as log:
        log.append([make_event(actor="alice") for _ in range(3)])
        log.append([make_event(type="job.failed", outcome="failure", actor="bob", job=JOB)])
        log.append([make_event(actor="carol") for _ in range(2)])
    sink = Sink()
    revocations = RevocationList()
    query_api = QueryApi(
        directory=log_dir,
        trust=TrustStoreFile(keys_dir / "trust.json"),
        reader="gateway",
        replay=SpentIds(100),
        audit=sink,
        revocations=revocations,
    )
    async with TestClient(TestServer(create_query_app(query_api))) as client:
        yield Api(client=client, keys=keys, sink=sink, revocations=revocations)


async def test_a_gateway_token_reads_the_last_records(api: Api) -> None:
    query = "limit=2"
    status, body = await api.get(query, api.token(_target(query)))
    assert status == 200, body
    assert [r["seq"] for r in body["records"]] == [5, 6]
    assert set(body["records"][0]) == {"seq", "ts", "event", "prev", "hash"}
    assert api.sink.events == []


@pytest.mark.parametrize(
    ("query", "seqs"),
    [
        ("type=job.failed&limit=100", [4]),
        ("actor=alice&limit=100", [1, 2, 3]),
        (urlencode({"job": JOB, "limit": 100}), [4]),
        ("after=4&limit=100", [5, 6]),
        ("since=2000-01-01T00:00:00Z&limit=1", [6]),
        ("since=2999-01-01T00:00:00Z&limit=100", []),
    ],
)
async def test_the_filters_of_audit_tail(api: Api, query: str, seqs: list[int]) -> None:
    status, body = await api.get(query, api.token(_target(query)))
    assert status == 200, body
    assert [r["seq"] for r in body["records"]] == seqs


async def test_a_malformed_filter_is_400_after_the_token_holds(api: Api) -> None:
    query = "limit=0"
    status, body = await api.get(query, api.token(_target(query)))
    assert (status, body["error"]) == (400, "bad_request")
    assert "limit" in body["detail"]


async def test_a_replayed_token_is_refused(api: Api) -> None:
    query = "limit=1"
    token = api.token(_target(query))
    assert (await api.get(query, token))[0] == 200
    status, body = await api.get(query, token)
    assert (status, body["error"]) == (401, "replay")


def _crafted(api: Api, query: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": "gateway",
        "sub": "gateway",
        "aud": "audit",
        "scope": "audit:read",
        "iat": now,
        "nbf": now,
        "exp": now + 30,
        "jti": "e" * 32,
        "req": request_digest("GET", _target(query)),
    }
    typ = overrides.pop("typ", SERVICE_TOKEN_TYP)
    service = overrides.pop("service", "gateway")
    claims.update(overrides)
    return encode_token(api.keys[service], claims, typ)


@pytest.mark.parametrize(
    ("overrides", "status", "reason"),
    [
        ({"aud": "gateway"}, 401, "wrong_audience"),
        ({"iat": int(time.time()) - 100, "exp": int(time.time()) - 60}, 401, "expired"),
        ({"iss": "identity", "sub": "identity"}, 401, "wrong_issuer"),
        ({"service": "identity", "iss": "identity", "sub": "identity"}, 401, "unknown_kid"),
        ({"service": "worker"}, 401, "unknown_kid"),
        ({"scope": "jobs:read"}, 403, "scope_missing"),
        ({"typ": ACCESS_TOKEN_TYP}, 401, "wrong_typ"),
        ({"typ": "sealflow-envelope+jwt"}, 401, "wrong_typ"),
        ({"exp": int(time.time()) + 3600}, 401, "lifetime_too_long"),
        ({"req": request_digest("GET", _target("limit=1000"))}, 401, "request_mismatch"),
    ],
)
async def test_a_wrong_token_is_refused_and_recorded(
    api: Api, overrides: dict[str, Any], status: int, reason: str
) -> None:
    query = "limit=5"
    answered, body = await api.get(query, _crafted(api, query, **overrides))
    assert (answered, body["error"]) == (status, reason)
    assert "records" not in body
    [event] = api.sink.events
    assert (event.type, event.outcome, event.reason, event.source) == (
        "access.denied",
        "denied",
        reason,
        "audit",
    )


@pytest.mark.parametrize("kind", ["kid", "sub"])
async def test_a_token_of_a_revoked_gateway_key_or_service_is_refused(api: Api, kind: str) -> None:
    value = api.keys["gateway"].kid if kind == "kid" else "gateway"
    api.revocations.add(
        Revocation(
            revocation_id=secrets.token_hex(16),
            kind=kind,
            value=value,
            reason="compromised",
            issued_at=datetime.now(UTC),
        )
    )
    query = "limit=1"
    status, body = await api.get(query, api.token(_target(query)))
    assert (status, body["error"]) == (401, "revoked")


async def test_no_token_or_a_garbage_one_is_401(api: Api) -> None:
    status, body = await api.get("limit=1", None)
    assert (status, body["error"]) == (401, "unauthorized")
    status, body = await api.get("limit=1", "not.a.token")
    assert status == 401


async def test_a_deeply_nested_header_is_a_401_not_a_crash(api: Api) -> None:
    header = base64.urlsafe_b64encode(b"[" * 5000).rstrip(b"=").decode()
    status, body = await api.get("limit=1", f"{header}.e30.c2ln")
    assert status == 401
    assert body["error"] in {"malformed", "wrong_typ"}


async def test_a_token_for_another_query_is_spent_and_refused(api: Api) -> None:
    """Made for ``limit=1`` and sent with ``limit=1000``: refused, and then spent too."""
    token = api.token(_target("limit=1"))
    status, body = await api.get("limit=1000", token)
    assert (status, body["error"]) == (401, "request_mismatch")
    status, body = await api.get("limit=1", token)
    assert (status, body["error"]) == (401, "replay")


async def test_an_unreadable_log_is_503(api: Api, log_dir: Path) -> None:
    segment = log_dir / "segment-000001.jsonl"
    segment.write_bytes(segment.read_bytes().replace(b'"seq":5', b'"seq":"x"', 1))
    query = "limit=100"
    status, body = await api.get(query, api.token(_target(query)))
    assert (status, body["error"]) == (503, "log_unreadable")


async def test_a_token_spent_before_a_restart_stays_spent(
    tmp_path: Path, log_dir: Path, make_event: Callable[..., AuditEvent]
) -> None:
    """The daemon journals spent token ids, as it does envelope ids."""
    keys_dir = tmp_path / "keys"
    gateway = KeyRing.create(keys_dir, "gateway").signing_key()
    KeyRing.create(keys_dir, "audit")
    write_trust_store(keys_dir, ("gateway", "audit"))
    journal = tmp_path / "replay" / "audit-api.jtis"
    query = "limit=1"
    token = issue_service_token(
        gateway,
        audience="audit",
        scope=["audit:read"],
        request=request_digest("GET", _target(query)),
    )

    async def ask() -> int:
        spent = SpentIds(100, journal=SpentIdsJournal(journal))
        spent.restore(time.time())
        api = QueryApi(
            directory=log_dir,
            trust=TrustStoreFile(keys_dir / "trust.json"),
            reader="gateway",
            replay=spent,
        )
        async with TestClient(TestServer(create_query_app(api))) as client:
            response = await client.get(
                _target(query), headers={"Authorization": f"Bearer {token}"}
            )
            return response.status

    assert await ask() == 200
    assert await ask() == 401  # a new process, the same journal
