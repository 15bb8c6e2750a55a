"""`sealflow clients`: add public and confidential clients, list them."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from identity import DEVICE_CODE_GRANT, Client, IdentitySettings, IdentityStore
from sealflow.cli import cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"SEALFLOW_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "200"}


def _run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, ["clients", *args], env=env)


def _error(result: Result) -> str:
    """The one error line, after the line naming the identity database the command used."""
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("using identity database "), lines
    assert len(lines) == 2, lines
    return lines[1]


def _database(env: dict[str, str]) -> Path:
    return IdentitySettings(data_dir=Path(env["SEALFLOW_DATA_DIR"])).database_path


def _authenticate(env: dict[str, str], client_id: str, secret: str | None) -> Client:
    async def check() -> Client:
        store = await IdentityStore.open(_database(env))
        try:
            return await store.authenticate_client(client_id, secret)
        finally:
            await store.close()

    return asyncio.run(check())


def test_a_confidential_client_gets_a_secret_printed_once_and_stored_hashed(
    env: dict[str, str],
) -> None:
    result = _run(
        env,
        "add",
        "reporting",
        "--grant",
        "client_credentials",
        "--role",
        "viewer",
    )
    assert result.exit_code == 0, result.output
    found = re.search(r"client secret \(shown once, stored hashed\): (\S+)", result.output)
    assert found is not None
    secret = found.group(1)
    client = _authenticate(env, "reporting", secret)
    assert not client.public
    assert client.role == "viewer"
    with sqlite3.connect(_database(env)) as db:
        (stored,) = db.execute("SELECT secret_hash FROM clients").fetchone()
    assert secret not in stored
    assert stored.startswith("$argon2id$")
    assert secret not in _run(env, "list").output


def test_a_public_client_with_redirect_uris_and_the_device_grant(env: dict[str, str]) -> None:
    result = _run(
        env,
        "add",
        "web",
        "--public",
        "--redirect-uri",
        "https://app.example/cb",
        "--redirect-uri",
        "http://localhost:8080/cb",
        "--grant",
        "authorization_code",
        "--grant",
        "device_code",
    )
    assert result.exit_code == 0, result.output
    assert "added public client web" in result.output
    assert "secret" not in result.output
    client = _authenticate(env, "web", None)
    assert client.redirect_uris == ("https://app.example/cb", "http://localhost:8080/cb")
    assert client.grant_types == ("authorization_code", DEVICE_CODE_GRANT)


def test_list_shows_every_client(env: dict[str, str]) -> None:
    _run(env, "add", "web", "--public", "--redirect-uri", "https://app.example/cb")
    _run(env, "add", "svc", "--grant", "client_credentials", "--role", "user")
    result = _run(env, "list")
    assert result.exit_code == 0, result.output
    assert "2 client(s)" in result.output
    lines = result.output.splitlines()
    assert any("web" in line and "public" in line for line in lines)
    assert any("svc" in line and "confidential" in line and "user" in line for line in lines)
    assert "https://app.example/cb" in result.output


def test_errors_are_one_line(env: dict[str, str]) -> None:
    assert _run(env, "add", "web", "--public").exit_code == 0
    duplicate = _run(env, "add", "web", "--public")
    assert duplicate.exit_code == 1
    assert _error(duplicate) == "Error: client 'web' already exists"
    public_cc = _run(env, "add", "p", "--public", "--grant", "client_credentials", "--role", "user")
    assert _error(public_cc) == "Error: a public client cannot use client_credentials"
    no_role = _run(env, "add", "s", "--grant", "client_credentials")
    assert _error(no_role) == "Error: client_credentials needs a role for the client"
    bad_uri = _run(env, "add", "f", "--public", "--redirect-uri", "https://a.example/cb#x")
    assert bad_uri.exit_code == 1
    assert "must be absolute, without fragment" in bad_uri.output
    bad_grant = _run(env, "add", "g", "--grant", "password")
    assert bad_grant.exit_code == 2


def test_add_refuses_a_username_or_a_service_name(env: dict[str, str]) -> None:
    """A client ``alice`` would get tokens with sub=alice and own alice's jobs (issue 11.11)."""
    added = CliRunner().invoke(
        cli, ["users", "add", "alice", "--password-stdin"], env=env, input="long secret\n"
    )
    assert added.exit_code == 0, added.output
    taken = _run(env, "add", "alice", "--grant", "client_credentials", "--role", "user")
    assert taken.exit_code == 1
    assert "already taken by a user" in taken.output
    assert "client secret" not in taken.output
    service = _run(env, "add", "audit", "--public")
    assert service.exit_code == 1
    assert "is the name of a Sealflow service" in service.output
