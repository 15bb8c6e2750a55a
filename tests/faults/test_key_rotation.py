"""Rotating the gateway's and the worker's signing keys while jobs flow (``sealflow keys rotate``).

Steps, as an operator runs them: publish a next key (``--step next``), wait until every
receiver trusts it, switch signing to it (``--step promote --grace``), and let the old key
lapse at its ``not_after``. What must hold: no valid message is refused on the way (no dead
letter, no rejection in the audit log), and once the old key has lapsed a message signed with
it is refused with a reason that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_processes import PIPELINE_DAEMONS, REPO, Daemons
from faults_testing import (
    JobLedger,
    drain,
    text_document,
    wait_audit,
    wait_queue_depth,
)
from gateway_testing import Gateway

from broker import REJECT_REASON_HEADER, BrokerSettings, Sealer
from gateway import RUNTIME_KEY
from keys import KeyRing, SigningKey
from keys.keyfile import read_private_key
from schemas import JobSubmitted

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(240)]

LIFETIME = 15
"""Short, so the old key lapses soon; long enough that nothing expires in a queue on a busy
two-core machine (with 5 s, job events waiting for this process's loop did)."""
LEEWAY = 2
GRACE = LIFETIME + LEEWAY
"""How long the old key stays accepted: until everything it signed has expired."""
ROTATED = ("gateway", "worker")


@pytest.fixture
def broker_settings(broker_settings: BrokerSettings) -> BrokerSettings:
    return broker_settings.model_copy(update={"envelope_lifetime": LIFETIME, "leeway": LEEWAY})


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "SEALFLOW_ENVELOPE_LIFETIME": str(LIFETIME), "SEALFLOW_LEEWAY": str(LEEWAY)}


def _rotate(env: dict[str, str], keys_dir: Path, service: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "sealflow", "keys", "rotate", service, *args],
        env={**env, "SEALFLOW_KEYS_DIR": str(keys_dir)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def _until(condition: Callable[[], bool], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_rotating_gateway_and_worker_keys_under_load_refuses_nothing_valid(
    daemons: Daemons,
    gateway: Gateway,
    bus: JobLedger,
    data_dir: Path,
    keys_dir: Path,
    env: dict[str, str],
) -> None:
    daemons.start(*PIPELINE_DAEMONS)
    runtime = gateway.app[RUNTIME_KEY]
    old = {service: KeyRing.load(keys_dir, service).signing_key() for service in ROTATED}
    uploaded: list[str] = []
    flowing = asyncio.Event()

    async def load() -> None:
        index = 0
        while not flowing.is_set():
            response = await gateway.upload(
                [(f"r-{index}.txt", "text/plain", text_document(index))]
            )
            assert response.status == 202, await response.text()
            uploaded.append((await response.json())["jobs"][0]["job_id"])
            index += 1
            await asyncio.sleep(0.1)

    traffic = asyncio.create_task(load())
    try:
        # 1. Publish the next keys; wait until every receiver trusts them.
        marks = {name: daemons[name].mark() for name in PIPELINE_DAEMONS}
        await asyncio.gather(
            *(asyncio.to_thread(_rotate, env, keys_dir, s, "--step", "next") for s in ROTATED)
        )
        new = {
            service: next(r for r in KeyRing.load(keys_dir, service).records if r.state == "next")
            for service in ROTATED
        }
        for name in PIPELINE_DAEMONS:
            await asyncio.to_thread(
                daemons[name].wait_for, "trust_store_reloaded", since=marks[name], timeout=30
            )
        await _until(lambda: all(runtime.trust.lookup(r.kid) is not None for r in new.values()))

        # 2. Switch signing; the running signers pick the promoted key up by themselves.
        mark = daemons["worker"].mark()
        for service in ROTATED:
            _rotate(env, keys_dir, service, "--step", "promote", "--grace", str(GRACE))
        await _until(lambda: runtime.sealer.kid == new["gateway"].kid)
        switched = await asyncio.to_thread(
            daemons["worker"].wait_for, "keys.signing_key_switched", since=mark, timeout=30
        )
        assert switched.fields["kid"] == new["worker"].kid
        # Jobs now flow under the new keys, while old envelopes are still in the queues.
        before_switch = len(uploaded)
        await _until(lambda: len(uploaded) >= before_switch + 10)

        # 3. The old keys lapse at their not_after.
        await _until(
            lambda: all(runtime.trust.lookup(key.kid) is None for key in old.values()),
            timeout=GRACE + 30,
        )
        after_lapse = len(uploaded)
        await _until(lambda: len(uploaded) >= after_lapse + 5)
    finally:
        flowing.set()
        with contextlib.suppress(asyncio.CancelledError):
            await traffic

    states = await bus.wait_final(uploaded, timeout=120)
    assert Counter(states.values()) == {"done": len(uploaded)}
    print(f"{len(uploaded)} jobs through two rotations, none refused")

    # Zero valid messages refused: no dead letter anywhere, no rejection audited.
    channel, topology = bus.publisher.channel, bus.publisher.topology
    for queue in ("worker.jobs", "parser.requests", "gateway.events", "audit.events"):
        letters = await drain(channel, topology.queue(f"{queue}.dlq"))
        reasons = [
            (m.type, m.headers.get(REJECT_REASON_HEADER), m.headers.get("x-sealflow-reject-detail"))
            for m in letters
        ]
        assert reasons == [], queue
    records = await wait_audit(
        data_dir, lambda rs: sum(r.event.type == "job.completed" for r in rs) >= len(uploaded)
    )
    refused = [r.event for r in records if r.event.outcome in {"rejected", "failure"}]
    assert refused == []
    signers = Counter(
        (r.event.source, r.event.type) for r in records if r.event.type == "job.completed"
    )
    assert signers == {("worker", "job.completed"): len(uploaded)}

    # After retirement: an envelope signed with the gateway's old key is refused, and says why.
    stale = Sealer(
        SigningKey(
            service="gateway",
            kid=old["gateway"].kid,
            alg=old["gateway"].alg,
            private_key=read_private_key(
                keys_dir / "gateway" / f"{old['gateway'].kid}.pem",
                alg=old["gateway"].alg,
                kid=old["gateway"].kid,
            ),
        ),
        lifetime=LIFETIME,
    )
    message: JobSubmitted = await bus.prepare(text_document(999))
    sealed = stale.seal(message, typ="job.submitted", aud="worker", sub="alice", job=message.job_id)
    await bus.publisher.publish(sealed)
    dlq = topology.queue("worker.jobs.dlq")
    await wait_queue_depth(channel, dlq, 1)
    letter = await (await channel.get_queue(dlq, ensure=False)).get(no_ack=True)
    assert letter.message_id == sealed.jti
    assert letter.headers[REJECT_REASON_HEADER] == "key_retired"
    assert "was retired" in str(letter.headers["x-sealflow-reject-detail"])
    rejected = await wait_audit(
        data_dir, lambda rs: any(r.event.reason == "key_retired" for r in rs)
    )
    [record] = [r for r in rejected if r.event.reason == "key_retired"]
    assert (record.event.source, record.event.type) == ("worker", "envelope.rejected")
    assert await bus.states([message.job_id]) == {message.job_id: "queued"}
