"""The pipeline on a real RabbitMQ: worker, parser and audit daemons, jobs from submission to result."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from documents_testing import DOCUMENTS
from pipeline_testing import in_process_daemons
from store_testing import BACKENDS, reset_postgres

from audit import AuditLog, iter_records, verify_log
from broker import (
    ENVELOPE_HEADER,
    REJECT_REASON_HEADER,
    BrokerSettings,
    Publisher,
    Sealer,
    Topology,
    connect,
    open_channel,
)
from keys import KeyRing, SigningKey, TrustStore
from schemas import JobSubmitted, ParseRequested
from store import JobStore, NewJob, open_store

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(180)]


@dataclass
class Pipeline:
    settings: BrokerSettings
    store: JobStore
    publisher: Publisher
    channel: Any
    topology: Topology
    keys_dir: Path

    async def submit(
        self, filename: str, content_type: str, data: bytes, owner: str = "alice"
    ) -> str:
        sha = hashlib.sha256(data).hexdigest()
        job_id, trace = secrets.token_hex(16), secrets.token_hex(16)
        # With the blob, as the gateway stores it: rows in PostgreSQL, files when embedded.
        await self.store.create_with_blob(
            NewJob(
                job_id=job_id,
                owner=owner,
                filename=filename,
                content_type=content_type,
                size=len(data),
                blob_sha256=sha,
                trace=trace,
            ),
            data,
        )
        message = JobSubmitted(
            job_id=job_id,
            owner=owner,
            filename=filename,
            content_type=content_type,
            size=len(data),
            blob_sha256=sha,
            submitted_at=datetime.now(UTC),
        )
        await self.publisher.send(
            message,
            typ="job.submitted",
            aud="worker",
            sub=owner,
            job=job_id,
            act={"sub": "gateway"},
            trace=trace,
        )
        return job_id

    async def wait_final(self, job_id: str, timeout: float = 60) -> str:
        async with asyncio.timeout(timeout):
            while True:
                job = await self.store.get(job_id)
                if job is not None and job.state in {"done", "failed"}:
                    return job.state
                await asyncio.sleep(0.05)

    async def dead_letters(
        self, queue: str, expected: int, timeout: float = 30
    ) -> list[aio_pika.abc.AbstractIncomingMessage]:
        dlq = await self.channel.get_queue(self.topology.queue(f"{queue}.dlq"), ensure=False)
        found: list[Any] = []
        async with asyncio.timeout(timeout):
            while len(found) < expected:
                message = await dlq.get(fail=False, no_ack=True)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                found.append(message)
        return found

    async def audit_records(self, predicate: Any, timeout: float = 30) -> list[Any]:
        directory = self.settings.data_dir / "audit"
        async with asyncio.timeout(timeout):
            while True:
                if directory.exists():
                    matches = [r for r in iter_records(directory) if predicate(r)]
                    if matches:
                        return matches
                await asyncio.sleep(0.05)


@pytest.fixture
async def pipeline(
    request: pytest.FixtureRequest,
    broker_settings: BrokerSettings,
    keys_dir: Path,
    cleanup_namespace: None,
) -> AsyncIterator[Pipeline]:
    """The three daemons in this process, on the embedded store or on PostgreSQL when
    parametrized "postgresql", and a connection that publishes as the gateway."""
    settings = broker_settings
    if getattr(request, "param", "sqlite") == "postgresql":
        database_url = request.getfixturevalue("postgres_url")
        reset_postgres(database_url)
        settings = settings.model_copy(update={"database_url": database_url})
    store = await open_store(settings.database_url, settings.data_dir)
    connection = await connect(settings.amqp_url)
    try:
        channel = await open_channel(connection)
        topology = Topology(settings.namespace)
        sealer = Sealer(KeyRing.load(keys_dir, "gateway").signing_key())
        async with in_process_daemons(settings, channel, checkpoint_every=5):
            yield Pipeline(
                settings,
                store,
                Publisher(channel, topology, sealer),
                channel,
                topology,
                keys_dir,
            )
    finally:
        await connection.close()
        await store.close()


@pytest.mark.parametrize("pipeline", BACKENDS, indirect=True)
async def test_a_job_of_each_format_reaches_done_with_result_and_audit_trail(
    pipeline: Pipeline,
) -> None:
    job_ids = {
        name: await pipeline.submit(name, ctype, data) for name, (ctype, data) in DOCUMENTS.items()
    }
    states = {name: await pipeline.wait_final(job_id) for name, job_id in job_ids.items()}
    assert states == dict.fromkeys(DOCUMENTS, "done")
    for name, job_id in job_ids.items():
        result = await pipeline.store.get_result(job_id)
        assert result is not None
        assert "words about" in result.text, (name, result.text)
        assert "evil()" not in result.text
    hits = await pipeline.store.search("alice", "lighthouses")
    assert [hit.job_id for hit in hits] == [job_ids["readme.md"]]

    pdf_job = job_ids["doc.pdf"]
    trail = await pipeline.audit_records(
        lambda r: r.event.job == pdf_job and r.event.type == "job.completed"
    )
    assert trail
    types = [
        r.event.type
        for r in iter_records(pipeline.settings.data_dir / "audit")
        if r.event.job == pdf_job
    ]
    assert types == ["job.started", "document.parsed", "job.completed"]


async def test_forged_message_in_worker_queue_is_dead_lettered_audited_and_not_handled(
    pipeline: Pipeline,
) -> None:
    """Signed by a key nobody trusts, published straight into worker.jobs."""
    rogue = SigningKey(
        service="gateway",
        kid="rogue-kid",
        alg="ES256",
        private_key=ec.generate_private_key(ec.SECP256R1()),
    )
    forged = Sealer(rogue).seal(
        JobSubmitted(
            job_id="e" * 32,
            owner="mallory",
            filename="x.txt",
            content_type="text/plain",
            size=1,
            blob_sha256="0" * 64,
            submitted_at=datetime.now(UTC),
        ),
        typ="job.submitted",
        aud="worker",
        sub="mallory",
        job="e" * 32,
    )
    await pipeline.publisher.publish_raw(
        pipeline.publisher.message_for(forged), routing_key=pipeline.topology.queue("worker.jobs")
    )
    [dead] = await pipeline.dead_letters("worker.jobs", 1)
    assert dead.headers[REJECT_REASON_HEADER] == "unknown_kid"
    assert dead.message_id == forged.jti
    records = await pipeline.audit_records(
        lambda r: r.event.type == "envelope.rejected" and r.event.reason == "unknown_kid"
    )
    assert records[0].event.source == "worker"
    assert records[0].event.jti is None  # never trust an unverified jti
    assert await pipeline.store.get("e" * 32) is None


async def test_tampered_message_in_parser_queue_is_dead_lettered_and_audited(
    pipeline: Pipeline,
) -> None:
    worker_sealer = Sealer(KeyRing.load(pipeline.keys_dir, "worker").signing_key())
    request = ParseRequested(
        job_id="d" * 32,
        blob_sha256="1" * 64,
        filename="a.txt",
        content_type="text/plain",
        size=3,
        requested_at=datetime.now(UTC),
    )
    sealed = worker_sealer.seal(
        request, typ="parse.requested", aud="parser", sub="alice", job="d" * 32
    )
    message = pipeline.publisher.message_for(sealed)
    message.body = sealed.body.replace(b"a.txt", b"b.txt")
    await pipeline.publisher.publish_raw(
        message, routing_key=pipeline.topology.queue("parser.requests")
    )
    [dead] = await pipeline.dead_letters("parser.requests", 1)
    assert dead.headers[REJECT_REASON_HEADER] == "digest_mismatch"
    records = await pipeline.audit_records(
        lambda r: r.event.type == "envelope.rejected" and r.event.source == "parser"
    )
    assert records[0].event.reason == "digest_mismatch"
    assert records[0].event.jti == sealed.jti  # the signature held, so the jti is the signer's


async def test_forged_audit_event_is_rejected_and_recorded_by_the_audit_service(
    pipeline: Pipeline,
) -> None:
    from broker import make_audit_event

    event = make_audit_event(
        source="gateway", type="job.submitted", action="submit", outcome="success", actor="mallory"
    )
    forged = Sealer(KeyRing.load(pipeline.keys_dir, "worker").signing_key()).seal(
        event, typ="audit.job.submitted", aud="audit", sub="mallory", scope="audit:write"
    )
    message = pipeline.publisher.message_for(forged)
    message.headers[ENVELOPE_HEADER] = forged.token[:-4] + (
        "AAAA" if not forged.token.endswith("AAAA") else "BBBB"
    )
    await pipeline.publisher.publish_raw(
        message, routing_key=pipeline.topology.queue("audit.events")
    )
    records = await pipeline.audit_records(
        lambda r: r.event.type == "envelope.rejected" and r.event.source == "audit"
    )
    assert records[0].event.reason in {"bad_signature", "malformed_header"}
    assert not [
        r
        for r in iter_records(pipeline.settings.data_dir / "audit")
        if r.event.event_id == event.event_id
    ]


async def test_poison_document_ends_failed_with_a_reason(pipeline: Pipeline) -> None:
    job_id = await pipeline.submit(
        "broken.pdf", "application/pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ntrailer garbage"
    )
    assert await pipeline.wait_final(job_id) == "failed"
    job = await pipeline.store.get(job_id)
    assert job is not None
    assert job.error_reason == "malformed"
    assert await pipeline.store.get_result(job_id) is None
    unsupported = await pipeline.submit(
        "image.pdf", "application/pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    )
    assert await pipeline.wait_final(unsupported) == "failed"


@pytest.mark.parametrize("pipeline", BACKENDS, indirect=True)
async def test_resubmitted_job_message_does_not_duplicate_work(pipeline: Pipeline) -> None:
    """The same job.submitted arriving twice (a fresh envelope, as a re-publish would make)."""
    job_id = await pipeline.submit("notes.txt", "text/plain", b"once only\n")
    assert await pipeline.wait_final(job_id) == "done"
    job = await pipeline.store.get(job_id)
    assert job is not None
    again = JobSubmitted(
        job_id=job_id,
        owner="alice",
        filename="notes.txt",
        content_type="text/plain",
        size=job.size,
        blob_sha256=job.blob_sha256,
        submitted_at=datetime.now(UTC),
    )
    await pipeline.publisher.send(
        again, typ="job.submitted", aud="worker", sub="alice", job=job_id, act={"sub": "gateway"}
    )
    # Wait on an event, not a clock: a sentinel job submitted after the duplicate has gone the
    # whole way round (worker → parser → worker) by the time it is done.
    sentinel = await pipeline.submit("sentinel.txt", "text/plain", b"after the duplicate\n")
    assert await pipeline.wait_final(sentinel) == "done"
    gateway_events = await pipeline.channel.get_queue(
        pipeline.topology.queue("gateway.events"), ensure=False
    )
    completed = []
    while (message := await gateway_events.get(fail=False, no_ack=True)) is not None:
        if message.type == "job.completed" and json.loads(message.body)["job_id"] == job_id:
            completed.append(message)
    assert len(completed) == 1
    assert (
        len(
            [
                r
                for r in iter_records(pipeline.settings.data_dir / "audit")
                if r.event.job == job_id and r.event.type == "job.completed"
            ]
        )
        == 1
    )


async def test_audit_log_written_by_the_daemon_verifies(pipeline: Pipeline) -> None:
    job_id = await pipeline.submit("notes.txt", "text/plain", b"verify me\n")
    assert await pipeline.wait_final(job_id) == "done"
    await pipeline.audit_records(
        lambda r: r.event.job == job_id and r.event.type == "job.completed"
    )
    report = verify_log(
        pipeline.settings.data_dir / "audit", TrustStore.from_rings(pipeline.keys_dir)
    )
    assert report.ok, report
    assert isinstance(AuditLog, type)


async def test_audit_event_claiming_another_source_is_dead_lettered_and_recorded(
    pipeline: Pipeline,
) -> None:
    """The worker's genuine key, but an event that says the gateway emitted it."""
    from broker import make_audit_event

    event = make_audit_event(
        source="gateway", type="job.submitted", action="submit", outcome="success", actor="mallory"
    )
    spoofed = Sealer(KeyRing.load(pipeline.keys_dir, "worker").signing_key()).seal(
        event, typ="audit.job.submitted", aud="audit", sub="mallory"
    )
    await pipeline.publisher.publish(spoofed)
    [dead] = await pipeline.dead_letters("audit.events", 1)
    assert dead.headers[REJECT_REASON_HEADER] == "source_mismatch"
    records = await pipeline.audit_records(
        lambda r: r.event.type == "message.dead_lettered" and r.event.reason == "source_mismatch"
    )
    assert records[0].event.jti == spoofed.jti
    ids = [r.event.event_id for r in iter_records(pipeline.settings.data_dir / "audit")]
    assert event.event_id not in ids


