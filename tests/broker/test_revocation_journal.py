"""The revocation journal: what a daemon applied is enforced again by a daemon that starts later."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker import RevocationList
from schemas import Revocation

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _revocation(kind: str, value: str, until: datetime | None = None) -> Revocation:
    return Revocation(
        revocation_id=secrets.token_hex(16),
        kind=kind,  # type: ignore[arg-type]
        value=value,
        reason="test",
        issued_at=NOW,
        until=until,
    )


def test_a_new_list_on_the_same_journal_enforces_what_the_first_applied(tmp_path: Path) -> None:
    journal = tmp_path / "revocations.jsonl"
    first = RevocationList(journal=journal)
    first.add(_revocation("sub", "mallory"))
    first.add(_revocation("jti", "a" * 32, until=NOW + timedelta(hours=1)))
    first.add(_revocation("sub", "lapsed", until=NOW + timedelta(seconds=1)))

    later = RevocationList(journal=journal)
    now = (NOW + timedelta(minutes=1)).timestamp()
    assert later.restore(now) == 2
    assert later.revoked(kid="k", jti="b" * 32, sub="mallory", now=now) == "sub"
    assert later.revoked(kid="k", jti="a" * 32, sub="alice", now=now) == "jti"
    assert later.revoked(kid="k", jti="b" * 32, sub="lapsed", now=now) is None


def test_a_revocation_applied_twice_is_journaled_once_and_damage_is_skipped(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "revocations.jsonl"
    revocations = RevocationList(journal=journal)
    revocation = _revocation("sub", "mallory")
    revocations.add(revocation)
    revocations.add(revocation)
    with journal.open("ab") as handle:
        handle.write(b'{"torn": \n')
    assert len(journal.read_bytes().splitlines()) == 2
    assert RevocationList(journal=journal).restore(NOW.timestamp()) == 1
