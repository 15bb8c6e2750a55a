"""Admin routes on a real broker: the audit log, dead letters, and replaying one."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from daemon_testing import start_daemon
from gateway_testing import Gateway, error_body

from broker import REJECT_REASON_HEADER, BrokerSettings, Sealed, Sealer
from gateway import PUBLISHER_KEY, RUNTIME_KEY
from keys import KeyRing, SigningKey, write_trust_store
from parser.daemon import ParserSettings
from parser.daemon import serve as serve_parser
from schemas import JobSubmitted, ParseCompleted, ParseRequested
from store import NewJob
from workers import WorkerSettings
from workers import serve as serve_worker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ADMIN_ROUTES = [
    ("GET", "/api/audit"),
    ("GET", "/api/dlq"),
    ("POST", f"/api/dlq/{'a' * 32}/replay"),
]


async def _record_job(gateway: Gateway, owner: str = "alice") -> JobSubmitted:
    """A queued job with its blob, as an upload leaves it, and its job.submitted body."""
    data = b"words about a harbour that waited too long\n"
    sha = gateway.blobs.put(data)
    job_id = secrets.token_hex(16)
    await gateway.store.create(
        NewJob(
            job_id=job_id,
            owner=owner,
            filename="late.txt",
            content_type="text/plain",
            size=len(data),
            blob_sha256=sha,
            trace=secrets.token_hex(16),
        )
    )
    return JobSubmitted(
        job_id=job_id,
        owner=owner,
        filename="late.txt",
        content_type="text/plain",
        size=len(data),
        blob_sha256=sha,
        submitted_at=datetime.now(UTC),
    )


async def _into_worker_queue(gateway: Gateway, sealed: Sealed) -> None:
    publisher = gateway.app[PUBLISHER_KEY]
    runtime = gateway.app[RUNTIME_KEY]
    await publisher.publish_raw(
        publisher.message_for(sealed), routing_key=runtime.topology.queue("worker.jobs")
    )


async def _listed(gateway: Gateway, jti: str, timeout: float = 30) -> dict[str, Any]:
    """Wait (bounded) until a letter whose envelope says ``jti`` shows in /api/dlq; its entry."""
    async with asyncio.timeout(timeout):
        while True:
            response = await gateway.client.get("/api/dlq", headers=gateway.auth("root"))
            assert response.status == 200, await response.text()
            body = await response.json()
            for message in body["messages"]:
                if message["jti"] == jti:
                    return dict(message)
            await asyncio.sleep(0.1)


async def _audit_records(gateway: Gateway, query: str, timeout: float = 30) -> list[Any]:
    async with asyncio.timeout(timeout):
        while True:
            response = await gateway.client.get(f"/api/audit?{query}", headers=gateway.auth("root"))
            assert response.status == 200, await response.text()
            records = (await response.json())["records"]
            if records:
                return list(records)
            await asyncio.sleep(0.1)


async def _wait_state(gateway: Gateway, job_id: str, timeout: float = 60) -> str:
    async with asyncio.timeout(timeout):
        while True:
            job = await gateway.store.get(job_id)
            if job is not None and job.state in {"done", "failed"}:
                return job.state
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
@pytest.mark.parametrize("who", ["alice", "vera"])
async def test_a_non_admin_gets_403_on_every_admin_route(
    gateway: Gateway, method: str, path: str, who: str
) -> None:
    response = await gateway.client.request(method, path, headers=gateway.auth(who))
    await error_body(response, 403)


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_admin_routes_need_a_token_and_the_admin_scope(
    gateway: Gateway, method: str, path: str
) -> None:
    await error_body(await gateway.client.request(method, path), 401, "unauthorized")
    # The admin role without the route's scope is refused too.
    token = gateway.issuer.token("root", "admin", scopes=("jobs:read",))
    response = await gateway.client.request(
        method, path, headers={"Authorization": f"Bearer {token}"}
    )
    await error_body(response, 403, "insufficient_scope")


async def test_replay_of_an_unknown_or_malformed_id_is_404(gateway: Gateway) -> None:
    for letter_id in (secrets.token_hex(16), "not-an-id", "A" * 32):
        response = await gateway.client.post(
            f"/api/dlq/{letter_id}/replay", headers=gateway.auth("root")
        )
        await error_body(response, 404, "not_found")


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=x", "since=yesterday", "job=zz", "type=Not%20A%20Type"],
)
async def test_malformed_audit_filters_are_400(gateway: Gateway, query: str) -> None:
    response = await gateway.client.get(f"/api/audit?{query}", headers=gateway.auth("root"))
    await error_body(response, 400, "bad_request")


async def test_the_audit_log_is_a_clear_503_when_the_audit_daemon_is_away(
    gateway: Gateway,
) -> None:
    response = await gateway.client.get("/api/audit", headers=gateway.auth("root"))
    body = await error_body(response, 503, "unavailable")
    assert "the audit service does not answer" in body["detail"]
    assert gateway.settings.audit_url in body["detail"]


async def test_the_gateway_reads_the_log_only_through_the_audit_daemons_api(
    gateway: Gateway, audit_daemon: None
) -> None:
    """The daemon's log is in its own data directory (see the fixture): no file is shared."""
    refused = await gateway.client.get("/api/audit", headers=gateway.auth("alice"))
    await error_body(refused, 403)
    [denied] = await _audit_records(gateway, "type=access.denied&actor=alice")
    assert denied["event"]["source"] == "gateway"
    assert not (gateway.settings.data_dir / "audit").exists()
    response = await gateway.client.get(
        f"/api/audit?after={denied['seq']}", headers=gateway.auth("root")
    )
    assert all(r["seq"] > denied["seq"] for r in (await response.json())["records"])


