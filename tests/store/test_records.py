"""Input records validate themselves, so nothing ill-formed or unbounded reaches SQLite."""

from __future__ import annotations

import pytest

from store import NewJob, NewResult, ResultChunk

_SHA = "ab" * 32


def _job(**overrides: object) -> NewJob:
    fields: dict[str, object] = {
        "job_id": "j",
        "owner": "alice",
        "filename": "a.txt",
        "content_type": "text/plain",
        "size": 1,
        "blob_sha256": _SHA,
    }
    fields.update(overrides)
    return NewJob(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("job_id", ""),
        ("job_id", "x" * 129),
        ("owner", ""),
        ("filename", "a\x00b"),
        ("filename", "f" * 1025),
        ("filename", "bad\udcff"),
        ("size", -1),
        ("size", True),
        ("blob_sha256", "../../etc/passwd"),
        ("blob_sha256", _SHA.upper()),
        ("trace", "t" * 129),
    ],
)
def test_new_job_rejects_bad_fields(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field.split("_")[-1]):
        _job(**{field: value})


def test_new_job_accepts_valid_fields() -> None:
    assert _job(trace=None).size == 1


@pytest.mark.parametrize(
    ("index", "start", "end", "page"),
    [(-1, 0, 1, None), (0, -1, 1, None), (0, 5, 4, None), (0, 0, 1, -2)],
)
def test_result_chunk_rejects_bad_offsets(
    index: int, start: int, end: int, page: int | None
) -> None:
    with pytest.raises(ValueError, match=r"(?i)chunk"):
        ResultChunk(index=index, start=start, end=end, page=page)


def _chunk(index: int, start: int, end: int) -> ResultChunk:
    return ResultChunk(index=index, start=start, end=end)


def _result(**overrides: object) -> NewResult:
    fields: dict[str, object] = {
        "text": "hello world",
        "metadata": {},
        "chunks": (_chunk(0, 0, 5), _chunk(1, 6, 11)),
        "pages": None,
        "parser": "text",
    }
    fields.update(overrides)
    return NewResult(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"chunks": (_chunk(0, 0, 12),)}, "past the end"),
        ({"chunks": (_chunk(0, 0, 1), _chunk(0, 1, 2))}, "twice"),
        ({"metadata": {"k": float("nan")}}, "finite"),
        ({"metadata": {"k": [1, 2]}}, "must be str"),
        ({"metadata": {"k": "v" * 20_000}}, "longer"),
        ({"metadata": {f"k{i}": i for i in range(300)}}, "more than"),
        ({"text": "bad\ud800"}, "Unicode"),
        ({"parser": ""}, "parser"),
        ({"pages": -1}, "pages"),
    ],
)
def test_new_result_rejects_bad_fields(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _result(**overrides)


def test_new_result_accepts_valid_fields() -> None:
    assert len(_result(metadata={"a": 1, "b": 1.5, "c": True, "d": None, "e": "x"}).chunks) == 2
