"""``sealflow revoke`` and ``sealflow users disable`` reach the running services (issue 11.6):
the revocation is published on ``sealflow.control``, signed with the identity's key, and a
receiver's revocation list applies it (a real broker, a real gateway runtime)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from control_testing import control_receiver

from broker import BrokerSettings, RevocationList
from identity import IdentitySettings, IdentityStore
from keys import KeyRing
from sealflow.cli import cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def env(
    amqp_url: str, namespace: str, keys_dir: Path, tmp_path: Path, cleanup_namespace: None
) -> dict[str, str]:
    """The identity host's environment: broker, namespace, keys and data directory."""
    return {
        "SEALFLOW_AMQP_URL": amqp_url,
        "SEALFLOW_NAMESPACE": namespace,
        "SEALFLOW_KEYS_DIR": str(keys_dir),
        "SEALFLOW_DATA_DIR": str(tmp_path / "identity-host"),
    }


@pytest.fixture
def receiver_settings(env: dict[str, str], tmp_path: Path) -> BrokerSettings:
    """The gateway's broker settings, on another data directory (another host)."""
    return BrokerSettings(
        amqp_url=env["SEALFLOW_AMQP_URL"],
        namespace=env["SEALFLOW_NAMESPACE"],
        keys_dir=Path(env["SEALFLOW_KEYS_DIR"]),
        data_dir=tmp_path / "gateway-host",
    )