async def test_revoked_user_is_refused_by_every_daemon_and_it_is_audited(
    pipeline: Pipeline,
) -> None:
    """A revocation of a subject on sealflow.control; mallory's next job is rejected, alice's is not."""
    from broker import publish_control
    from schemas import Revocation

    identity = Publisher(
        pipeline.channel,
        pipeline.topology,
        Sealer(KeyRing.load(pipeline.keys_dir, "identity").signing_key()),
    )
    revocation = Revocation(
        revocation_id=secrets.token_hex(16),
        kind="sub",
        value="mallory",
        reason="account compromised",
        issued_at=datetime.now(UTC),
    )
    sent = await publish_control(identity, revocation, typ="control.revocation", sub="admin")
    assert sorted(s.aud for s in sent) == ["audit", "gateway", "parser", "worker"]
    for service in ("worker", "parser", "audit"):
        await pipeline.audit_records(
            lambda r, s=service: r.event.type == "revocation.applied" and r.event.source == s
        )

    refused = await pipeline.submit("m.txt", "text/plain", b"from mallory\n", owner="mallory")
    [dead] = await pipeline.dead_letters("worker.jobs", 1)
    assert dead.headers[REJECT_REASON_HEADER] == "revoked"
    records = await pipeline.audit_records(
        lambda r: r.event.type == "envelope.rejected" and r.event.reason == "revoked"
    )
    assert records[0].event.subject == "mallory"
    job = await pipeline.store.get(refused)
    assert job is not None
    assert job.state == "queued"

    allowed = await pipeline.submit("a.txt", "text/plain", b"from alice\n", owner="alice")
    assert await pipeline.wait_final(allowed) == "done"


async def test_control_message_from_a_service_the_policy_does_not_allow_is_rejected(
    pipeline: Pipeline,
) -> None:
    from broker import AUDIENCE_HEADER
    from schemas import Revocation

    revocation = Revocation(
        revocation_id=secrets.token_hex(16),
        kind="sub",
        value="alice",
        reason="a parser trying to lock alice out",
        issued_at=datetime.now(UTC),
    )
    sealer = Sealer(KeyRing.load(pipeline.keys_dir, "parser").signing_key())
    sealed = sealer.seal(
        revocation, typ="control.revocation", aud="worker", sub="admin", scope="control:write"
    )
    amqp = pipeline.publisher.message_for(sealed)
    amqp.headers[AUDIENCE_HEADER] = "worker"
    await pipeline.publisher.publish_raw(
        amqp, routing_key="control.revocation", exchange=pipeline.topology.exchange("control")
    )
    records = await pipeline.audit_records(
        lambda r: r.event.type == "control.rejected" and r.event.source == "worker"
    )
    assert records[0].event.reason == "policy_denied"
    job = await pipeline.submit("a.txt", "text/plain", b"alice still works\n", owner="alice")
    assert await pipeline.wait_final(job) == "done"
