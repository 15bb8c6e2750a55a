"""Several SQLite connections of one process and another process share one WAL safely."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

from store import NewJob, SqliteJobStore


def _job() -> NewJob:
    return NewJob(
        job_id=secrets.token_hex(16),
        owner="alice",
        filename="a.txt",
        content_type="text/plain",
        size=1,
        blob_sha256="0" * 64,
        trace=None,
    )


async def test_another_process_closing_its_store_keeps_this_process_wal(tmp_path: Path) -> None:
    """Opening a second store in this process must not drop the first one's SQLite locks: when
    another process then closes its last connection, it would delete the WAL under this one,
    and each side would stop seeing the other's commits (a worker restart lost jobs this way)."""
    path = tmp_path / "jobs.db"
    first = await SqliteJobStore.open(path)
    second = await SqliteJobStore.open(path)  # re-prepares the file while `first` is open
    try:
        other = textwrap.dedent(
            f"""
            import asyncio
            from store import SqliteJobStore
            async def main():
                store = await SqliteJobStore.open({str(path)!r})
                await store.close()
            asyncio.run(main())
            """
        )
        subprocess.run([sys.executable, "-c", other], check=True, timeout=60)
        assert path.with_name("jobs.db-wal").exists()
        job = _job()
        await first.create(job)
        seen = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                "print(c.execute('select count(*) from jobs where job_id = ?', "
                "(sys.argv[2],)).fetchone()[0])",
                str(path),
                job.job_id,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert seen.stdout.strip() == "1"
        assert await asyncio.wait_for(second.get(job.job_id), 10) is not None
    finally:
        await first.close()
        await second.close()
