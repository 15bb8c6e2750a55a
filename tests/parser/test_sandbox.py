"""The sandbox holds against a parse that attacks it: each attack in ``hostile_parses``."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import hostile_parses
import pytest

from parser import ParsedDocument, ParseError, ParseLimits
from parser.protocol import decode_response, encode_request
from parser.sandbox import SandboxProcess
from parser.sandbox_main import ParseFunction

pytestmark = pytest.mark.timeout(90)

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")


def _run(parse: ParseFunction, target: str, limits: ParseLimits | None = None) -> str:
    """Run ``parse`` once in a fresh sandbox on ``target``; the text it answered."""
    sandbox = SandboxProcess.start(limits or ParseLimits(), 30, user="nobody", parse=parse)
    try:
        payload = sandbox.exchange(encode_request("text/plain", target), b"x")
    finally:
        sandbox.close()
    outcome = decode_response(payload).outcome
    assert isinstance(outcome, ParsedDocument), outcome
    return outcome.text


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A world-readable directory outside the test's private tmp tree (which is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="sealflow-sandbox-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@as_root
def test_a_sandbox_started_by_root_is_nobody_in_no_directory_with_no_inherited_fds() -> None:
    uid, gid, groups, cwd, fds = _run(hostile_parses.report_identity, "").split("|")
    nobody = 65534
    assert (int(uid), int(gid), groups) == (nobody, nobody, "[]")
    assert cwd == repr(f"refused {errno.ENOENT}")
    assert len(json.loads(fds)) == 4, fds  # stdin, stdout, stderr (all /dev/null) and the pipe


def test_a_parse_cannot_start_a_process() -> None:
    assert _run(hostile_parses.fork, "") == f"refused {errno.EAGAIN}"


def test_a_parse_cannot_write_a_file(open_dir: Path) -> None:
    target = open_dir / "big"
    open_dir.chmod(0o777)
    assert _run(hostile_parses.write_big_file, str(target)).startswith("refused")
    assert not target.exists() or target.stat().st_size == 0


def test_a_parse_cannot_open_many_files() -> None:
    answer = _run(hostile_parses.open_many_files, "")
    assert answer.startswith(f"refused {errno.EMFILE} after "), answer
    assert int(answer.rsplit(" ", 1)[1]) < 32


def test_a_parse_cannot_read_a_private_key_or_a_world_readable_blob(open_dir: Path) -> None:
    key = open_dir / "keys" / "worker" / "es256-key.pem"
    blob = open_dir / "blobs" / "ab" / ("ab" + "0" * 62)
    for path, mode in ((key, 0o600), (blob, 0o644)):
        path.parent.mkdir(parents=True)
        path.parent.chmod(0o755)
        path.write_bytes(b"secret")
        path.chmod(mode)
    assert _run(hostile_parses.read_file, str(key)) == f"refused {errno.EACCES}"
    assert _run(hostile_parses.read_file, str(blob)) == f"refused {errno.EACCES}"


def test_a_parse_cannot_reach_the_network() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        answer = _run(hostile_parses.connect_to, str(port))
    assert answer.startswith("refused"), answer


def test_a_parse_that_ignores_sigxcpu_is_killed_at_the_hard_cpu_limit() -> None:
    limits = ParseLimits(timeout_seconds=0.5, sandbox_cpu_seconds=4)
    sandbox = SandboxProcess.start(limits, 30, user="nobody", parse=hostile_parses.burn_cpu)
    with ThreadPoolExecutor(1) as pool:
        exchange = pool.submit(sandbox.exchange, encode_request("text/plain", ""), b"x")
        try:
            with pytest.raises((EOFError, OSError)):
                exchange.result(timeout=30)
        except FutureTimeout:
            pytest.fail("the sandbox burnt CPU for 30 s and was not stopped")
        finally:
            exit_code = sandbox.wait(30)
            sandbox.kill()
            exchange.exception(timeout=30)
            sandbox.close()
    assert exit_code == -signal.SIGKILL


def test_a_sandbox_whose_cpu_budget_cannot_cover_another_parse_answers_then_quits() -> None:
    limits = ParseLimits(timeout_seconds=3, sandbox_cpu_seconds=6)
    sandbox = SandboxProcess.start(
        limits, 30, user="nobody", parse=hostile_parses.burn_two_cpu_seconds
    )
    try:
        answer = decode_response(sandbox.exchange(encode_request("text/plain", ""), b"x"))
        assert answer.exiting
        assert isinstance(answer.outcome, ParsedDocument)
        assert sandbox.wait(30) == 0
    finally:
        sandbox.close()


@as_root
def test_a_sandbox_told_to_run_as_root_refuses_to_start_and_says_why() -> None:
    with pytest.raises(ParseError) as caught:
        SandboxProcess.start(ParseLimits(), 30, user="root")
    assert caught.value.reason == "internal"
    assert "refused to start" in caught.value.detail
    assert "'root' is root" in caught.value.detail
