"""A rotated key reaches another host over ``sealflow.control``: only root-signed, newer bundles."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker import (
    BrokerSettings,
    ControlSubscriber,
    Opener,
    RevocationList,
    SpentIds,
    Topology,
    broadcast_bundle,
    connect,
    open_channel,
)
from keys import (
    KeyRing,
    TrustBundle,
    TrustStore,
    TrustStoreFile,
    create_root_key,
    generate_private_key,
    issue_trust_bundle,
    load_root_signer,
    thumbprint,
)
from keys.export import export_host
from keys.records import VerificationKey
from keys.trustfile import read_trust_file
from schemas import AuditEvent
from sealflow.cli import cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class _Audit:
    """Records the subscriber's audit events; a test waits for the next one of a type."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self._changed = asyncio.Condition()

    async def emit(self, event: AuditEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def wait_for(self, type_: str, count: int = 1) -> AuditEvent:
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(
                    lambda: len([e for e in self.events if e.type == type_]) >= count
                ),
                10,
            )
        return [event for event in self.events if event.type == type_][count - 1]


async def test_a_rotation_reaches_another_host_and_old_or_forged_bundles_do_not(
    amqp_url: str, namespace: str, keys_dir: Path, tmp_path: Path, cleanup_namespace: None
) -> None:
    """Host B (worker only) takes the gateway's next key from the bundle sent on the control
    exchange; a replayed older bundle and one signed by another root are refused and audited."""
    host = tmp_path / "host-b"
    export_host(keys_dir, ["worker"], host)
    connection = await connect(amqp_url)
    channel = await open_channel(connection, prefetch=8)
    topology = Topology(namespace)
    await topology.declare(channel)
    trust = TrustStoreFile(host / "trust.json", min_interval=3_600)
    audit = _Audit()
    subscriber = ControlSubscriber(
        channel=channel,
        topology=topology,
        opener=Opener("worker", trust, spent=SpentIds(100)),
        revocations=RevocationList(),
        trust=trust,
        audit=audit,
    )
    await subscriber.start()
    settings = BrokerSettings(amqp_url=amqp_url, namespace=namespace)
    try:
        old = read_trust_file(keys_dir / "trust.json")[0]
        ring = KeyRing.load(keys_dir, "gateway")
        relay = ring.signing_key()
        kid = ring.add_next().kid
        bundle, issued = issue_trust_bundle(keys_dir)
        assert issued
        assert trust.lookup(kid) is None

        assert await broadcast_bundle(settings, relay, bundle, service="gateway") == 5
        await audit.wait_for("trust.bundle_applied")
        assert trust.lookup(kid) is not None
        assert read_trust_file(host / "trust.json")[0].version == bundle.version, "saved"

        await broadcast_bundle(settings, relay, old, service="gateway")
        replayed = await audit.wait_for("trust.bundle_stale")
        assert replayed.reason == "bundle_rollback"

        rogue_dir = tmp_path / "rogue"
        rogue_dir.mkdir()
        rogue_root = create_root_key(rogue_dir)
        rogue_key = generate_private_key("ES256").public_key()
        forged_store = TrustStore(
            [
                *bundle.store.verification_keys(),
                VerificationKey(
                    service="gateway",
                    kid=thumbprint(rogue_key),
                    alg="ES256",
                    key=rogue_key,
                    state="active",
                    not_after=None,
                ),
            ]
        )
        forged = TrustBundle.sign(
            load_root_signer(rogue_dir / "root.pem", rogue_root),
            forged_store,
            version=bundle.version + 1000,
        )
        await broadcast_bundle(settings, relay, forged, service="gateway")
        rejected = await audit.wait_for("trust.bundle_rejected")
        assert rejected.reason == "untrusted_bundle"
        assert trust.lookup(thumbprint(rogue_key)) is None
        assert trust.bundle.version == bundle.version
    finally:
        await subscriber.stop()
        await connection.close()


async def test_sealflow_keys_rotate_reaches_a_host_that_holds_only_its_own_ring(
    amqp_url: str,
    namespace: str,
    keys_dir: Path,
    tmp_path: Path,
    cleanup_namespace: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The operator's command, as run on host A (gateway), reaches host B (worker) by itself."""
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    export_host(keys_dir, ["gateway"], host_a)
    export_host(keys_dir, ["worker"], host_b)
    connection = await connect(amqp_url)
    channel = await open_channel(connection, prefetch=8)
    topology = Topology(namespace)
    await topology.declare(channel)
    trust = TrustStoreFile(host_b / "trust.json", min_interval=3_600)
    audit = _Audit()
    subscriber = ControlSubscriber(
        channel=channel,
        topology=topology,
        opener=Opener("worker", trust, spent=SpentIds(100)),
        revocations=RevocationList(),
        trust=trust,
        audit=audit,
    )
    await subscriber.start()
    monkeypatch.setenv("SEALFLOW_AMQP_URL", amqp_url)
    monkeypatch.setenv("SEALFLOW_NAMESPACE", namespace)
    args = ["keys", "rotate", "gateway", "--keys-dir", str(host_a)]
    try:
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, [*args, "--root-key", str(keys_dir / "root.pem")]
        )
        assert result.exit_code == 0, result.output
        assert "over sealflow.control (5 copies)" in result.output
        await audit.wait_for("trust.bundle_applied")
        (upcoming,) = [r for r in KeyRing.load(host_a, "gateway").records if r.state == "next"]
        assert trust.lookup(upcoming.kid) is not None
        assert not (host_b / "gateway").exists(), "nothing of the gateway's was copied to B"
    finally:
        await subscriber.stop()
        await connection.close()