async def _invoke(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    """Run the command line in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env, input=stdin)


@pytest.mark.parametrize(
    ("kind", "value"),
    [("sub", "mallory"), ("jti", "0123456789abcdef0123456789abcdef"), ("kid", "some-key-id")],
)
async def test_revoke_publishes_a_signed_revocation_that_receivers_apply(
    env: dict[str, str], receiver_settings: BrokerSettings, kind: str, value: str
) -> None:
    """Each kind is applied by a running receiver, and written to the journal."""
    async with control_receiver("gateway", receiver_settings) as revocations:
        result = await _invoke(env, "revoke", kind, value, "--reason", "stolen laptop")
        assert result.exit_code == 0, result.output
        assert f"revoked {kind} {value} (never lapses)" in result.output
        assert "gateway" in result.output
        applied = await revocations.next()
    assert (applied.kind, applied.value, applied.reason) == (kind, value, "stolen laptop")
    assert applied.until is None
    probe = {"kid": "", "jti": "", "sub": ""} | {kind: value}
    assert revocations.revoked(**probe, now=time.time()) == kind
    # the identity host's journal has it too, for daemons started there later
    journal = RevocationList(journal=Path(env["SEALFLOW_DATA_DIR"]) / "revocations.jsonl")
    assert journal.restore() == 1


async def test_revoke_for_a_while_lapses(
    env: dict[str, str], receiver_settings: BrokerSettings
) -> None:
    """``--for`` bounds the revocation: enforced now, lapsed after its ``until``."""
    async with control_receiver("gateway", receiver_settings) as revocations:
        result = await _invoke(env, "revoke", "sub", "mallory", "--for", "60")
        assert result.exit_code == 0, result.output
        applied = await revocations.next()
    assert applied.until is not None
    assert revocations.revoked(kid="", jti="", sub="mallory", now=time.time()) == "sub"
    later = applied.until.timestamp() + 1
    assert revocations.revoked(kid="", jti="", sub="mallory", now=later) is None


async def test_a_forged_revocation_is_not_applied(
    env: dict[str, str], receiver_settings: BrokerSettings, tmp_path: Path
) -> None:
    """Signed with a key the receivers do not trust, nothing is applied."""
    keys = Path(env["SEALFLOW_KEYS_DIR"])
    forged_keys = tmp_path / "forged"
    KeyRing.create(forged_keys, "identity")
    (forged_keys / "trust.json").write_bytes((keys / "trust.json").read_bytes())
    async with control_receiver("gateway", receiver_settings) as revocations:
        forged = await _invoke(
            env | {"SEALFLOW_KEYS_DIR": str(forged_keys)}, "revoke", "sub", "alice"
        )
        assert forged.exit_code == 0, forged.output  # the broker takes it; receivers do not
        genuine = await _invoke(env, "revoke", "sub", "bob")
        assert genuine.exit_code == 0, genuine.output
        applied = await revocations.next()
    assert applied.value == "bob"
    assert revocations.revoked(kid="", jti="", sub="alice", now=time.time()) is None


async def test_users_disable_tells_the_running_services(
    env: dict[str, str], receiver_settings: BrokerSettings
) -> None:
    """``users disable`` only wrote the identity's database; the gateway kept serving the
    user's access token for up to 15 minutes. Now it revokes the subject for that long."""
    added = await _invoke(env, "users", "add", "alice", "--password-stdin", stdin="long secret\n")
    assert added.exit_code == 0, added.output
    async with control_receiver("gateway", receiver_settings) as revocations:
        started = time.monotonic()
        result = await _invoke(env, "users", "disable", "alice")
        assert result.exit_code == 0, result.output
        assert "refuse alice's tokens and requests" in result.output
        applied = await revocations.next()
        took = time.monotonic() - started
    print(f"users disable: the gateway's revocation list had alice {took * 1000:.0f} ms after")
    assert (applied.kind, applied.value, applied.reason) == ("sub", "alice", "user disabled")
    assert applied.until is not None
    lifetime = IdentitySettings().access_token_lifetime
    assert lifetime <= applied.until.timestamp() - time.time() <= lifetime + 120
    store = await IdentityStore.open(
        IdentitySettings(data_dir=Path(env["SEALFLOW_DATA_DIR"])).database_path
    )
    try:
        user = await store.get_user("alice")
    finally:
        await store.close()
    assert user is not None
    assert user.disabled


async def test_revoke_refuses_a_service_as_subject_and_bad_values(
    env: dict[str, str],
) -> None:
    """A service as subject, or a malformed jti, is a one-line error; nothing is sent."""
    service = await _invoke(env, "revoke", "sub", "Worker")
    assert service.exit_code == 1
    assert "revoke its key (kid) instead" in service.output
    bad = await _invoke(env, "revoke", "jti", "not-hex")
    assert bad.exit_code == 1
    assert "32 lowercase hex digits" in bad.output
    assert "Traceback" not in bad.output


async def test_revoke_says_where_to_run_it_without_the_identity_key(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Without the identity's key the command says where it must run."""
    result = await _invoke(
        env | {"SEALFLOW_KEYS_DIR": str(tmp_path / "none")}, "revoke", "sub", "x"
    )
    assert result.exit_code == 1
    assert "run this on the identity's host" in result.output


async def test_every_service_has_the_revocation_within_a_second_of_the_command(
    env: dict[str, str], receiver_settings: BrokerSettings
) -> None:
    """DESIGN §6: a revocation takes effect in every receiver within a second, counted here
    from the moment the operator's command starts (connection and signing included)."""
    async with contextlib.AsyncExitStack() as stack:
        receivers = {
            service: await stack.enter_async_context(
                control_receiver(
                    service,
                    receiver_settings.model_copy(
                        update={"data_dir": receiver_settings.data_dir / service}
                    ),
                )
            )
            for service in ("gateway", "worker", "parser", "audit")
        }
        started = time.monotonic()
        applied_at: dict[str, float] = {}

        async def applied(service: str) -> None:
            await receivers[service].next()
            applied_at[service] = time.monotonic() - started

        waits = [asyncio.create_task(applied(service)) for service in receivers]
        result = await _invoke(env, "revoke", "sub", "mallory")
        assert result.exit_code == 0, result.output
        await asyncio.gather(*waits)
    for service, seconds in sorted(applied_at.items()):
        print(f"sealflow revoke: {service} refuses mallory {seconds * 1000:.0f} ms after")
    assert max(applied_at.values()) < 1.0
