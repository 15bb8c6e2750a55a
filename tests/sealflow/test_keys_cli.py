from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import sealflow.commands.keys as keys_command
from keys import KeyRing, load_public_jwk, load_trust_store
from schemas.services import SERVICES
from sealflow.cli import cli


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["keys", *args], env=env, catch_exceptions=False)


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rotations here are not sent anywhere: nothing answers on port 1 (refused at once)."""
    monkeypatch.setenv("SEALFLOW_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/")


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    result = _run("init", "--keys-dir", str(directory))
    assert result.exit_code == 0, result.output
    return directory


def _snapshot(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        str(path.relative_to(directory)): (
            path.stat().st_ino,
            path.stat().st_mtime_ns,
            path.read_bytes(),
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_init_creates_a_ring_per_service_and_the_trust_store(keys_dir: Path) -> None:
    for service in SERVICES:
        ring = KeyRing.load(keys_dir, service)
        assert ring.signing_key().alg == "ES256"
    store = load_trust_store(keys_dir / "trust.json")
    assert store.services == frozenset(SERVICES)


def test_init_is_idempotent(keys_dir: Path) -> None:
    before = _snapshot(keys_dir)
    result = _run("init", "--keys-dir", str(keys_dir))
    assert result.exit_code == 0
    assert "nothing to do" in result.output
    assert _snapshot(keys_dir) == before


def test_init_with_another_algorithm(tmp_path: Path) -> None:
    result = _run("init", "--alg", "EdDSA", "--keys-dir", str(tmp_path / "k"))
    assert result.exit_code == 0, result.output
    assert "EdDSA" in result.output
    assert KeyRing.load(tmp_path / "k", "audit").signing_key().alg == "EdDSA"


def test_init_fills_in_a_missing_ring(keys_dir: Path) -> None:
    for path in (keys_dir / "parser").iterdir():
        path.unlink()
    (keys_dir / "parser").rmdir()
    result = _run("init", "--keys-dir", str(keys_dir))
    assert result.exit_code == 0
    assert "created 1 key ring" in result.output
    kid = KeyRing.load(keys_dir, "parser").signing_key().kid
    assert load_trust_store(keys_dir / "trust.json").lookup(kid) is not None


def test_init_reads_the_keys_dir_from_the_environment(tmp_path: Path) -> None:
    directory = tmp_path / "from-env"
    result = _run("init", env={"SEALFLOW_KEYS_DIR": str(directory)})
    assert result.exit_code == 0, result.output
    assert KeyRing.exists(directory, "gateway")


def test_rotate_auto_twice_publishes_then_switches_signing(
    keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = KeyRing.load(keys_dir, "gateway").signing_key().kid

    first = _run("rotate", "gateway", "--keys-dir", str(keys_dir))
    assert first.exit_code == 0, first.output
    ring = KeyRing.load(keys_dir, "gateway")
    (upcoming,) = [record for record in ring.records if record.state == "next"]
    assert ring.signing_key().kid == old
    assert f"published next key {upcoming.kid}" in first.output
    assert "run `sealflow keys rotate gateway` again" in first.output
    trusted = load_trust_store(keys_dir / "trust.json").lookup(upcoming.kid)
    assert trusted is not None, "receivers trust the next key before it signs anything"

    later = time.time() + 10
    monkeypatch.setattr(keys_command, "_clock", lambda: later)
    second = _run("rotate", "gateway", "--keys-dir", str(keys_dir))
    assert second.exit_code == 0, second.output
    ring = KeyRing.load(keys_dir, "gateway")
    assert ring.signing_key().kid == upcoming.kid
    retired = ring.record(old)
    assert retired.state == "retired"
    assert retired.not_after == pytest.approx(later + 305)
    assert f"gateway now signs with {upcoming.kid}" in second.output
    store = load_trust_store(keys_dir / "trust.json")
    assert store.lookup(old, now=later + 304) is not None
    assert store.lookup(old, now=later + 305) is None


def test_rotate_auto_waits_until_the_next_key_has_propagated(keys_dir: Path) -> None:
    assert _run("rotate", "gateway", "--keys-dir", str(keys_dir)).exit_code == 0
    signer = KeyRing.load(keys_dir, "gateway").signing_key().kid
    result = _run("rotate", "gateway", "--keys-dir", str(keys_dir))
    assert result.exit_code == 0
    assert "again in" in result.output
    assert KeyRing.load(keys_dir, "gateway").signing_key().kid == signer


def test_rotate_steps_with_grace_and_prune(keys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = KeyRing.load(keys_dir, "worker").signing_key().kid
    args = ("--keys-dir", str(keys_dir))
    assert _run("rotate", "worker", "--step", "next", *args).exit_code == 0
    promoted = _run("rotate", "worker", "--step", "promote", "--grace", "30", *args)
    assert promoted.exit_code == 0, promoted.output
    assert "warning" in promoted.output
    assert KeyRing.load(keys_dir, "worker").record(old).state == "retired"

    start = time.time()
    monkeypatch.setattr(keys_command, "_clock", lambda: start + 60)
    third = _run("rotate", "worker", *args)
    assert third.exit_code == 0, third.output
    assert f"pruned expired key {old}" in third.output
    assert not (keys_dir / "worker" / f"{old}.pem").exists()
    assert load_trust_store(keys_dir / "trust.json").service_of(old) is None


def test_rotate_promote_without_next_key_fails_cleanly(keys_dir: Path) -> None:
    result = _run("rotate", "audit", "--step", "promote", "--keys-dir", str(keys_dir))
    assert result.exit_code == 1
    assert "no next key" in result.stderr
    assert "Traceback" not in result.output


def test_retire_by_kid_prefix(keys_dir: Path) -> None:
    args = ("--keys-dir", str(keys_dir))
    old = KeyRing.load(keys_dir, "identity").signing_key().kid
    assert _run("rotate", "identity", "--step", "next", *args).exit_code == 0
    # "--" because a kid may start with "-".
    result = _run("retire", *args, "--", "identity", old[:10] + "…")
    assert result.exit_code == 0, result.output
    assert "refused from now on" in result.output
    ring = KeyRing.load(keys_dir, "identity")
    assert ring.record(old).state == "retired"
    assert ring.signing_key().kid != old
    assert load_trust_store(keys_dir / "trust.json").lookup(old) is None


def test_retire_the_only_active_key_fails_cleanly(keys_dir: Path) -> None:
    kid = KeyRing.load(keys_dir, "identity").signing_key().kid
    result = _run("retire", "--keys-dir", str(keys_dir), "--", "identity", kid)
    assert result.exit_code == 1
    assert "publish a next key first" in result.stderr


def test_show_lists_keys_and_trust_store_status(keys_dir: Path) -> None:
    result = _run("show", "--keys-dir", str(keys_dir))
    assert result.exit_code == 0, result.output
    for service in SERVICES:
        kid = KeyRing.load(keys_dir, service).signing_key().kid
        assert service in result.output
        assert kid[:10] in result.output
        assert kid not in result.output, "kids are shortened in the table"
    assert "in sync with the rings" in result.output


def test_show_json(keys_dir: Path) -> None:
    result = _run("show", "--json", "--keys-dir", str(keys_dir))
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["trust_store"]["in_sync"] is True
    kids = {row["service"]: row["kid"] for row in document["keys"]}
    assert kids == {s: KeyRing.load(keys_dir, s).signing_key().kid for s in SERVICES}
    assert all(row["state"] == "active" and row["accepted"] for row in document["keys"])


def test_show_notices_a_stale_trust_store(keys_dir: Path) -> None:
    KeyRing.load(keys_dir, "gateway").add_next()  # changed behind the CLI's back
    result = _run("show", "--json", "--keys-dir", str(keys_dir))
    assert json.loads(result.stdout)["trust_store"]["in_sync"] is False
    text = _run("show", "--keys-dir", str(keys_dir))
    assert "out of date" in text.output
    assert _run("init", "--keys-dir", str(keys_dir)).exit_code == 0
    again = _run("show", "--json", "--keys-dir", str(keys_dir))
    assert json.loads(again.stdout)["trust_store"]["in_sync"] is True


def test_jwks_prints_the_public_keys(keys_dir: Path) -> None:
    result = _run("jwks", "parser", "--keys-dir", str(keys_dir))
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    (jwk,) = document["keys"]
    assert "d" not in jwk
    assert load_public_jwk(jwk).kid == KeyRing.load(keys_dir, "parser").signing_key().kid


@pytest.mark.parametrize(
    "args",
    [("show",), ("rotate", "gateway"), ("jwks", "gateway"), ("retire", "gateway", "abcd")],
)
def test_missing_keys_dir_is_one_red_line_and_exit_1(tmp_path: Path, args: tuple[str, ...]) -> None:
    missing = tmp_path / "var" / "keys"
    result = _run(*args, "--keys-dir", str(missing))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: no key rings under {missing.resolve()} (SEALFLOW_")
    assert "point it at this host's keys, or run `sealflow keys init`" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_refused_key_file_is_reported_without_traceback(keys_dir: Path) -> None:
    kid = KeyRing.load(keys_dir, "audit").signing_key().kid
    (keys_dir / "audit" / f"{kid}.pem").chmod(0o644)
    result = _run("jwks", "audit", "--keys-dir", str(keys_dir))
    assert result.exit_code == 1
    assert "group/world-readable (mode 0644); run chmod 600" in result.stderr
    assert result.stderr.count("\n") == 1


def test_every_command_has_help() -> None:
    for command in ("init", "rotate", "retire", "show", "jwks", "export", "publish"):
        result = _run(command, "--help")
        assert result.exit_code == 0
        assert "--keys-dir" in result.output


def _files(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file()}


def test_init_makes_the_root_key_and_a_signed_bundle(keys_dir: Path) -> None:
    """The root's private half is owner-only; its public half is what daemons pin."""
    assert (keys_dir / "root.pem").stat().st_mode & 0o777 == 0o600
    assert json.loads((keys_dir / "root.jwk").read_text())["kty"] == "EC"
    assert (keys_dir / "trust.json").read_text().count(".") == 2


