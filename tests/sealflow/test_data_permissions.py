"""Issue 11.7: what the daemons write under SEALFLOW_DATA_DIR is private, whatever the umask."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.log import AuditLog
from broker.auditing import make_audit_event
from broker.revocation import RevocationList
from broker.spent_ids_journal import SpentIdsJournal
from identity.store import IdentityStore
from keys import KeyRing
from schemas import Revocation
from store import BlobStore, NewJob, open_store


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def ambient_umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The umask a careless shell or service manager hands the process, restored afterwards."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _modes(root: Path) -> dict[str, int]:
    """The permission bits of ``root`` and of everything under it, by relative path."""
    found = {".": stat.S_IMODE(root.lstat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _assert_private(root: Path) -> None:
    wrong = {
        name: f"{mode:04o}"
        for name, mode in _modes(root).items()
        if mode != (0o700 if (root / name).is_dir() else 0o600)
    }
    assert wrong == {}, f"not private (directories 0700, files 0600): {wrong}"


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_every_daemon_writer_makes_private_files(tmp_path: Path, ambient_umask: int) -> None:
    """Blobs, jobs.db with its -wal, the audit log, both journals, the identity database."""
    data_dir = tmp_path / "var"
    blobs = BlobStore(data_dir / "blobs")
    sha = blobs.put(b"%PDF-1.7 a confidential document")
    await blobs.put_stream(_chunks(b"another confidential document"), max_bytes=1 << 20)
    store = await open_store(None, data_dir)
    try:
        job = NewJob("j1", "alice", "a.pdf", "application/pdf", 32, sha)
        await store.create(job)
        assert (data_dir / "jobs.db-wal").exists()
        _assert_private(data_dir)
    finally:
        await store.close()
    ring = KeyRing.create(tmp_path / "keys", "audit")
    log = AuditLog.open(data_dir / "audit", signer=ring.signing_key(), checkpoint_every=1)
    try:
        event = make_audit_event(
            source="gateway",
            type="job.submitted",
            action="submit",
            outcome="success",
            actor="alice",
        )
        log.append([event])
        log.checkpoint()
    finally:
        log.close()
    journal = SpentIdsJournal(data_dir / "replay" / "worker.jtis")
    journal.append(secrets.token_hex(16), 4e9)
    journal.flush()
    journal.compact([(secrets.token_hex(16), 4e9, False)])
    journal.close()
    RevocationList(journal=data_dir / "revocations.jsonl").add(
        Revocation(
            revocation_id=secrets.token_hex(16),
            kind="sub",
            value="mallory",
            reason="test",
            issued_at=datetime.now(UTC),
        )
    )
    identity = await IdentityStore.open(data_dir / "identity" / "identity.sqlite3")
    await identity.close()
    _assert_private(data_dir)


async def test_an_older_world_readable_install_is_tightened(tmp_path: Path) -> None:
    """A var/ left 0755 with jobs.db 0644 by an older version is made private on open."""
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    (data_dir / "jobs.db").touch()
    (data_dir / "jobs.db").chmod(0o644)
    store = await open_store(None, data_dir)
    await store.close()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "jobs.db").stat().st_mode) == 0o600


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_the_sealflow_entry_point_makes_private_directories(tmp_path: Path, umask: int) -> None:
    """`sealflow keys init` (as `make up` runs it) no longer leaves var/ 0755 under umask 022."""
    keys_dir = tmp_path / "var" / "keys"
    result = subprocess.run(
        [sys.executable, "-m", "sealflow", "keys", "init", "--keys-dir", str(keys_dir)],
        capture_output=True,
        check=False,
        timeout=60,
        preexec_fn=lambda: os.umask(umask),
    )
    assert result.returncode == 0, result.stderr
    for directory in (tmp_path / "var", keys_dir, keys_dir / "gateway"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
