"""AuditQuery: the one parser of the audit filters, used by the gateway and the audit daemon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.audit_query import DEFAULT_AUDIT_LIMIT, AuditQuery, AuditQueryError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_no_parameters_is_the_default_query() -> None:
    query = AuditQuery.parse([])
    assert query == AuditQuery()
    assert query.limit == DEFAULT_AUDIT_LIMIT
    assert query.params() == [("limit", str(DEFAULT_AUDIT_LIMIT))]


def test_every_filter_parses_and_passes_on_unchanged() -> None:
    raw = [
        ("type", "job.failed"),
        ("type", "envelope.rejected"),
        ("type", "job.failed"),
        ("actor", "root"),
        ("job", "a" * 32),
        ("since", "2h"),
        ("limit", "7"),
        ("after", "42"),
        ("unrelated", "ignored"),
    ]
    query = AuditQuery.parse(raw, now=NOW)
    assert query.types == ("job.failed", "envelope.rejected")
    assert query.since == NOW - timedelta(hours=2)
    assert (query.actor, query.job, query.limit, query.after) == ("root", "a" * 32, 7, 42)
    # What the gateway sends on is read back as the same query by the daemon.
    assert AuditQuery.parse(query.params()) == query


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T02:00:00+02:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("10m", NOW - timedelta(minutes=10)),
        ("1w", NOW - timedelta(weeks=1)),
    ],
)
def test_since_is_iso_8601_or_relative(since: str, expected: datetime) -> None:
    assert AuditQuery.parse([("since", since)], now=NOW).since == expected


@pytest.mark.parametrize(
    "raw",
    [
        [("limit", "0")],
        [("limit", "1001")],
        [("limit", "²")],
        [("limit", "1"), ("limit", "2")],
        [("after", "-1")],
        [("since", "yesterday")],
        [("since", "9" * 70)],
        [("job", "zz")],
        [("actor", "")],
        [("actor", "a\nb")],
        [("actor", "x" * 256)],
        [("type", "Not A Type")],
        [("type", f"t{i}") for i in range(21)],
    ],
)
def test_a_malformed_parameter_is_refused_with_its_name(raw: list[tuple[str, str]]) -> None:
    with pytest.raises(AuditQueryError) as caught:
        AuditQuery.parse(raw, now=NOW)
    assert raw[0][0] in str(caught.value)
