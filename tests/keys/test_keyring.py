from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from keys import (
    KeyFileError,
    KeyRing,
    KeyRingError,
    generate_private_key,
    load_public_jwk,
    thumbprint,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_makes_one_active_key_with_private_files(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path / "keys", "gateway", now=100.0)
    (record,) = ring.records
    assert record.state == "active"
    assert record.alg == "ES256"
    assert record.created_at == record.activated_at == 100.0
    directory = tmp_path / "keys" / "gateway"
    assert _mode(directory) == 0o700
    assert _mode(directory / f"{record.kid}.pem") == 0o600
    pem = (directory / f"{record.kid}.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert json.loads((directory / "jwks.json").read_text()) == ring.jwks(now=100.0)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_create_then_load_gives_the_same_signing_key(tmp_path: Path, alg: str) -> None:
    created = KeyRing.create(tmp_path, "worker", alg)  # type: ignore[arg-type]
    loaded = KeyRing.load(tmp_path, "worker")
    assert loaded.records == created.records
    signing = loaded.signing_key()
    assert signing.alg == alg
    assert signing.service == "worker"
    assert thumbprint(signing.private_key.public_key()) == signing.kid


def test_signing_key_repr_hides_the_private_key(tmp_path: Path) -> None:
    signing = KeyRing.create(tmp_path, "worker").signing_key()
    assert "private" not in repr(signing)
    assert "PRIVATE" not in repr(KeyRing.load(tmp_path, "worker"))


def test_create_refuses_an_existing_ring(tmp_path: Path) -> None:
    KeyRing.create(tmp_path, "gateway")
    with pytest.raises(KeyRingError) as caught:
        KeyRing.create(tmp_path, "gateway")
    assert caught.value.reason == "ring_exists"


def test_open_or_create_is_idempotent(tmp_path: Path) -> None:
    first = KeyRing.open_or_create(tmp_path / "keys", "audit", "EdDSA")
    second = KeyRing.open_or_create(tmp_path / "keys", "audit", "ES256")
    assert second.records == first.records
    assert second.signing_key().alg == "EdDSA"


@pytest.mark.parametrize("name", ["../evil", "Gateway", "", "a/b", "."])
def test_service_names_cannot_escape_the_keys_dir(tmp_path: Path, name: str) -> None:
    with pytest.raises(KeyRingError) as caught:
        KeyRing.create(tmp_path, name)
    assert caught.value.reason == "invalid_service"


def test_load_without_keys_dir_says_to_run_init(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(KeyRingError) as caught:
        KeyRing.load(missing, "gateway")
    assert caught.value.reason == "keys_dir_missing"
    message = str(caught.value)
    assert message.startswith(f"no key rings under {missing.resolve()} (SEALFLOW_KEYS_DIR")
    assert "point it at this host's keys" in message


def test_load_without_ring_says_to_run_init(tmp_path: Path) -> None:
    KeyRing.create(tmp_path, "gateway")
    with pytest.raises(KeyRingError) as caught:
        KeyRing.load(tmp_path, "worker")
    assert caught.value.reason == "ring_missing"
    assert "sealflow keys init" in str(caught.value)


def test_load_refuses_a_group_or_world_readable_key_file(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway")
    pem = tmp_path / "gateway" / f"{ring.signing_key().kid}.pem"
    pem.chmod(0o644)
    with pytest.raises(KeyFileError) as caught:
        KeyRing.load(tmp_path, "gateway")
    assert caught.value.reason == "insecure_permissions"
    assert caught.value.path == pem
    assert str(caught.value) == (
        f"{pem}: private key is group/world-readable (mode 0644); run chmod 600 {pem}"
    )


def test_load_refuses_a_group_writable_key_file(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway")
    (tmp_path / "gateway" / f"{ring.signing_key().kid}.pem").chmod(0o620)
    with pytest.raises(KeyFileError) as caught:
        KeyRing.load(tmp_path, "gateway")
    assert caught.value.reason == "insecure_permissions"


def test_load_refuses_a_symlinked_key_file(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway")
    pem = tmp_path / "gateway" / f"{ring.signing_key().kid}.pem"
    target = tmp_path / "elsewhere.pem"
    pem.rename(target)
    pem.symlink_to(target)
    with pytest.raises(KeyFileError) as caught:
        KeyRing.load(tmp_path, "gateway")
    assert caught.value.reason == "not_regular_file"


def test_load_reports_malformed_ring_json(tmp_path: Path) -> None:
    KeyRing.create(tmp_path, "gateway")
    (tmp_path / "gateway" / "ring.json").write_text("{not json")
    with pytest.raises(KeyRingError) as caught:
        KeyRing.load(tmp_path, "gateway")
    assert caught.value.reason == "malformed_ring"
    assert "ring.json" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda doc: doc.update(version=2), "version"),
        (lambda doc: doc.update(service="worker"), "worker"),
        (lambda doc: doc.update(extra=1), "extra"),
        (lambda doc: doc["keys"][0].update(state="next", activated_at=None), "active key"),
        (lambda doc: doc["keys"][0].update(alg="HS256"), "alg"),
        (lambda doc: doc["keys"][0].update(kid="../../etc/passwd"), "kid"),
        (lambda doc: doc["keys"].append(dict(doc["keys"][0])), "twice"),
        (lambda doc: doc["keys"][0].update(not_after=5.0), "times"),
        (lambda doc: doc["keys"][0].update(created_at="yesterday"), "created_at"),
    ],
)
def test_load_rejects_inconsistent_ring_json(tmp_path: Path, change: object, expected: str) -> None:
    KeyRing.create(tmp_path, "gateway")
    path = tmp_path / "gateway" / "ring.json"
    document = json.loads(path.read_text())
    change(document)  # type: ignore[operator]
    path.write_text(json.dumps(document))
    with pytest.raises(KeyRingError) as caught:
        KeyRing.load(tmp_path, "gateway")
    assert caught.value.reason == "malformed_ring"
    assert expected in str(caught.value)


def test_load_reports_a_missing_key_file(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway")
    pem = tmp_path / "gateway" / f"{ring.signing_key().kid}.pem"
    pem.unlink()
    with pytest.raises(KeyFileError) as caught:
        KeyRing.load(tmp_path, "gateway")
    assert caught.value.reason == "file_missing"
    assert str(caught.value) == f"{pem}: does not exist"


def _replace_key_file(path: Path, pem: bytes) -> None:
    path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def test_load_refuses_an_ed25519_key_where_es256_is_recorded(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway", "ES256")
    pem_path = tmp_path / "gateway" / f"{ring.signing_key().kid}.pem"
    other = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _replace_key_file(pem_path, other)
    with pytest.raises(KeyFileError) as caught:
        KeyRing.load(tmp_path, "gateway")
    assert caught.value.reason == "key_type_mismatch"
    assert "EdDSA" in str(caught.value)
    assert "ES256" in str(caught.value)


def test_load_refuses_a_key_file_whose_thumbprint_is_not_its_kid(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway", "ES256")
    pem_path = tmp_path / "gateway" / f"{ring.signing_key().kid}.pem"
    other = generate_private_key("ES256").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _replace_key_file(pem_path, other)
    with pytest.raises(KeyFileError) as caught:
        KeyRing.load(tmp_path, "gateway")
    assert caught.value.reason == "kid_mismatch"


def test_load_refuses_a_key_file_that_is_not_pem(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway")
    _replace_key_file(tmp_path / "gateway" / f"{ring.signing_key().kid}.pem", b"garbage")
    with pytest.raises(KeyFileError) as caught:
        KeyRing.load(tmp_path, "gateway")
    assert caught.value.reason == "malformed_key"


def test_load_refuses_an_oversized_key_file(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway")
    _replace_key_file(tmp_path / "gateway" / f"{ring.signing_key().kid}.pem", b"x" * 100_000)
    with pytest.raises(KeyFileError) as caught:
        KeyRing.load(tmp_path, "gateway")
    assert caught.value.reason == "file_too_large"


def test_rotation_next_promote_retire_until_not_after(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway", now=1_000.0)
    old = ring.signing_key()

    upcoming = ring.add_next(now=1_010.0)
    assert upcoming.state == "next"
    assert ring.signing_key().kid == old.kid, "a next key does not sign yet"
    accepted = {key.kid: key.state for key in ring.verification_keys(now=1_010.0)}
    assert accepted == {old.kid: "active", upcoming.kid: "next"}

    promoted = ring.promote_next(grace_seconds=305, now=1_020.0)
    assert promoted.kid == upcoming.kid
    assert promoted.activated_at == 1_020.0
    assert ring.signing_key().kid == upcoming.kid
    retired = ring.record(old.kid)
    assert (retired.state, retired.retired_at, retired.not_after) == ("retired", 1_020.0, 1_325.0)

    before = {key.kid for key in ring.verification_keys(now=1_324.9)}
    after = {key.kid for key in ring.verification_keys(now=1_325.0)}
    assert before == {old.kid, upcoming.kid}
    assert after == {upcoming.kid}

    reloaded = KeyRing.load(tmp_path, "gateway")
    assert reloaded.records == ring.records
    assert reloaded.signing_key().kid == upcoming.kid


def test_jwks_marks_retired_keys_with_not_after(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway", now=0.0)
    old = ring.signing_key().kid
    ring.add_next(now=1.0)
    ring.promote_next(grace_seconds=60, now=2.0)
    jwks = ring.jwks(now=10.0)
    by_kid = {jwk["kid"]: jwk for jwk in jwks["keys"]}
    assert by_kid[old]["sealflow_not_after"] == 62.0
    assert by_kid[old]["sealflow_state"] == "retired"
    assert all("sealflow_not_after" not in jwk for kid, jwk in by_kid.items() if kid != old)
    for jwk in jwks["keys"]:
        assert load_public_jwk(jwk).kid == jwk["kid"]
    assert [jwk["kid"] for jwk in ring.jwks(now=62.0)["keys"]] == [ring.signing_key().kid]


def test_jwks_file_follows_each_change(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway")
    upcoming = ring.add_next()
    published = json.loads((tmp_path / "gateway" / "jwks.json").read_text())
    assert upcoming.kid in {jwk["kid"] for jwk in published["keys"]}


def test_add_next_refuses_a_second_next_key(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway")
    ring.add_next()
    with pytest.raises(KeyRingError) as caught:
        ring.add_next()
    assert caught.value.reason == "next_exists"


def test_add_next_may_change_the_algorithm(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway", "ES256")
    assert ring.add_next("EdDSA").alg == "EdDSA"
    ring.promote_next(grace_seconds=0)
    assert ring.signing_key().alg == "EdDSA"
    assert KeyRing.load(tmp_path, "gateway").signing_key().alg == "EdDSA"


def test_promote_without_next_key_is_refused(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway")
    with pytest.raises(KeyRingError) as caught:
        ring.promote_next(grace_seconds=10)
    assert caught.value.reason == "no_next_key"


@pytest.mark.parametrize("grace", [-1.0, float("nan"), float("inf")])
def test_promote_refuses_invalid_grace(tmp_path: Path, grace: float) -> None:
    ring = KeyRing.create(tmp_path, "gateway")
    ring.add_next()
    with pytest.raises(KeyRingError) as caught:
        ring.promote_next(grace_seconds=grace)
    assert caught.value.reason == "invalid_grace"


def test_changes_start_from_the_ring_on_disk(tmp_path: Path) -> None:
    stale = KeyRing.create(tmp_path, "gateway")
    KeyRing.load(tmp_path, "gateway").add_next()
    with pytest.raises(KeyRingError) as caught:
        stale.add_next()
    assert caught.value.reason == "next_exists"
    assert len(stale.records) == 2


def test_retire_active_key_hands_signing_to_the_next_key(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway", now=0.0)
    compromised = ring.signing_key().kid
    upcoming = ring.add_next(now=1.0)
    retired = ring.retire(compromised, now=2.0)
    assert (retired.state, retired.not_after) == ("retired", 2.0)
    assert ring.signing_key().kid == upcoming.kid
    assert {key.kid for key in ring.verification_keys(now=2.0)} == {upcoming.kid}


def test_retire_the_only_active_key_is_refused(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway")
    with pytest.raises(KeyRingError) as caught:
        ring.retire(ring.signing_key().kid)
    assert caught.value.reason == "only_active_key"
    assert ring.records[0].state == "active"


def test_retire_a_next_key(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway", now=0.0)
    active = ring.signing_key().kid
    upcoming = ring.add_next(now=1.0)
    ring.retire(upcoming.kid, grace_seconds=5, now=2.0)
    assert ring.record(upcoming.kid).not_after == 7.0
    assert ring.signing_key().kid == active
    ring.add_next(now=3.0)  # the retired one no longer blocks a new next key


def test_retire_can_shorten_but_not_extend_a_grace(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway", now=0.0)
    old = ring.signing_key().kid
    ring.add_next(now=1.0)
    ring.promote_next(grace_seconds=300, now=2.0)
    assert ring.retire(old, grace_seconds=10, now=3.0).not_after == 13.0
    with pytest.raises(KeyRingError) as caught:
        ring.retire(old, grace_seconds=100, now=4.0)
    assert caught.value.reason == "already_retired"


def test_retire_unknown_kid(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway")
    with pytest.raises(KeyRingError) as caught:
        ring.retire("nope")
    assert caught.value.reason == "unknown_kid"


def test_prune_deletes_expired_retired_keys_and_their_files(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "gateway", now=0.0)
    old = ring.signing_key().kid
    ring.add_next(now=1.0)
    ring.promote_next(grace_seconds=100, now=2.0)
    assert ring.prune(now=101.9) == []
    assert (tmp_path / "gateway" / f"{old}.pem").exists()
    assert ring.prune(now=102.0) == [old]
    assert not (tmp_path / "gateway" / f"{old}.pem").exists()
    assert [record.kid for record in KeyRing.load(tmp_path, "gateway").records] == [
        ring.signing_key().kid
    ]
    assert ring.prune(now=1_000.0) == []


def test_prune_archives_the_public_half_of_each_pruned_key(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path, "audit")
    old = ring.signing_key()
    ring.add_next()
    ring.promote_next(grace_seconds=0)
    assert ring.archived_keys() == []
    assert ring.prune() == [old.kid]
    [archived] = KeyRing.load(tmp_path, "audit").archived_keys()
    assert archived.kid == old.kid
    assert archived.state == "retired"
    assert archived.not_after is not None
    assert '"d"' not in (tmp_path / "audit" / "archive.json").read_text()
