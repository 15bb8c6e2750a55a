"""Trust bundles: only the pinned root's signature counts, and only a newer bundle replaces one."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from keys import (
    KeyRing,
    TrustBundle,
    TrustStoreError,
    TrustStoreFile,
    create_root_key,
    issue_trust_bundle,
    load_root_public,
    load_root_signer,
    load_trust_store,
)
from keys.trustfile import read_trust_file

SERVICES = ("gateway", "worker")


def _issue_rotation(keys_dir: Path, service: str = "gateway") -> tuple[TrustBundle, str]:
    """Publish a next key for ``service`` and sign it into a new bundle; (bundle, new kid)."""
    kid = KeyRing.load(keys_dir, service).add_next().kid
    bundle, issued = issue_trust_bundle(keys_dir, SERVICES)
    assert issued
    return bundle, kid


def test_a_newer_bundle_is_taken_and_saved(rings_dir: Path) -> None:
    """A bundle from the control exchange replaces the held one and survives a restart."""
    watcher = TrustStoreFile(rings_dir / "trust.json", min_interval=3_600)
    held = read_trust_file(rings_dir / "trust.json")[0]
    other_host = rings_dir.parent / "other"
    other_host.mkdir()
    for name in ("root.jwk", "trust.json"):
        (other_host / name).write_bytes((rings_dir / name).read_bytes())
    receiver = TrustStoreFile(other_host / "trust.json", min_interval=3_600)
    bundle, kid = _issue_rotation(rings_dir)
    assert bundle.version > held.version
    assert receiver.lookup(kid) is None
    assert receiver.accept(bundle.token) is True
    assert receiver.lookup(kid) is not None
    assert read_trust_file(other_host / "trust.json")[0].version == bundle.version
    assert receiver.accept(bundle.token) is False, "the bundle already held is a no-op"
    assert watcher.refresh(force=True) is True, "the issuing host's daemons read the file"


def test_a_replayed_older_bundle_is_refused(rings_dir: Path) -> None:
    """Rollback: an old bundle, still validly signed, must not bring back a retired key."""
    old = read_trust_file(rings_dir / "trust.json")[0]
    ring = KeyRing.load(rings_dir, "gateway")
    retired = ring.signing_key().kid
    ring.add_next()
    ring.promote_next(grace_seconds=0)
    new, issued = issue_trust_bundle(rings_dir, SERVICES)
    assert issued
    watcher = TrustStoreFile(rings_dir / "trust.json", min_interval=0)
    assert watcher.lookup(retired) is None
    with capture_logs() as logs, pytest.raises(TrustStoreError) as caught:
        watcher.accept(old.token)
    assert caught.value.reason == "bundle_rollback"
    assert watcher.lookup(retired) is None
    assert watcher.bundle.version == new.version
    assert read_trust_file(rings_dir / "trust.json")[0].version == new.version, "file kept"
    assert logs[0]["event"] == "trust_bundle_refused"
    # The same replay through the file (someone writes the old bundle back) is refused too.
    (rings_dir / "trust.json").write_text(old.token + "\n")
    assert watcher.refresh(force=True) is False
    assert watcher.lookup(retired) is None


def test_a_bundle_signed_by_another_key_is_refused(rings_dir: Path, tmp_path: Path) -> None:
    """A bundle under another root (or a service key) is not trusted, however new it claims."""
    watcher = TrustStoreFile(rings_dir / "trust.json", min_interval=0)
    rogue_dir = tmp_path / "rogue"
    rogue_dir.mkdir()
    rogue = create_root_key(rogue_dir)
    signer = load_root_signer(rogue_dir / "root.pem", rogue)
    forged = TrustBundle.sign(signer, watcher.bundle.store, version=2**52)
    with pytest.raises(TrustStoreError) as caught:
        watcher.accept(forged.token)
    assert caught.value.reason == "untrusted_bundle"
    service_key = KeyRing.load(rings_dir, "gateway").signing_key()
    with pytest.raises(TrustStoreError) as caught:
        watcher.accept(TrustBundle.sign(service_key, watcher.bundle.store, version=2**52).token)
    assert caught.value.reason == "untrusted_bundle"
    assert watcher.bundle.version < 2**52


def test_a_tampered_bundle_is_refused(rings_dir: Path) -> None:
    """Changing one key in a signed bundle breaks the root's signature."""
    watcher = TrustStoreFile(rings_dir / "trust.json", min_interval=0)
    bundle, _ = _issue_rotation(rings_dir)
    header, payload, signature = bundle.token.split(".")
    document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    document["bundle_version"] += 1
    changed = base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
    with pytest.raises(TrustStoreError) as caught:
        watcher.accept(f"{header}.{changed}.{signature}")
    assert caught.value.reason == "untrusted_bundle"


