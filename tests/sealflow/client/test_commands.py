"""The client commands through click, against the OAuth and gateway test peers."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sealflow.cli import cli

COMMANDS = ["login", "logout", "token", "upload", "jobs", "result"]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    assert f" {name} [OPTIONS]" in result.output
    assert len(result.output.splitlines()) > 3


@pytest.fixture
def signed_in(identity_peer, cache):
    tokens = identity_peer.token_set(expires_at=time.time() + 600)
    cache.save(tokens)
    return tokens


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "sample.md"
    path.write_text("# Sample\n\nwords about lighthouses\n")
    return path


async def test_login_prints_the_address_and_code_then_caches_the_tokens(
    run_cli, identity_peer, cache, settings
) -> None:
    identity_peer.interval = 1
    identity_peer.polls = ["approve"]
    result = await run_cli("login")
    assert result.exit_code == 0, result.output
    assert f"To sign in, open {identity_peer.url}/device" in result.output
    assert "enter the code: WDJB-MJHT" in result.output
    assert f"Signed in as alice at {identity_peer.url}" in result.output
    tokens = cache.load()
    assert tokens is not None
    assert tokens.subject == "alice"
    assert tokens.refresh_token in identity_peer.live_refresh
    assert stat.S_IMODE(settings.token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.config_dir.stat().st_mode) == 0o700


async def test_a_denied_login_is_one_line(run_cli, identity_peer, cache) -> None:
    identity_peer.interval = 1
    identity_peer.polls = ["access_denied"]
    result = await run_cli("login")
    assert result.exit_code == 1
    assert (
        result.output.splitlines()[-1] == "error: the sign-in was denied at the identity provider"
    )
    assert "Traceback" not in result.output
    assert cache.load() is None


async def test_login_with_a_client_secret_is_refused(run_cli, service_secret) -> None:
    result = await run_cli("login", SEALFLOW_CLIENT_SECRET=service_secret)
    assert result.exit_code == 1
    assert "SEALFLOW_CLIENT_SECRET is set" in result.output


async def test_token_prints_only_the_token(run_cli, signed_in) -> None:
    result = await run_cli("token")
    assert result.exit_code == 0
    assert result.stdout == signed_in.access_token + "\n"


async def test_token_with_client_credentials(run_cli, identity_peer, service_secret, cache) -> None:
    result = await run_cli(
        "token", SEALFLOW_CLIENT_ID="nightly-script", SEALFLOW_CLIENT_SECRET=service_secret
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() in identity_peer.live_access
    assert cache.load() is None


async def test_not_signed_in_says_run_login(run_cli) -> None:
    result = await run_cli("jobs")
    assert result.exit_code == 1
    assert result.output == "error: not signed in; run sealflow login\n"


async def test_a_refused_token_after_refresh_says_run_login(
    run_cli, signed_in, gateway_peer
) -> None:
    gateway_peer.refuse_all = True
    result = await run_cli("jobs")
    assert result.exit_code == 1
    assert result.output.startswith("error: the gateway refused the token even after renewing it")
    assert result.output.rstrip().endswith("run sealflow login")


async def test_a_corrupt_cache_is_one_line(run_cli, settings) -> None:
    settings.config_dir.mkdir(parents=True)
    settings.token_file.write_text("{")
    settings.token_file.chmod(0o600)
    result = await run_cli("token")
    assert result.exit_code == 1
    assert result.output == (
        f"error: the token cache {settings.token_file} is corrupt; delete it and run sealflow login\n"
    )


async def test_bad_settings_are_one_line(run_cli) -> None:
    result = await run_cli("jobs", SEALFLOW_GATEWAY_URL="ftp://example")
    assert result.exit_code == 1
    assert result.output.startswith("error: bad settings: SEALFLOW_GATEWAY_URL")


async def test_upload_and_wait_shows_the_final_states(
    run_cli, signed_in, gateway_peer, document
) -> None:
    result = await run_cli("upload", str(document), "--wait", "10")
    assert result.exit_code == 0, result.output
    [job_id] = gateway_peer.jobs
    row = next(line for line in result.stdout.splitlines() if job_id in line)
    assert "sample.md" in row
    assert "done" in row
    assert gateway_peer.uploads[0]["data"] == document.read_bytes()


async def test_upload_without_wait_shows_queued_jobs(
    run_cli, signed_in, gateway_peer, document
) -> None:
    result = await run_cli("upload", str(document))
    assert result.exit_code == 0, result.output
    assert "queued" in result.stdout
    assert gateway_peer.events_requests == 0


async def test_upload_exits_1_when_a_job_fails(run_cli, signed_in, gateway_peer, document) -> None:
    gateway_peer.states_after_upload = ["processing", "failed"]
    result = await run_cli("upload", str(document), "--wait", "10")
    assert result.exit_code == 1
    assert "failed" in result.stdout
    assert "parse_failed: not a document" in result.stdout


async def test_upload_exits_1_when_a_file_is_refused(
    run_cli, signed_in, gateway_peer, document, tmp_path
) -> None:
    blob = tmp_path / "tool.bin"
    blob.write_bytes(b"\x00")
    result = await run_cli("upload", str(document), str(blob), "--wait", "10")
    assert result.exit_code == 1
    rows = result.stdout.splitlines()
    assert any("sample.md" in line and "done" in line for line in rows)
    assert any("tool.bin" in line and "rejected" in line for line in rows)
    assert "unsupported_type" in result.stdout


async def test_upload_stops_waiting_at_the_deadline(
    run_cli, signed_in, gateway_peer, document
) -> None:
    gateway_peer.hold_events = True
    result = await run_cli("upload", str(document), "--wait", "0.5")
    gateway_peer.release_events.set()
    assert result.exit_code == 1
    assert "queued" in result.stdout


async def test_jobs_table_and_json(run_cli, signed_in, gateway_peer, document) -> None:
    assert (await run_cli("upload", str(document))).exit_code == 0
    [job_id] = gateway_peer.jobs
    table = await run_cli("jobs")
    assert table.exit_code == 0
    assert job_id in table.stdout
    assert "sample.md" in table.stdout
    as_json = await run_cli("jobs", "--json", "--state", "queued", "--all")
    assert as_json.exit_code == 0
    body = json.loads(as_json.stdout)
    assert [job["job_id"] for job in body["jobs"]] == [job_id]
    assert gateway_peer.list_params[-1] == {"limit": "50", "state": "queued", "all": "true"}


async def test_result_text_json_and_not_ready(run_cli, signed_in, gateway_peer, document) -> None:
    assert (await run_cli("upload", str(document))).exit_code == 0
    [job_id] = gateway_peer.jobs
    early = await run_cli("result", job_id)
    assert early.exit_code == 1
    assert early.output == "error: gateway answered 409 not_ready: job is queued\n"
    gateway_peer.jobs[job_id].state = "done"
    text = await run_cli("result", job_id)
    assert text.exit_code == 0
    assert text.stdout == document.read_text() + "\n"
    full = await run_cli("result", job_id, "--json")
    assert json.loads(full.stdout)["metadata"] == {"title": "Sample"}


async def test_jobs_at_80_columns_shows_whole_ids(
    run_cli, signed_in, gateway_peer, document
) -> None:
    """A narrow terminal still shows every job id whole, so it can be pasted into `result`."""
    assert (await run_cli("upload", str(document))).exit_code == 0
    [job_id] = gateway_peer.jobs
    table = await run_cli("jobs", COLUMNS="80")
    assert table.exit_code == 0
    assert job_id in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80


async def test_result_takes_a_unique_prefix(run_cli, signed_in, gateway_peer, document) -> None:
    """`result` accepts the first characters of an id when they name exactly one job."""
    assert (await run_cli("upload", str(document))).exit_code == 0
    [job_id] = gateway_peer.jobs
    gateway_peer.jobs[job_id].state = "done"
    text = await run_cli("result", job_id[:6])
    assert text.exit_code == 0, text.output
    assert text.stdout == document.read_text() + "\n"


async def test_result_refuses_an_ambiguous_unknown_or_short_prefix(
    run_cli, signed_in, gateway_peer, document
) -> None:
    """A prefix that names several jobs, none, or is too short is one clear line, exit 1."""
    assert (await run_cli("upload", str(document), str(document))).exit_code == 0
    renamed = {"abcd" + job_id[4:]: job for job_id, job in gateway_peer.jobs.items()}
    for new_id, job in renamed.items():
        job.job_id, job.state = new_id, "done"
    gateway_peer.jobs = renamed
    ambiguous = await run_cli("result", "abcd")
    assert ambiguous.exit_code == 1
    assert ambiguous.output.startswith("error: gateway answered 409 ambiguous_id: abcd starts")
    unknown = await run_cli("result", "ffff0000")
    assert unknown.exit_code == 1
    assert "no job of yours has an id starting with ffff0000" in unknown.output
    short = await run_cli("result", "ab")
    assert short.exit_code == 1
    assert "at least 4 characters" in short.output


async def test_logout_revokes_and_deletes(run_cli, signed_in, identity_peer, cache) -> None:
    result = await run_cli("logout")
    assert result.exit_code == 0
    assert "Signed out" in result.output
    assert identity_peer.revoked == [signed_in.refresh_token]
    assert cache.load() is None
    again = await run_cli("logout")
    assert again.output == "Not signed in.\n"


async def test_logout_keeps_the_tokens_when_revocation_fails(
    run_cli, signed_in, identity_peer, cache
) -> None:
    identity_peer.revoke_status = 503
    result = await run_cli("logout")
    assert result.exit_code == 1
    assert result.output == "error: the revocation endpoint answered HTTP 503\n"
    assert cache.load() == signed_in
    forgotten = await run_cli("logout", "--forget")
    assert forgotten.exit_code == 0
    assert cache.load() is None


async def test_a_new_login_revokes_the_sign_in_it_replaces(
    run_cli, signed_in, identity_peer, cache
) -> None:
    identity_peer.interval = 1
    result = await run_cli("login")
    assert result.exit_code == 0, result.output
    assert identity_peer.revoked == [signed_in.refresh_token]
    assert cache.load().access_token != signed_in.access_token


async def test_login_replaces_a_corrupt_cache(run_cli, identity_peer, cache, settings) -> None:
    settings.config_dir.mkdir(parents=True)
    settings.token_file.write_text("garbage")
    settings.token_file.chmod(0o644)
    identity_peer.interval = 1
    result = await run_cli("login")
    assert result.exit_code == 0, result.output
    assert cache.load().subject == "alice"
    assert stat.S_IMODE(settings.token_file.stat().st_mode) == 0o600


async def test_debug_logs_go_to_stderr_never_stdout(run_cli, identity_peer, cache) -> None:
    cache.save(identity_peer.token_set(expires_at=time.time() + 5))
    result = await run_cli("token", SEALFLOW_CLIENT_LOG_LEVEL="debug")
    assert result.exit_code == 0, result.output
    assert result.stdout == cache.load().access_token + "\n"
    assert "access_token_refreshed" in result.stderr


async def test_jobs_says_when_there_are_none(run_cli, signed_in) -> None:
    assert (await run_cli("jobs")).stdout == "No jobs.\n"
    assert (await run_cli("jobs", "--state", "failed")).stdout == "No failed jobs.\n"
