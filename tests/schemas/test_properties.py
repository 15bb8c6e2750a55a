"""Property: any valid JobSubmitted survives model_dump_json → model_validate_json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from schemas import MAX_BLOB_BYTES, JobSubmitted

_PRINTABLE = st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
_FILENAME_CHAR = st.characters(
    exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"), exclude_characters="/\\"
)
_MEDIA_NAME = st.from_regex(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,40}", fullmatch=True)

_timezones = st.one_of(
    st.just(UTC),
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    ),
)

job_submitted = st.builds(
    JobSubmitted,
    job_id=st.uuids(version=4).map(lambda value: value.hex),
    owner=st.text(_PRINTABLE, min_size=1, max_size=255),
    filename=st.text(_FILENAME_CHAR, min_size=1, max_size=255).filter(lambda name: name.strip(".")),
    content_type=st.tuples(_MEDIA_NAME, _MEDIA_NAME).map("/".join),
    size=st.integers(min_value=0, max_value=MAX_BLOB_BYTES),
    blob_sha256=st.binary(min_size=32, max_size=32).map(bytes.hex),
    submitted_at=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30), timezones=_timezones
    ),
)


@given(job_submitted)
def test_job_submitted_round_trips_through_json(message: JobSubmitted) -> None:
    raw = message.model_dump_json()
    again = JobSubmitted.model_validate_json(raw)
    assert again == message
    assert again.model_dump_json() == raw


@given(job_submitted)
def test_job_submitted_round_trips_through_python(message: JobSubmitted) -> None:
    assert JobSubmitted.model_validate(message.model_dump()) == message
