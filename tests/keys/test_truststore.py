from __future__ import annotations

import base64
import json
from collections.abc import Callable
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
    load_root_public,
    load_root_signer,
    load_trust_store,
    public_jwk,
    thumbprint,
    write_trust_store,
)
from keys.bundle import BUNDLE_TYP
from keys.jose import encode_token

SERVICES = ("gateway", "worker")


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _payload(keys_dir: Path) -> Any:
    """The payload of the bundle in ``trust.json`` (unverified: the test reads what it wrote)."""
    return json.loads(_b64((keys_dir / "trust.json").read_text().strip().split(".")[1]))


def _resign(keys_dir: Path, document: dict[str, Any]) -> None:
    """Sign ``document`` with the real root key and save it as ``trust.json``."""
    root = load_root_public(keys_dir / "root.jwk")
    signer = load_root_signer(keys_dir / "root.pem", root)
    (keys_dir / "trust.json").write_text(encode_token(signer, document, BUNDLE_TYP) + "\n")


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
    store = load_trust_store(rings_dir / "trust.json")
    assert store.lookup("unknown") is None
    assert store.service_of("unknown") is None


def test_write_trust_store_then_load_gives_the_same_keys(rings_dir: Path) -> None:
    path = rings_dir / "trust.json"
    document = _payload(rings_dir)
    assert document["bundle_version"] >= 1
    assert sorted(document["services"]) == sorted(SERVICES)
    loaded = load_trust_store(path)
    built = TrustStore.from_rings(rings_dir, SERVICES)
    assert loaded.document() == built.document()
    for key in built.verification_keys():
        found = loaded.lookup(key.kid)
        assert found is not None
        assert found.key == key.key


def test_trust_json_is_a_jws_signed_by_the_pinned_root(rings_dir: Path) -> None:
    """Anyone may read trust.json (public keys); only the root's signature makes it count."""
    path = rings_dir / "trust.json"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    header = json.loads(_b64(path.read_text().strip().split(".")[0]))
    root = json.loads((rings_dir / "root.jwk").read_text())
    assert header == {"alg": "ES256", "kid": root["kid"], "typ": "sealflow-trust+jwt"}
    assert oct((rings_dir / "root.pem").stat().st_mode & 0o777) == "0o600"


def test_retired_keys_are_accepted_until_not_after(rings_dir: Path) -> None:
    old, new = _rotate(rings_dir, "gateway", now=2_000.0, grace=305)
    write_trust_store(rings_dir, SERVICES, now=2_000.0)
    store = load_trust_store(rings_dir / "trust.json")
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


def test_load_missing_trust_file(rings_dir: Path) -> None:
    (rings_dir / "trust.json").unlink()
    with pytest.raises(TrustStoreError) as caught:
        load_trust_store(rings_dir / "trust.json")
    assert caught.value.reason == "trust_store_missing"
    assert "sealflow keys init" in str(caught.value)


def test_load_without_a_pinned_root(tmp_path: Path) -> None:
    with pytest.raises(TrustStoreError) as caught:
        load_trust_store(tmp_path / "trust.json")
    assert caught.value.reason == "root_missing"


@pytest.mark.parametrize("text", ["not json", "a.b.c", '{"version": 1, "services": {}}', "é"])
def test_load_refuses_what_the_root_did_not_sign(rings_dir: Path, text: str) -> None:
    path = rings_dir / "trust.json"
    path.write_text(text)
    with pytest.raises(TrustStoreError) as caught:
        load_trust_store(path)
    assert caught.value.reason in {"untrusted_bundle", "malformed_trust_store"}
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "document",
    [
        {"bundle_version": 2, "issued_at": 0, "services": {}, "more": 1},
        {"bundle_version": 2, "issued_at": 0, "services": {"gateway": {"keys": {}}}},
        {"bundle_version": 2, "issued_at": 0, "services": {"gateway": {"keys": ["x"]}}},
        {"bundle_version": 2, "issued_at": 0, "services": {"../x": {"keys": []}}},
        {"bundle_version": 0, "issued_at": 0, "services": {}},
        {"bundle_version": True, "issued_at": 0, "services": {}},
        {"bundle_version": 2, "services": {}},
    ],
)
def test_load_refuses_a_malformed_bundle_even_when_the_root_signed_it(
    rings_dir: Path, document: dict[str, Any]
) -> None:
    _resign(rings_dir, document)
    with pytest.raises(TrustStoreError) as caught:
        load_trust_store(rings_dir / "trust.json")
    assert caught.value.reason == "malformed_trust_store"


def _tampered(rings_dir: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = _payload(rings_dir)
    document["bundle_version"] += 1
    change(document)
    _resign(rings_dir, document)


def test_load_rejects_a_private_key_in_the_trust_file(rings_dir: Path) -> None:
    _tampered(rings_dir, lambda d: d["services"]["gateway"]["keys"][0].update(d="secret"))
    with pytest.raises(TrustStoreError) as caught:
        load_trust_store(rings_dir / "trust.json")
    assert caught.value.reason == "private_member"
    assert "services.gateway.keys.0" in str(caught.value)


def test_load_rejects_a_kid_that_is_not_the_thumbprint(rings_dir: Path) -> None:
    _tampered(rings_dir, lambda d: d["services"]["gateway"]["keys"][0].update(kid="forged"))
    with pytest.raises(TrustStoreError) as caught:
        load_trust_store(rings_dir / "trust.json")
    assert caught.value.reason == "kid_mismatch"


def test_load_rejects_a_retired_key_without_not_after(rings_dir: Path) -> None:
    _tampered(
        rings_dir, lambda d: d["services"]["gateway"]["keys"][0].update(sealflow_state="retired")
    )
    with pytest.raises(TrustStoreError) as caught:
        load_trust_store(rings_dir / "trust.json")
    assert caught.value.reason == "malformed_jwk"


def test_load_rejects_the_same_key_under_two_services(rings_dir: Path) -> None:
    def duplicate(document: dict[str, Any]) -> None:
        services = document["services"]
        services["worker"]["keys"] = services["gateway"]["keys"]

    _tampered(rings_dir, duplicate)
    with pytest.raises(TrustStoreError) as caught:
        load_trust_store(rings_dir / "trust.json")
    assert caught.value.reason == "duplicate_kid"


def test_load_accepts_a_plain_jwks_entry_as_active(rings_dir: Path) -> None:
    public = generate_private_key("EdDSA").public_key()
    _resign(
        rings_dir,
        {
            "bundle_version": 9,
            "issued_at": 0,
            "services": {"parser": {"keys": [public_jwk(public)]}},
        },
    )
    key = load_trust_store(rings_dir / "trust.json").lookup(thumbprint(public))
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
    _resign(
        rings_dir,
        {"bundle_version": 5, "issued_at": 0, "services": {"gateway": {"keys": [{"kty": "EC"}]}}},
    )
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