def test_export_writes_exactly_what_one_host_needs(keys_dir: Path, tmp_path: Path) -> None:
    """Its own ring, the root's public key and the bundle: no other private key, no root.pem."""
    ring = KeyRing.load(keys_dir, "worker")
    ring.add_next()
    target = tmp_path / "host-b"
    result = _run("export", "worker", str(target), "--keys-dir", str(keys_dir))
    assert result.exit_code == 0, result.output
    kids = {record.kid for record in KeyRing.load(keys_dir, "worker").records}
    assert _files(target) == {
        "root.jwk",
        "trust.json",
        "worker/ring.json",
        "worker/jwks.json",
        *(f"worker/{kid}.pem" for kid in kids),
    }
    assert (target / "worker").stat().st_mode & 0o777 == 0o700
    assert KeyRing.load(target, "worker").signing_key().kid == ring.signing_key().kid
    assert load_trust_store(target / "trust.json").services == frozenset(SERVICES)


def test_export_of_two_services_for_one_host(keys_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "host-a"
    result = _run("export", "gateway", "identity", str(target), "--keys-dir", str(keys_dir))
    assert result.exit_code == 0, result.output
    assert {name.split("/")[0] for name in _files(target)} == {
        "gateway",
        "identity",
        "root.jwk",
        "trust.json",
    }


def test_export_refuses_a_directory_that_is_not_empty(keys_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "used"
    target.mkdir()
    (target / "something").write_text("x")
    result = _run("export", "worker", str(target), "--keys-dir", str(keys_dir))
    assert result.exit_code == 1
    assert "not an empty directory" in result.stderr
    assert _files(target) == {"something"}


def test_rotate_on_a_host_without_the_root_key(keys_dir: Path, tmp_path: Path) -> None:
    """On a host that holds only its own ring, rotate needs the root key (kept off the servers)
    and refuses before changing the ring; given it, the bundle keeps every other service."""
    host = tmp_path / "host-a"
    assert _run("export", "gateway", str(host), "--keys-dir", str(keys_dir)).exit_code == 0
    before = _snapshot(host)
    refused = _run("rotate", "gateway", "--keys-dir", str(host))
    assert refused.exit_code == 1
    assert "root private key is not at" in refused.stderr
    assert _snapshot(host) == before, "nothing changed"
    done = _run(
        "rotate", "gateway", "--keys-dir", str(host), "--root-key", str(keys_dir / "root.pem")
    )
    assert done.exit_code == 0, done.output
    assert "signed trust bundle" in done.output
    assert "not sent over sealflow.control" in done.output, "no broker here: said, not fatal"
    (upcoming,) = [r for r in KeyRing.load(host, "gateway").records if r.state == "next"]
    store = load_trust_store(host / "trust.json")
    assert store.lookup(upcoming.kid) is not None
    assert store.services == frozenset(SERVICES)
    assert not (host / "root.pem").exists()


def test_show_and_init_on_an_exported_host(keys_dir: Path, tmp_path: Path) -> None:
    """`show` names the services whose rings live elsewhere; `init` refuses to make them here."""
    host = tmp_path / "host-c"
    assert _run("export", "parser", str(host), "--keys-dir", str(keys_dir)).exit_code == 0
    shown = _run("show", "--keys-dir", str(host))
    assert shown.exit_code == 0, shown.output
    assert "gateway: ring on another host" in shown.output
    assert "in sync with the rings" in shown.output
    before = _snapshot(host)
    refused = _run("init", "--keys-dir", str(host))
    assert refused.exit_code == 1
    assert "root private key is not at" in refused.stderr
    assert _snapshot(host) == before


def test_init_needs_no_root_key_when_nothing_changes(keys_dir: Path, tmp_path: Path) -> None:
    """Once the operator has moved root.pem off the machine, a no-op `init` still succeeds."""
    (keys_dir / "root.pem").rename(tmp_path / "root.pem")
    result = _run("init", "--keys-dir", str(keys_dir))
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output
