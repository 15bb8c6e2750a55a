"""iter_records and follow_records: filters, ``last``, segment roll-over, following a writer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from audit import AuditFilter, AuditLog, AuditLogError, follow_records, iter_records

JOB_A = "a" * 32
JOB_B = "b" * 32


@pytest.fixture
def populated(log_dir, make_event):
    events = [
        make_event(type="job.submitted", actor="alice", job=JOB_A),
        make_event(type="envelope.rejected", actor="worker", outcome="rejected"),
        make_event(type="job.completed", actor="worker", job=JOB_A),
        make_event(type="job.submitted", actor="bob", job=JOB_B),
        make_event(type="job.failed", actor="worker", job=JOB_B, outcome="failure"),
        make_event(type="envelope.rejected", actor="gateway", outcome="rejected"),
        make_event(type="job.submitted", actor="alice", job=JOB_B),
    ]
    with AuditLog.open(log_dir, signer=None, segment_max_records=3) as log:
        log.append(events)
    return log_dir


def _seqs(records):
    return [record.seq for record in records]


def test_iter_records_streams_every_record_across_segments(populated):
    assert _seqs(iter_records(populated)) == [1, 2, 3, 4, 5, 6, 7]


def test_filter_by_type(populated):
    flt = AuditFilter(types=frozenset({"envelope.rejected", "job.failed"}))
    assert _seqs(iter_records(populated, flt)) == [2, 5, 6]


def test_filter_by_actor_and_job_together(populated):
    assert _seqs(iter_records(populated, AuditFilter(actor="worker"))) == [2, 3, 5]
    assert _seqs(iter_records(populated, AuditFilter(job=JOB_B))) == [4, 5, 7]
    assert _seqs(iter_records(populated, AuditFilter(actor="worker", job=JOB_B))) == [5]


def test_filter_since_compares_with_the_record_time(populated):
    records = list(iter_records(populated))
    assert _seqs(iter_records(populated, AuditFilter(since=records[0].ts))) == _seqs(records)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert list(iter_records(populated, AuditFilter(since=later))) == []


def test_last_returns_the_last_matching_records_oldest_first(populated):
    assert _seqs(iter_records(populated, last=2)) == [6, 7]
    assert _seqs(iter_records(populated, last=5)) == [3, 4, 5, 6, 7]
    assert _seqs(iter_records(populated, AuditFilter(actor="worker"), last=2)) == [3, 5]
    assert _seqs(iter_records(populated, last=100)) == [1, 2, 3, 4, 5, 6, 7]
    assert list(iter_records(populated, last=0)) == []


def test_missing_directory_reads_as_empty(tmp_path):
    assert list(iter_records(tmp_path / "nowhere")) == []
    assert list(iter_records(tmp_path / "nowhere", last=5)) == []


def test_a_line_being_written_is_not_read(populated, files):
    with files.segment(3).open("ab") as file:
        file.write(b'{"seq":8,"ts":')
    assert _seqs(iter_records(populated)) == [1, 2, 3, 4, 5, 6, 7]
    assert _seqs(iter_records(populated, last=1)) == [7]


def test_a_damaged_line_raises_with_its_location(populated, files):
    lines = files.segment(2).read_text().splitlines()
    lines[1] = "not json"
    files.segment(2).write_text("\n".join(lines) + "\n")
    with pytest.raises(AuditLogError) as caught:
        list(iter_records(populated))
    assert caught.value.reason == "malformed_record"
    assert caught.value.location == "segment-000002.jsonl:2"


async def _collect(queue: asyncio.Queue, count: int) -> list[int]:
    seqs = []
    for _ in range(count):
        record = await asyncio.wait_for(queue.get(), timeout=5)
        seqs.append(record.seq)
    return seqs


async def _follow_into(queue, directory, flt, stop, *, last):
    async for record in follow_records(directory, flt, last=last, poll_interval=0.01, stop=stop):
        await queue.put(record)


async def test_follow_sees_records_appended_by_another_writer_across_roll_over(log_dir, make_event):
    with AuditLog.open(log_dir, signer=None, segment_max_records=3) as log:
        log.append([make_event() for _ in range(2)])
        queue: asyncio.Queue = asyncio.Queue()
        stop = asyncio.Event()
        task = asyncio.create_task(_follow_into(queue, log_dir, None, stop, last=1))
        assert await _collect(queue, 1) == [2]  # the backlog; the follower is now at the end
        log.append([make_event() for _ in range(3)])  # fills segment 1, rolls to segment 2
        assert await _collect(queue, 3) == [3, 4, 5]
        log.append([make_event() for _ in range(4)])  # rolls to segment 3
        assert await _collect(queue, 4) == [6, 7, 8, 9]
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert queue.empty()


async def test_follow_applies_the_filter(log_dir, make_event):
    with AuditLog.open(log_dir, signer=None) as log:
        queue: asyncio.Queue = asyncio.Queue()
        stop = asyncio.Event()
        flt = AuditFilter(actor="bob")
        log.append([make_event(actor="alice"), make_event(actor="bob")])
        task = asyncio.create_task(_follow_into(queue, log_dir, flt, stop, last=1))
        assert await _collect(queue, 1) == [2]  # the backlog; the follower is now at the end
        log.append([make_event(actor="alice"), make_event(actor="bob"), make_event(actor="eve")])
        log.append([make_event(actor="bob")])
        assert await _collect(queue, 2) == [4, 6]
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert queue.empty()


async def test_follow_waits_for_a_log_that_does_not_exist_yet(log_dir, make_event):
    queue: asyncio.Queue = asyncio.Queue()
    stop = asyncio.Event()
    task = asyncio.create_task(_follow_into(queue, log_dir, None, stop, last=10))
    with AuditLog.open(log_dir, signer=None) as log:
        log.append([make_event(), make_event()])
    assert await _collect(queue, 2) == [1, 2]
    stop.set()
    await asyncio.wait_for(task, timeout=5)


async def test_follow_stops_promptly_when_stop_is_set(log_dir, make_event):
    with AuditLog.open(log_dir, signer=None) as log:
        log.append([make_event()])
    stop = asyncio.Event()
    stop.set()
    records = [r async for r in follow_records(log_dir, None, last=5, poll_interval=60, stop=stop)]
    assert _seqs(records) == [1]


def test_following_from_the_end_skips_what_is_already_there(log_dir, make_event):
    from audit.follow import _Follower

    with AuditLog.open(log_dir, signer=None, segment_max_records=2) as log:
        log.append([make_event() for _ in range(3)])
        follower = _Follower(log_dir, None)
        follower.seek_end()
        assert follower.poll() == ([], False)
        log.append([make_event() for _ in range(2)])
        records, more = follower.poll()
    assert (_seqs(records), more) == ([4, 5], False)


def test_filter_since_must_be_timezone_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        AuditFilter(since=datetime(2025, 1, 1))


def test_after_keeps_later_records_and_stops_reading_at_its_segment(populated):
    assert _seqs(iter_records(populated, AuditFilter(after=4), last=100)) == [5, 6, 7]
    assert _seqs(iter_records(populated, AuditFilter(after=7), last=100)) == []
    (populated / "segment-000001.jsonl").write_text("garbage\n")  # never read: seq 4 is later
    assert _seqs(iter_records(populated, AuditFilter(after=4), last=100)) == [5, 6, 7]


def test_a_read_past_its_deadline_gives_up(populated):
    import time

    with pytest.raises(AuditLogError) as caught:
        list(
            iter_records(
                populated, AuditFilter(actor="nobody"), last=10, deadline=time.monotonic() - 1
            )
        )
    assert caught.value.reason == "read_timeout"
