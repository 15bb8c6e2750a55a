from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from keys import (
    KeyRing,
    TrustStore,
    TrustStoreError,
    TrustStoreFile,
    VerificationKey,
    generate_private_key,
    public_jwk,
    thumbprint,
    write_trust_store,
)

SERVICES = ("gateway", "worker")


def _rotate(keys_dir: Path, service: str, *, now: float, grace: float) -> tuple[str, str]:
    """Publish and promote a next key; returns (old kid, new kid)."""
    ring = KeyRing.load(keys_dir, service)
    old = ring.signing_key().kid
    new = ring.add_next(now=now).kid
    ring.promote_next(grace_seconds=grace, now=now)
    return old, new


def test_from_rings_holds_every_services_keys(rings_dir: Path) -> None:
    store = TrustStore.from_rings(rings_dir, SERVICES)
    assert store.services == frozenset(SERVICES)
    for service in SERVICES:
        kid = KeyRing.load(rings_dir, service).signing_key().kid
        key = store.lookup(kid)
        assert key is not None
        assert (key.service, key.state, key.not_after) == (service, "active", None)
        assert store.service_of(kid) == service


def test_lookup_unknown_kid_is_none(rings_dir: Path) -> None:
    store = TrustStore.load(rings_dir / "trust.json")
    assert store.lookup("unknown") is None
    assert store.service_of("unknown") is None


def test_write_trust_store_then_load_gives_the_same_keys(rings_dir: Path) -> None:
    path = rings_dir / "trust.json"
    document = json.loads(path.read_text())
    assert document["version"] == 1
    assert sorted(document["services"]) == sorted(SERVICES)
    loaded = TrustStore.load(path)
    built = TrustStore.from_rings(rings_dir, SERVICES)
    assert loaded.document() == built.document()
    for key in built.verification_keys():
        found = loaded.lookup(key.kid)
        assert found is not None
        assert found.key == key.key


def test_save_and_load_round_trip(tmp_path: Path, rings_dir: Path) -> None:
    store = TrustStore.from_rings(rings_dir, SERVICES)
    path = tmp_path / "copy.json"
    store.save(path)
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert TrustStore.load(path).document() == store.document()


def test_retired_keys_are_accepted_until_not_after(rings_dir: Path) -> None:
    old, new = _rotate(rings_dir, "gateway", now=2_000.0, grace=305)
    write_trust_store(rings_dir, SERVICES, now=2_000.0)
    store = TrustStore.load(rings_dir / "trust.json")
    retired = store.lookup(old, now=2_304.9)
    assert retired is not None
    assert (retired.state, retired.not_after) == ("retired", 2_305.0)
    assert store.lookup(old, now=2_305.0) is None
    assert store.lookup(new, now=1e12) is not None
    assert store.service_of(old) == "gateway"


def test_lookup_without_now_uses_the_clock(rings_dir: Path) -> None:
    old, _ = _rotate(rings_dir, "gateway", now=2_000.0, grace=5)
    store = TrustStore.from_rings(rings_dir, SERVICES, now=2_000.0)
    assert store.lookup(old, now=2_001.0) is not None
    assert store.lookup(old) is None  # the real clock is long past 2005


def test_jwks_of_a_service_is_a_copy(rings_dir: Path) -> None:
    store = TrustStore.from_rings(rings_dir, SERVICES)
    jwks = store.jwks("gateway")
    jwks["keys"].clear()
    assert store.jwks("gateway")["keys"]
    with pytest.raises(TrustStoreError) as caught:
        store.jwks("parser")
    assert caught.value.reason == "unknown_service"


def test_duplicate_kid_across_services_is_refused() -> None:
    public = generate_private_key("ES256").public_key()
    kid = thumbprint(public)
    keys = [
        VerificationKey(
            service=name, kid=kid, alg="ES256", key=public, state="active", not_after=None
        )
        for name in ("gateway", "worker")
    ]
    with pytest.raises(TrustStoreError) as caught:
        TrustStore(keys)
    assert caught.value.reason == "duplicate_kid"


def _write(path: Path, document: object) -> None:
    path.write_text(json.dumps(document))


def _trust_document(rings_dir: Path) -> Any:
    return json.loads((rings_dir / "trust.json").read_text())