async def test_the_audit_api_accepts_the_gateway_key_after_a_rotation(
    gateway: Gateway, audit_daemon: None
) -> None:
    """The gateway signs with its newly promoted key; the daemon reloads the trust store."""
    before = await gateway.client.get("/api/audit", headers=gateway.auth("root"))
    assert before.status == 200, await before.text()
    keys_dir = gateway.settings.keys_dir
    ring = KeyRing.load(keys_dir, "gateway")
    old = ring.signing_key().kid
    ring.add_next()
    write_trust_store(keys_dir)
    ring.promote_next(grace_seconds=300)
    assert KeyRing.load(keys_dir, "gateway").signing_key().kid != old
    after = await gateway.client.get("/api/audit", headers=gateway.auth("root"))
    assert after.status == 200, await after.text()


def test_the_gateway_imports_no_other_daemon() -> None:
    """DESIGN §1: what the gateway needs of the audit daemon reaches it through its API."""
    code = (
        "import sys, gateway, gateway.app, gateway.daemon, gateway.admin, gateway.web.pages\n"
        "daemons = {'audit', 'workers', 'parser', 'identity'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & daemons))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "queue=nope"])
async def test_malformed_dlq_filters_are_400(gateway: Gateway, query: str) -> None:
    response = await gateway.client.get(f"/api/dlq?{query}", headers=gateway.auth("root"))
    await error_body(response, 400, "bad_request")


async def test_an_empty_audit_log_and_empty_dlqs_answer_empty_lists(
    gateway: Gateway, audit_daemon: None
) -> None:
    response = await gateway.client.get("/api/audit", headers=gateway.auth("root"))
    assert response.status == 200
    assert await response.json() == {"records": []}
    response = await gateway.client.get("/api/dlq", headers=gateway.auth("root"))
    assert response.status == 200
    assert await response.json() == {"messages": [], "truncated": False}


async def test_a_forged_message_shows_in_the_dlq_with_its_reason_and_cannot_be_replayed(
    gateway: Gateway, pipeline: None
) -> None:
    rogue = SigningKey(
        service="gateway",
        kid="rogue-kid",
        alg="ES256",
        private_key=ec.generate_private_key(ec.SECP256R1()),
    )
    body = await _record_job(gateway, owner="mallory")
    forged = Sealer(rogue).seal(
        body, typ="job.submitted", aud="worker", sub="mallory", job=body.job_id
    )
    await _into_worker_queue(gateway, forged)
    entry = await _listed(gateway, forged.jti)
    assert entry["queue"] == "worker.jobs"
    assert entry["type"] == "job.submitted"
    assert entry["reason"] == "unknown_kid"
    assert entry["rejected_by"] == "worker"
    assert entry["verified"] is False
    assert entry["replayable"] is False
    assert entry["sub"] == "mallory"  # read from the envelope, flagged unverified
    assert entry["size"] == len(forged.body)

    response = await gateway.client.post(
        f"/api/dlq/{entry['id']}/replay", headers=gateway.auth("root")
    )
    detail = (await error_body(response, 409, "not_replayable"))["detail"]
    assert "unknown_kid" in detail
    assert "unknown_kid" in entry["refusal"]  # the listing said so before
    assert (await _listed(gateway, forged.jti))["id"] == entry["id"]  # it stays
    job = await gateway.store.get(body.job_id)
    assert job is not None
    assert job.state == "queued"
    refused = await _audit_records(gateway, "type=dlq.replay_refused&actor=root")
    assert refused[-1]["event"]["outcome"] == "denied"


async def test_an_expired_job_submitted_replayed_by_an_admin_completes_and_is_audited(
    gateway: Gateway, pipeline: None
) -> None:
    body = await _record_job(gateway)
    trace = secrets.token_hex(16)
    # Sealed ten minutes ago with a five-minute life: stale by the time it reaches the worker.
    stale_sealer = Sealer(
        KeyRing.load(gateway.settings.keys_dir, "gateway").signing_key(),
        clock=lambda: time.time() - 600,
    )
    stale = stale_sealer.seal(
        body,
        typ="job.submitted",
        aud="worker",
        sub="alice",
        job=body.job_id,
        act={"sub": "gateway"},
        trace=trace,
    )
    await _into_worker_queue(gateway, stale)
    entry = await _listed(gateway, stale.jti)
    assert entry["reason"] == "expired"
    assert entry["verified"] is True
    assert entry["replayable"] is True
    assert (entry["iss"], entry["sub"], entry["job"]) == ("gateway", "alice", body.job_id)

    assert entry["id"] != stale.jti  # the letter's own id
    response = await gateway.client.post(
        f"/api/dlq/{entry['id']}/replay", headers=gateway.auth("root")
    )
    assert response.status == 202, await response.text()
    accepted = await response.json()
    assert accepted["id"] == entry["id"]
    assert accepted["jti"] != stale.jti
    assert (accepted["queue"], accepted["type"], accepted["job"]) == (
        "worker.jobs",
        "job.submitted",
        body.job_id,
    )
    assert await _wait_state(gateway, body.job_id) == "done"

    [replayed] = await _audit_records(gateway, f"type=dlq.replayed&job={body.job_id}")
    event = replayed["event"]
    assert (event["actor"], event["subject"], event["source"]) == ("root", "alice", "gateway")
    assert event["jti"] == accepted["jti"]
    assert event["trace"] == trace
    assert stale.jti in event["detail"]
    assert entry["id"] in event["detail"]
    # The dead letter is gone, and a second replay finds nothing.
    listing = await gateway.client.get("/api/dlq", headers=gateway.auth("root"))
    assert entry["id"] not in [m["id"] for m in (await listing.json())["messages"]]
    again = await gateway.client.post(
        f"/api/dlq/{entry['id']}/replay", headers=gateway.auth("root")
    )
    await error_body(again, 404)
    # The trail of the job, through the admin's filters.
    started = await _audit_records(gateway, f"job={body.job_id}&type=job.completed")
    assert started[-1]["event"]["outcome"] == "success"


async def test_a_letter_of_another_sender_is_409_and_stays(gateway: Gateway) -> None:
    """An authentic parse.completed (the parser's, for the worker): neither the gateway nor
    anyone it may ask re-seals it."""
    runtime = gateway.app[RUNTIME_KEY]
    parser = Sealer(KeyRing.load(gateway.settings.keys_dir, "parser").signing_key())
    body = await _record_job(gateway)
    result = ParseCompleted(
        job_id=body.job_id,
        blob_sha256=body.blob_sha256,
        text="words",
        metadata={},
        chunks=[],
        pages=1,
        parser="text",
        duration_ms=1,
    )
    sealed = parser.seal(result, aud="worker", sub="alice", job=body.job_id)
    publisher = gateway.app[PUBLISHER_KEY]
    message = publisher.message_for(sealed)
    message.headers[REJECT_REASON_HEADER] = "retries_exhausted"
    message.expiration = None
    await publisher.publish_raw(message, routing_key=runtime.topology.queue("worker.jobs.dlq"))
    entry = await _listed(gateway, sealed.jti)
    assert (entry["queue"], entry["verified"], entry["replayable"]) == ("worker.jobs", True, False)
    response = await gateway.client.post(
        f"/api/dlq/{entry['id']}/replay", headers=gateway.auth("root")
    )
    detail = (await error_body(response, 409, "not_replayable"))["detail"]
    assert "sealed by parser" in detail
    assert (await _listed(gateway, sealed.jti))["reason"] == "retries_exhausted"


async def _parse_request_letter(gateway: Gateway, job_id: str, sub: str) -> Sealed:
    """An authentic parse.requested of the worker, dead-lettered by the parser."""
    worker = Sealer(KeyRing.load(gateway.settings.keys_dir, "worker").signing_key())
    request = ParseRequested(
        job_id=job_id,
        blob_sha256="1" * 64,
        filename="a.txt",
        content_type="text/plain",
        size=3,
        requested_at=datetime.now(UTC),
    )
    sealed = worker.seal(request, aud="parser", sub=sub, job=job_id)
    publisher = gateway.app[PUBLISHER_KEY]
    message = publisher.message_for(sealed)
    message.headers[REJECT_REASON_HEADER] = "retries_exhausted"
    message.expiration = None
    await publisher.publish_raw(
        message, routing_key=gateway.app[RUNTIME_KEY].topology.queue("parser.requests.dlq")
    )
    return sealed


async def test_a_parse_request_for_a_job_that_is_gone_is_409_and_stays(gateway: Gateway) -> None:
    """The worker's letter is replayable in kind, but not once its job is gone."""
    sealed = await _parse_request_letter(gateway, secrets.token_hex(16), "alice")
    entry = await _listed(gateway, sealed.jti)
    assert (entry["queue"], entry["verified"], entry["replayable"]) == (
        "parser.requests",
        True,
        False,
    )
    assert "no longer exists" in entry["refusal"]
    response = await gateway.client.post(
        f"/api/dlq/{entry['id']}/replay", headers=gateway.auth("root")
    )
    await error_body(response, 409, "not_replayable")
    assert (await _listed(gateway, sealed.jti))["reason"] == "retries_exhausted"


async def test_a_parse_request_in_another_users_name_is_not_replayed(gateway: Gateway) -> None:
    """A worker letter whose subject is not the job's owner gets no request for the worker."""
    body = await _record_job(gateway, owner="alice")
    sealed = await _parse_request_letter(gateway, body.job_id, "mallory")
    entry = await _listed(gateway, sealed.jti)
    assert entry["replayable"] is False
    assert "not for job" in entry["refusal"]
    response = await gateway.client.post(
        f"/api/dlq/{entry['id']}/replay", headers=gateway.auth("root")
    )
    await error_body(response, 409, "not_replayable")


async def test_an_expired_parse_request_replayed_by_an_admin_is_resealed_by_the_worker(
    gateway: Gateway, broker_settings: BrokerSettings
) -> None:
    """Issue 11.2: the worker's request expires in the queue (no parser, 5 s envelopes); the
    listing shows it replayable; the replay asks the worker, which re-seals it; the job ends."""
    runtime = gateway.app[RUNTIME_KEY]
    assert runtime.consume_channel is not None
    short = broker_settings.model_copy(update={"envelope_lifetime": 5})
    worker = await start_daemon(
        lambda stop: serve_worker(short, WorkerSettings(health_port=0, stuck_after=600), stop=stop),
        runtime.consume_channel,
        runtime.topology.queue("worker.jobs"),
    )
    try:
        body = await _record_job(gateway)
        await gateway.app[PUBLISHER_KEY].send(
            body, aud="worker", sub="alice", job=body.job_id, act={"sub": "gateway"}
        )
        job_id = body.job_id
        async with asyncio.timeout(30):
            while True:
                letters = (
                    await (
                        await gateway.client.get("/api/dlq", headers=gateway.auth("root"))
                    ).json()
                )["messages"]
                mine = [m for m in letters if m["job"] == job_id and m["type"] == "parse.requested"]
                if mine:
                    break
                await asyncio.sleep(0.1)
        [entry] = mine
        assert (entry["reason"], entry["iss"], entry["verified"]) == ("expired", "worker", True)
        assert entry["replayable"] is True
        parser = await start_daemon(
            lambda stop: serve_parser(
                broker_settings, ParserSettings(health_port=0, timeout_seconds=15), stop=stop
            ),
            runtime.consume_channel,
            runtime.topology.queue("parser.requests"),
        )
        try:
            response = await gateway.client.post(
                f"/api/dlq/{entry['id']}/replay", headers=gateway.auth("root")
            )
            assert response.status == 202, await response.text()
            accepted = await response.json()
            assert (accepted["queue"], accepted["type"]) == ("parser.requests", "job.submitted")
            assert await _wait_state(gateway, job_id) == "done"
        finally:
            await parser.close()
    finally:
        await worker.close()


async def test_a_job_submitted_for_a_job_that_is_gone_is_409_and_stays(gateway: Gateway) -> None:
    body = await _record_job(gateway)
    await gateway.store.delete(body.job_id)
    sealer = Sealer(KeyRing.load(gateway.settings.keys_dir, "gateway").signing_key())
    sealed = sealer.seal(body, typ="job.submitted", aud="worker", sub="alice", job=body.job_id)
    publisher = gateway.app[PUBLISHER_KEY]
    message = publisher.message_for(sealed)
    message.headers[REJECT_REASON_HEADER] = "retries_exhausted"
    message.expiration = None
    await publisher.publish_raw(
        message, routing_key=gateway.app[RUNTIME_KEY].topology.queue("worker.jobs.dlq")
    )
    entry = await _listed(gateway, sealed.jti)
    assert entry["replayable"] is False  # the listing makes every check the replay makes
    assert "no longer exists" in entry["refusal"]
    response = await gateway.client.post(
        f"/api/dlq/{entry['id']}/replay", headers=gateway.auth("root")
    )
    detail = (await error_body(response, 409, "not_replayable"))["detail"]
    assert "no longer exists" in detail
    await _listed(gateway, sealed.jti)
    assert await gateway.store.get(body.job_id) is None  # not resurrected


async def test_a_copy_refused_as_a_replay_is_listed_as_not_replayable_and_says_why(
    gateway: Gateway, pipeline: None
) -> None:
    """Issue 11.13: the listing marked such forgeries replayable though a replay refused them."""
    body = await _record_job(gateway)
    sealer = Sealer(KeyRing.load(gateway.settings.keys_dir, "gateway").signing_key())
    sealed = sealer.seal(body, aud="worker", sub="alice", job=body.job_id)
    await _into_worker_queue(gateway, sealed)
    assert await _wait_state(gateway, body.job_id) == "done"
    await _into_worker_queue(gateway, sealed)  # a byte-for-byte copy of the handled message
    entry = await _listed(gateway, sealed.jti)
    assert (entry["reason"], entry["verified"], entry["replayable"]) == ("replay", True, False)
    assert "copy" in entry["refusal"]
    response = await gateway.client.post(
        f"/api/dlq/{entry['id']}/replay", headers=gateway.auth("root")
    )
    await error_body(response, 409, "not_replayable")
