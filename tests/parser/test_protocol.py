"""The sandbox's answers are checked before the parent believes them."""

from __future__ import annotations

import json

import pytest

from parser import ParsedDocument, ParseError
from parser.protocol import decode_response, encode_document, encode_failure
from schemas import Chunk


def _answer(document: dict[str, object]) -> bytes:
    return json.dumps({"document": document}).encode()


def _good() -> dict[str, object]:
    return {
        "text": "abc def",
        "metadata": {"k": 1},
        "chunks": [[0, 0, 7, None]],
        "pages": None,
        "parser": "text",
    }


def test_documents_round_trip() -> None:
    doc = ParsedDocument(
        "a\ufffd b",
        {"t": "x", "n": 1, "f": 0.5, "b": True, "z": None},
        (Chunk(index=0, start=0, end=4, page=1),),
        1,
        "pdf",
    )
    answer = decode_response(encode_document(doc, exiting=False))
    assert answer.outcome == doc
    assert not answer.exiting
    assert decode_response(encode_document(doc, exiting=True)).exiting


def test_failures_round_trip_with_the_exit_flag() -> None:
    answer = decode_response(encode_failure(ParseError("too_large", "big"), exiting=True))
    assert isinstance(answer.outcome, ParseError)
    assert answer.outcome.reason == "too_large"
    assert answer.outcome.detail == "big"
    assert answer.exiting


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80not json",
        b"[" * 100_000,
        b"[]",
        json.dumps({"error": {"reason": "pwned", "detail": "x"}}).encode(),
        _answer({**_good(), "text": 5}),
        _answer({**_good(), "metadata": {"k": [1]}}),
        _answer({**_good(), "chunks": [[0, 0, 99, None]]}),
        _answer({**_good(), "chunks": [[1, 0, 3, None]]}),
        _answer({**_good(), "chunks": [[0, 3, 3, None]]}),
        _answer({**_good(), "chunks": [[0, 0, 3, None], [1, 2, 5, None]]}),
        _answer({**_good(), "chunks": [[0, True, 3, None]]}),
        _answer({**_good(), "pages": "2"}),
        _answer({**_good(), "chunks": [[0, 0, 3, 0]]}),
    ],
)
def test_malformed_answers_are_internal_errors(payload: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        decode_response(payload)
    assert caught.value.reason == "internal"
    assert not caught.value.permanent
