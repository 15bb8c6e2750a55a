"""The gateway's audit reader against a stand-in audit daemon: what it sends, and how each kind
of answer becomes records, a 400 or a clear 503."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.audit_reader import MAX_ANSWER_BYTES, AuditReader
from gateway.errors import BadRequest, Unavailable
from keys import KeyRing, TrustStore, request_digest, verify_service_token
from schemas.audit_query import AUDIT_RECORDS_PATH, AuditQuery

Handler = Callable[[web.Request], Any]


def _record(seq: int) -> dict[str, Any]:
    return {
        "seq": seq,
        "ts": datetime.now(UTC).isoformat(),
        "event": {
            "schema_version": 1,
            "event_id": f"{seq:032x}",
            "ts": datetime.now(UTC).isoformat(),
            "type": "job.submitted",
            "action": "submit",
            "outcome": "success",
            "source": "gateway",
            "detail": "x" * 900,
        },
        "prev": "0" * 64,
        "hash": "1" * 64,
    }


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    KeyRing.create(directory, "gateway")
    return directory


@pytest.fixture
async def daemon() -> AsyncIterator[Callable[[Handler], Any]]:
    """Start a stand-in audit daemon answering ``AUDIT_RECORDS_PATH`` with a given handler."""
    servers: list[TestServer] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_get(AUDIT_RECORDS_PATH, handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        await server.close()


async def test_a_large_answer_sent_in_pieces_is_read_whole(daemon, keys_dir: Path) -> None:
    """1,000 records (about 1.3 MB) written in small pieces: every byte is read."""
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        seen["claims"] = verify_service_token(
            token,
            TrustStore.from_rings(keys_dir, ("gateway",)).verification_keys(),
            issuer="gateway",
            audience="audit",
            scope="audit:read",
        )
        seen["target"] = request.raw_path
        body = json.dumps({"records": [_record(seq) for seq in range(1, 1001)]}).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for start in range(0, len(body), 1000):
            await response.write(body[start : start + 1000])
        await response.write_eof()
        return response

    reader = AuditReader(await daemon(handler), keys_dir, timeout=10)
    records = await reader.records(AuditQuery(limit=1000, actor="root"), actor="root")
    assert [r.seq for r in records] == list(range(1, 1001))
    claims = seen["claims"]
    assert claims.actor == "root"
    assert claims.request == request_digest("GET", seen["target"])
    assert seen["target"].startswith(f"{AUDIT_RECORDS_PATH}?actor=root&limit=1000")


async def test_the_daemons_400_is_the_callers(daemon, keys_dir: Path) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": "bad_request", "detail": "limit is bad"}, status=400)

    reader = AuditReader(await daemon(handler), keys_dir, timeout=10)
    with pytest.raises(BadRequest, match="limit is bad"):
        await reader.records(AuditQuery(), actor=None)


@pytest.mark.parametrize(
    ("answer", "status", "says"),
    [
        ({"error": "wrong_audience", "detail": "no"}, 401, "refused the gateway's service token"),
        ({"error": "log_unreadable", "detail": "broken log"}, 503, "broken log"),
        ({"records": "not a list"}, 200, "not records"),
    ],
)
async def test_other_answers_are_a_503_that_says_why(
    daemon, keys_dir: Path, answer: dict[str, Any], status: int, says: str
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(answer, status=status)

    reader = AuditReader(await daemon(handler), keys_dir, timeout=10)
    with pytest.raises(Unavailable, match=says):
        await reader.records(AuditQuery(), actor=None)


async def test_an_oversized_answer_is_a_503(daemon, keys_dir: Path) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b" " * (MAX_ANSWER_BYTES + 1), content_type="application/json")

    reader = AuditReader(await daemon(handler), keys_dir, timeout=10)
    with pytest.raises(Unavailable, match="too large"):
        await reader.records(AuditQuery(), actor=None)


async def test_a_daemon_that_never_answers_is_a_503_within_the_timeout(
    daemon, keys_dir: Path
) -> None:
    import asyncio

    never = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    reader = AuditReader(await daemon(handler), keys_dir, timeout=0.5)
    with pytest.raises(Unavailable, match="took too long"):
        async with asyncio.timeout(10):
            await reader.records(AuditQuery(), actor=None)
    never.set()