def test_the_same_version_with_other_keys_is_refused(rings_dir: Path) -> None:
    """Two bundles claiming one version: the first one seen stays (no silent equivocation)."""
    watcher = TrustStoreFile(rings_dir / "trust.json", min_interval=0)
    root = load_root_public(rings_dir / "root.jwk")
    signer = load_root_signer(rings_dir / "root.pem", root)
    other = TrustBundle.sign(signer, load_trust_store(rings_dir / "trust.json"), version=1)
    twin = TrustBundle.sign(signer, other.store, version=watcher.bundle.version)
    with pytest.raises(TrustStoreError) as caught:
        watcher.accept(twin.token)
    assert caught.value.reason == "bundle_conflict"


def test_a_host_with_one_ring_keeps_the_other_services_keys(
    rings_dir: Path, tmp_path: Path
) -> None:
    """Rotating on a host that holds only its own ring folds it into the bundle it holds."""
    host = tmp_path / "host-a"
    host.mkdir()
    (host / "gateway").mkdir()
    for path in (rings_dir / "gateway").iterdir():
        if path.name != ".lock":
            (host / "gateway" / path.name).write_bytes(path.read_bytes())
            (host / "gateway" / path.name).chmod(path.stat().st_mode & 0o777)
    for name in ("root.jwk", "trust.json"):
        (host / name).write_bytes((rings_dir / name).read_bytes())
    worker_kid = KeyRing.load(rings_dir, "worker").signing_key().kid
    new_kid = KeyRing.load(host, "gateway").add_next().kid
    with pytest.raises(TrustStoreError) as caught:
        issue_trust_bundle(host, SERVICES)
    assert caught.value.reason == "root_key_missing", "the root key is not on the host"
    bundle, issued = issue_trust_bundle(host, SERVICES, root_key=rings_dir / "root.pem")
    assert issued
    assert bundle.store.lookup(new_kid) is not None
    assert bundle.store.lookup(worker_kid) is not None
    assert not (host / "root.pem").exists()


@pytest.mark.parametrize(
    "token",
    [
        "W" * 40_000 + ".e30.c2ln",  # a header of nested arrays once decoded: '[[[[…'
        base64.urlsafe_b64encode(b"[" * 20_000).rstrip(b"=").decode() + ".e30.c2ln",
        "{root}.é.c2ln",  # a valid header for the pinned root, then a non-ASCII payload
        "a.b",
    ],
)
def test_a_hostile_bundle_is_refused_cleanly(rings_dir: Path, token: str) -> None:
    """Any service may relay a bundle: garbage is one clear refusal, never another exception."""
    watcher = TrustStoreFile(rings_dir / "trust.json", min_interval=0)
    header = {"alg": "ES256", "kid": watcher.root.kid, "typ": "sealflow-trust+jwt"}
    root = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    with pytest.raises(TrustStoreError) as caught:
        watcher.accept(token.replace("{root}", root))
    assert caught.value.reason == "untrusted_bundle"


def test_a_bundle_is_used_even_when_it_cannot_be_saved(rings_dir: Path) -> None:
    """A keys directory that cannot be written (e.g. mounted read-only): the new bundle still
    applies in memory, and the failure to save it is logged, not raised into the consumer."""
    receiver = TrustStoreFile(rings_dir / "trust.json", min_interval=3_600)
    bundle, kid = _issue_rotation(rings_dir)
    (rings_dir / ".trust.lock").unlink()
    (rings_dir / ".trust.lock").mkdir()  # the lock cannot be opened, as on a read-only mount
    with capture_logs() as logs:
        assert receiver.accept(bundle.token) is True
    assert receiver.lookup(kid) is not None
    saved = [entry["reason"] for entry in logs if entry["event"] == "trust_bundle_not_saved"]
    assert saved == ["lock_failed"]
