"""Spent envelope ids survive a restart through the replay journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from sealflow_testing import NOW, Env, job_message

from broker import ENVELOPE_HEADER, EnvelopeError, Reason, SpentIds, SpentIdsJournal, SpentState


def test_a_replay_after_a_restart_is_still_rejected(env: Env, tmp_path: Path) -> None:
    journal_path = tmp_path / "replay" / "worker.jtis"
    sealed = env.sealer("gateway").seal(
        job_message(), typ="job.submitted", aud="worker", sub="alice"
    )

    def open_with(cache: SpentIds) -> None:
        env.opener(spent=cache).open(
            sealed.body,
            {ENVELOPE_HEADER: sealed.token},
            message_id=sealed.jti,
            message_type=sealed.typ,
        )

    first = SpentIds(100, journal=SpentIdsJournal(journal_path))
    first.restore(NOW)
    open_with(first)
    first.complete(sealed.jti)
    first.flush(NOW)
    assert first.journal is not None
    first.journal.close()

    restarted = SpentIds(100, journal=SpentIdsJournal(journal_path))
    assert restarted.restore(NOW) == 1
    with pytest.raises(EnvelopeError) as caught:
        open_with(restarted)
    assert caught.value.reason is Reason.REPLAY


def test_an_id_is_journaled_on_first_sight_and_again_once_settled(tmp_path: Path) -> None:
    """Spent on first sight (issue 11.5): a crash while the handler runs forgets nothing."""
    path = tmp_path / "w.jtis"
    cache = SpentIds(10, journal=SpentIdsJournal(path))
    cache.claim("a" * 32, NOW + 100, NOW)
    cache.claim("b" * 32, NOW + 100, NOW)
    cache.complete("a" * 32)
    cache.flush(NOW)
    assert path.read_text() == (
        f"{'a' * 32} {NOW + 100:.3f} p\n{'b' * 32} {NOW + 100:.3f} p\n{'a' * 32} {NOW + 100:.3f}\n"
    )
    restarted = SpentIds(10, journal=SpentIdsJournal(tmp_path / "w.jtis"))
    assert restarted.restore(NOW) == 2
    assert restarted.state("a" * 32, NOW) is SpentState.DONE
    assert restarted.state("b" * 32, NOW) is SpentState.PENDING


def test_a_message_in_flight_at_a_crash_comes_back_only_as_the_brokers_redelivery(
    env: Env, tmp_path: Path
) -> None:
    """Its redelivery (flagged by the broker) is handled; a copy published meanwhile is not."""
    journal_path = tmp_path / "spent" / "worker.jtis"
    sealed = env.sealer("gateway").seal(job_message(), aud="worker", sub="alice")

    def open_with(cache: SpentIds, *, redelivered: bool) -> None:
        env.opener(spent=cache).open(
            sealed.body,
            {ENVELOPE_HEADER: sealed.token},
            message_id=sealed.jti,
            message_type=sealed.typ,
            redelivered=redelivered,
        )

    crashed = SpentIds(100, journal=SpentIdsJournal(journal_path))
    open_with(crashed, redelivered=False)
    crashed.flush(NOW)  # the periodic flush; then the process dies mid-handler

    restarted = SpentIds(100, journal=SpentIdsJournal(journal_path))
    restarted.restore(NOW)
    with pytest.raises(EnvelopeError) as caught:
        open_with(restarted, redelivered=False)
    assert caught.value.reason is Reason.REPLAY
    open_with(restarted, redelivered=True)


def test_expired_and_damaged_lines_are_dropped_on_load(tmp_path: Path) -> None:
    path = tmp_path / "w.jtis"
    path.write_text(
        f"{'a' * 32} {NOW - 1:.3f}\n"
        f"{'b' * 32} {NOW + 60:.3f}\n"
        "garbage line\n"
        f"{'c' * 32} {NOW + 30:.3f}"  # torn last line without newline is still whole here
        "\n\x00\x00\n"
    )
    cache = SpentIds(10, journal=SpentIdsJournal(path))
    assert cache.restore(NOW) == 2
    assert cache.state("b" * 32, NOW) is SpentState.DONE
    assert cache.state("a" * 32, NOW) is None
    assert sorted(path.read_text().split()) == sorted(
        ["b" * 32, f"{NOW + 60:.3f}", "c" * 32, f"{NOW + 30:.3f}"]
    )


def test_compaction_keeps_only_live_spent_ids(tmp_path: Path) -> None:
    path = tmp_path / "w.jtis"
    cache = SpentIds(100, journal=SpentIdsJournal(path, compact_after=5))
    for i in range(6):
        jti = f"{i:032x}"
        cache.claim(jti, NOW + (10 if i < 3 else 1000), NOW)
        cache.complete(jti)
    cache.flush(NOW + 100)  # the first three have expired by then
    lines = path.read_text().splitlines()
    assert [line.split()[0] for line in lines] == [f"{i:032x}" for i in range(3, 6)]