def test_load_missing_trust_file(tmp_path: Path) -> None:
    with pytest.raises(TrustStoreError) as caught:
        TrustStore.load(tmp_path / "trust.json")
    assert caught.value.reason == "trust_store_missing"
    assert "sealflow keys init" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "malformed_trust_store"),
        ("[]", "malformed_trust_store"),
        ('{"version": 2, "services": {}}', "malformed_trust_store"),
        ('{"version": 1, "services": {}, "more": 1}', "malformed_trust_store"),
        ('{"version": 1, "services": {"gateway": {"keys": {}}}}', "malformed_trust_store"),
        ('{"version": 1, "services": {"gateway": {"keys": ["x"]}}}', "malformed_trust_store"),
        ('{"version": 1, "services": {"../x": {"keys": []}}}', "malformed_trust_store"),
    ],
)
def test_load_rejects_malformed_trust_files(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "trust.json"
    path.write_text(text)
    with pytest.raises(TrustStoreError) as caught:
        TrustStore.load(path)
    assert caught.value.reason == reason
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_load_rejects_a_private_key_in_the_trust_file(rings_dir: Path) -> None:
    document = _trust_document(rings_dir)
    document["services"]["gateway"]["keys"][0]["d"] = "secret"
    _write(rings_dir / "trust.json", document)
    with pytest.raises(TrustStoreError) as caught:
        TrustStore.load(rings_dir / "trust.json")
    assert caught.value.reason == "private_member"
    assert "services.gateway.keys.0" in str(caught.value)


def test_load_rejects_a_kid_that_is_not_the_thumbprint(rings_dir: Path) -> None:
    document = _trust_document(rings_dir)
    document["services"]["gateway"]["keys"][0]["kid"] = "forged"
    _write(rings_dir / "trust.json", document)
    with pytest.raises(TrustStoreError) as caught:
        TrustStore.load(rings_dir / "trust.json")
    assert caught.value.reason == "kid_mismatch"


def test_load_rejects_a_retired_key_without_not_after(rings_dir: Path) -> None:
    document = _trust_document(rings_dir)
    document["services"]["gateway"]["keys"][0]["sealflow_state"] = "retired"
    _write(rings_dir / "trust.json", document)
    with pytest.raises(TrustStoreError) as caught:
        TrustStore.load(rings_dir / "trust.json")
    assert caught.value.reason == "malformed_jwk"


def test_load_rejects_the_same_key_under_two_services(rings_dir: Path) -> None:
    document = _trust_document(rings_dir)
    services = document["services"]
    services["worker"]["keys"] = services["gateway"]["keys"]
    _write(rings_dir / "trust.json", document)
    with pytest.raises(TrustStoreError) as caught:
        TrustStore.load(rings_dir / "trust.json")
    assert caught.value.reason == "duplicate_kid"


def test_load_accepts_a_plain_jwks_entry_as_active(tmp_path: Path) -> None:
    public = generate_private_key("EdDSA").public_key()
    path = tmp_path / "trust.json"
    _write(path, {"version": 1, "services": {"parser": {"keys": [public_jwk(public)]}}})
    key = TrustStore.load(path).lookup(thumbprint(public))
    assert key is not None
    assert (key.service, key.state, key.alg) == ("parser", "active", "EdDSA")


def test_trust_store_file_picks_up_a_rotation(rings_dir: Path) -> None:
    path = rings_dir / "trust.json"
    watcher = TrustStoreFile(path, min_interval=3_600)
    ring = KeyRing.load(rings_dir, "gateway")
    upcoming = ring.add_next()
    write_trust_store(rings_dir, SERVICES)

    assert watcher.lookup(upcoming.kid) is None, "not re-read before min_interval"
    assert watcher.refresh(force=True) is True
    found = watcher.lookup(upcoming.kid)
    assert found is not None
    assert found.state == "next"
    assert watcher.refresh(force=True) is False, "unchanged file is not reloaded"

    old = ring.signing_key().kid
    ring.promote_next(grace_seconds=300)
    write_trust_store(rings_dir, SERVICES)
    assert watcher.refresh(force=True) is True
    retired = watcher.current.lookup(old)
    assert retired is not None
    assert retired.state == "retired"


def test_trust_store_file_with_zero_interval_reloads_on_access(rings_dir: Path) -> None:
    watcher = TrustStoreFile(rings_dir / "trust.json", min_interval=0)
    upcoming = KeyRing.load(rings_dir, "worker").add_next()
    write_trust_store(rings_dir, SERVICES)
    assert watcher.lookup(upcoming.kid) is not None


def test_trust_store_file_keeps_the_old_store_when_the_new_file_is_invalid(
    rings_dir: Path,
) -> None:
    path = rings_dir / "trust.json"
    watcher = TrustStoreFile(path, min_interval=0)
    kid = KeyRing.load(rings_dir, "gateway").signing_key().kid
    broken = rings_dir / "broken.json"
    broken.write_text('{"version": 1, "services": {"gateway": {"keys": [{"kty": "EC"}]}}}')
    os.replace(broken, path)
    with capture_logs() as logs:
        assert watcher.refresh(force=True) is False
        assert watcher.refresh(force=True) is False
    assert watcher.lookup(kid) is not None
    failures = [entry for entry in logs if entry["event"] == "trust_store_reload_failed"]
    assert len(failures) == 1, "a broken file is reported once, not on every check"
    assert failures[0]["log_level"] == "warning"
    assert failures[0]["reason"] == "malformed_jwk"

    write_trust_store(rings_dir, SERVICES)
    assert watcher.refresh(force=True) is True


def test_trust_store_file_keeps_the_old_store_when_the_file_disappears(rings_dir: Path) -> None:
    path = rings_dir / "trust.json"
    watcher = TrustStoreFile(path, min_interval=0)
    path.unlink()
    with capture_logs() as logs:
        assert watcher.refresh(force=True) is False
    assert watcher.current.services == frozenset(SERVICES)
    assert logs[0]["event"] == "trust_store_unavailable"


def test_trust_store_file_requires_a_valid_file_at_start(tmp_path: Path) -> None:
    with pytest.raises(TrustStoreError):
        TrustStoreFile(tmp_path / "trust.json")


def test_write_trust_store_leaves_an_unchanged_file_alone(rings_dir: Path) -> None:
    path = rings_dir / "trust.json"
    before = path.stat()
    assert write_trust_store(rings_dir, SERVICES) == path
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
