"""`sealflow users`: add (prompted twice or from stdin), list, disable, enable, set-role."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from identity import AccessDenied, IdentitySettings, IdentityStore
from sealflow.cli import cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"SEALFLOW_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "200"}


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["users", *args], env=env, input=stdin)


def _error(result: Result) -> str:
    """The one error line, after the line naming the identity database the command used."""
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("using identity database "), lines
    assert len(lines) == 2, lines
    return lines[1]


def _database(env: dict[str, str]) -> Path:
    return IdentitySettings(data_dir=Path(env["SEALFLOW_DATA_DIR"])).database_path


def _authenticate(env: dict[str, str], username: str, password: str) -> str:
    async def check() -> str:
        store = await IdentityStore.open(_database(env))
        try:
            return (await store.authenticate_user(username, password)).role
        finally:
            await store.close()

    return asyncio.run(check())


def test_add_prompts_twice_with_hidden_input_and_stores_argon2id(env: dict[str, str]) -> None:
    result = _run(env, "add", "alice", "--role", "admin", stdin="long secret\nlong secret\n")
    assert result.exit_code == 0, result.output
    assert "added user alice (admin)" in result.output
    assert "long secret" not in result.output  # hidden input is not echoed
    assert result.output.count("assword") == 2
    assert _authenticate(env, "alice", "long secret") == "admin"
    with sqlite3.connect(_database(env)) as db:
        (stored,) = db.execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$")


def test_add_asks_again_when_the_two_passwords_differ(env: dict[str, str]) -> None:
    result = _run(
        env, "add", "alice", stdin="first secret\nsecond secret\nthird secret\nthird secret\n"
    )
    assert result.exit_code == 0, result.output
    assert _authenticate(env, "alice", "third secret") == "user"


def test_add_reads_the_password_from_stdin(env: dict[str, str]) -> None:
    result = _run(env, "add", "bob", "--role", "viewer", "--password-stdin", stdin="from stdin\n")
    assert result.exit_code == 0, result.output
    assert _authenticate(env, "bob", "from stdin") == "viewer"


def test_short_password_duplicate_user_and_bad_role_are_one_line_errors(
    env: dict[str, str],
) -> None:
    short = _run(env, "add", "carol", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1
    assert "Error: password must be at least 8 characters" in short.output
    assert _run(env, "add", "carol", "--password-stdin", stdin="long enough\n").exit_code == 0
    duplicate = _run(env, "add", "carol", "--password-stdin", stdin="long enough\n")
    assert duplicate.exit_code == 1
    assert _error(duplicate) == "Error: user 'carol' already exists"
    bad_role = _run(env, "add", "dave", "--role", "root", "--password-stdin", stdin="x" * 9)
    assert bad_role.exit_code == 2
    assert "'root' is not one of 'viewer', 'user', 'admin'" in bad_role.output


def test_list_shows_a_table_of_users(env: dict[str, str]) -> None:
    _run(env, "add", "alice", "--password-stdin", stdin="long secret\n")
    _run(env, "add", "bob", "--role", "admin", "--password-stdin", stdin="long secret\n")
    _run(env, "disable", "bob", "--no-broadcast")
    result = _run(env, "list")
    assert result.exit_code == 0, result.output
    assert "2 user(s)" in result.output
    lines = result.output.splitlines()
    assert any("alice" in line and "user" in line and "enabled" in line for line in lines)
    assert any("bob" in line and "admin" in line and "disabled" in line for line in lines)


def test_disable_enable_and_set_role(env: dict[str, str]) -> None:
    _run(env, "add", "alice", "--password-stdin", stdin="long secret\n")
    disabled = _run(env, "disable", "alice", "--no-broadcast")
    assert disabled.exit_code == 0, disabled.output
    with pytest.raises(AccessDenied):
        _authenticate(env, "alice", "long secret")
    assert _run(env, "enable", "alice").exit_code == 0
    assert _authenticate(env, "alice", "long secret") == "user"
    changed = _run(env, "set-role", "alice", "viewer")
    assert changed.exit_code == 0, changed.output
    assert "now has role viewer" in changed.output
    assert _authenticate(env, "alice", "long secret") == "viewer"


def test_unknown_users_are_one_line_errors(env: dict[str, str]) -> None:
    for args in (("disable", "nobody"), ("enable", "nobody"), ("set-role", "nobody", "admin")):
        result = _run(env, *args)
        assert result.exit_code == 1
        assert _error(result) == "Error: no user 'nobody'"


@pytest.mark.parametrize("name", ["worker", "Gateway"])
def test_add_refuses_a_service_name(env: dict[str, str], name: str) -> None:
    """A user named like a service, revoked by sub, would silence that service (issue 11.11)."""
    result = _run(env, "add", name, "--password-stdin", stdin="long secret\n")
    assert result.exit_code == 1
    assert "is the name of a Sealflow service" in result.output
    assert "Traceback" not in result.output


def test_add_refuses_a_client_id(env: dict[str, str]) -> None:
    """A user named like a client would share its sub: one namespace (issue 11.11)."""
    added = CliRunner().invoke(cli, ["clients", "add", "reports", "--public"], env=env)
    assert added.exit_code == 0, added.output
    result = _run(env, "add", "Reports", "--password-stdin", stdin="long secret\n")
    assert result.exit_code == 1
    assert "already taken by a client" in result.output


def test_disable_says_so_when_the_services_could_not_be_told(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The database is written either way; a revocation that could not be sent is an error
    that says what to do, not a silent success (issue 11.6)."""
    _run(env, "add", "alice", "--password-stdin", stdin="long secret\n")
    env = env | {"SEALFLOW_KEYS_DIR": str(tmp_path / "no-keys-here")}
    result = _run(env, "disable", "alice")
    assert result.exit_code == 1
    assert "disabled user alice" in result.output
    assert "run this on the identity's host" in result.output
    with pytest.raises(AccessDenied):
        _authenticate(env, "alice", "long secret")


def test_list_names_the_database_and_says_when_it_is_empty(env: dict[str, str]) -> None:
    """Run against the wrong data dir, `users list` says where it looked and that it is empty."""
    result = _run(env, "list")
    assert result.exit_code == 0, result.output
    database = _database(env).resolve()
    assert f"using identity database {database}" in result.stderr
    assert f"no users in {database}" in result.stderr
