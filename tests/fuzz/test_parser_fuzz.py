"""Fuzzing ``parse_bytes`` with mutated valid documents of every format (text, Markdown, HTML,
JSON, CSV, PDF), declared with their own or another type: a parse only ever returns a document
within its limits or raises ``ParseError`` with one of the known reasons.

Time and memory are bounded by ``DocumentParser``'s process (tests/parser/test_bounds.py);
here the parse runs in-process so that hypothesis can shrink what it finds.
Default suite: ``DEFAULT_EXAMPLES`` inputs per format; ``-m slow``: ``SLOW_EXAMPLES``.
"""

from __future__ import annotations

import json
import os

import pytest
from documents_testing import text_pdf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parser import ParsedDocument, ParseError, ParseLimits, parse_bytes
from parser.errors import PARSE_ERROR_REASONS

pytestmark = pytest.mark.timeout(3600)  # the slow variants run for many minutes
DEFAULT_EXAMPLES = 100
SLOW_EXAMPLES = int(os.environ.get("SEALFLOW_FUZZ_EXAMPLES", "10000")) // 2
LIMITS = ParseLimits(
    max_input_bytes=64 * 1024, max_pages=4, max_output_chars=20_000, max_chunks=40, chunk_chars=200
)
_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


_PDF_METADATA = {"/Title": "fuzz seed", "/Author": "sealflow"}
"""The PDF seeds carry an Info dictionary, so mutations reach the metadata path too."""


SEEDS: dict[str, tuple[str, list[bytes]]] = {
    "text": (
        "text/plain",
        [b"plain words\nsecond line\n\n\tthird\r\n", "caf\u00e9 \u2603\n".encode()],
    ),
    "markdown": (
        "text/markdown",
        [
            b"# Title\n\nSome *emphasis* and `code`.\n\n- a\n- b\n\n```py\nx = 1\n```\n",
            b"> quote\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[link](http://x) ![img](y.png)\n",
        ],
    ),
    "html": (
        "text/html",
        [
            b"<!doctype html><html><head><title>T</title><style>p{}</style>"
            b"<script>evil()</script></head><body><h1>Head</h1><p>para &amp; more</p>"
            b"<ul><li>one</li><li>two</li></ul><table><tr><td>c</td></tr></table></body></html>",
            b"<p>unclosed <b>bold <i>it</p><!-- comment --><iframe src=x></iframe>",
        ],
    ),
    "json": (
        "application/json",
        [
            json.dumps(
                {"title": "doc", "n": [1, 2.5, None, True], "nested": {"k": "v" * 20}}
            ).encode(),
            b'[{"a": "\\u00e9"}, [], {}, "str", 1e10]',
        ],
    ),
    "csv": (
        "text/csv",
        [
            b'name,words,n\nrow,"quoted, comma",3\n"multi\nline",x,4\n',
            b"a;b;c\n1;2;3\n;;\n",
        ],
    ),
    "pdf": (
        "application/pdf",
        [
            text_pdf("first page words", metadata=_PDF_METADATA),
            text_pdf("one", "two (x)", compress=True, metadata=_PDF_METADATA),
        ],
    ),
}
TYPES = sorted({ctype for ctype, _ in SEEDS.values()} | {"application/octet-stream"})


@st.composite
def _mutated(draw: st.DrawFn, fmt: str) -> tuple[bytes, str, str]:
    content_type, seeds = SEEDS[fmt]
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(
            st.sampled_from(["flip", "byte", "insert", "delete", "splice", "truncate", "repeat"])
        )
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if choice == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif choice == "byte" and data:
            data[i] = draw(
                st.sampled_from(
                    [0, 0x0A, 0x22, 0x28, 0x29, 0x3C, 0x3E, 0x7B, 0x7D, 0x80, 0xC3, 0xFF]
                )
            )
        elif choice == "insert":
            data[i:i] = draw(
                st.sampled_from(
                    [
                        b"<",
                        b"{",
                        b"[",
                        b'"',
                        b"\\",
                        b"\x00",
                        b"\xef\xbb\xbf",
                        b"obj",
                        b"endstream",
                        b"\n,\n",
                    ]
                )
                | st.binary(max_size=16)
            )
        elif choice == "delete":
            j = draw(st.integers(i, min(len(data), i + 64)))
            del data[i:j]
        elif choice == "splice":
            j = draw(st.integers(i, min(len(data), i + 256)))
            k = draw(st.integers(0, len(data)))
            data[k:k] = data[i:j]
        elif choice == "truncate":
            del data[i:]
        else:
            j = draw(st.integers(i, min(len(data), i + 32)))
            data[j:j] = data[i:j] * draw(st.integers(1, 200))
    declared = draw(st.sampled_from([content_type, content_type, *TYPES]))
    filename = draw(
        st.sampled_from(["doc", "doc.txt", "doc.md", "doc.html", "doc.json", "doc.csv", "doc.pdf"])
    )
    return bytes(data[: LIMITS.max_input_bytes * 2]), declared, filename


def _check(document: ParsedDocument) -> None:
    assert len(document.text) <= LIMITS.max_output_chars
    assert len(document.chunks) <= LIMITS.max_chunks
    if document.pages is not None:
        assert 0 <= document.pages <= LIMITS.max_pages
    previous_end = 0
    for index, chunk in enumerate(document.chunks):
        assert chunk.index == index
        assert previous_end <= chunk.start < chunk.end <= len(document.text)
        previous_end = chunk.end
    for key, value in document.metadata.items():
        assert isinstance(key, str)
        assert value is None or isinstance(value, str | int | float | bool)


def _parse(sample: tuple[bytes, str, str]) -> None:
    data, content_type, filename = sample
    reason: str | None = None
    try:
        document = parse_bytes(data, content_type, filename, LIMITS)
    except ParseError as error:
        reason = error.reason
    if reason is None:
        _check(document)
    else:
        assert reason in PARSE_ERROR_REASONS


def _test(fmt: str, examples: int) -> object:
    def run(sample: tuple[bytes, str, str]) -> None:
        _parse(sample)

    run.__name__ = f"fuzz_{fmt}"
    return settings(max_examples=examples, **_SETTINGS)(given(sample=_mutated(fmt))(run))


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_mutated_documents_parse_or_fail_with_a_reason(fmt: str) -> None:
    _test(fmt, DEFAULT_EXAMPLES)()  # type: ignore[operator]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_mutated_documents_parse_or_fail_with_a_reason_slow(fmt: str) -> None:
    _test(fmt, SLOW_EXAMPLES)()  # type: ignore[operator]


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_the_seed_documents_parse(fmt: str) -> None:
    """The fuzz's control: every unmutated seed parses to some text."""
    content_type, seeds = SEEDS[fmt]
    for seed in seeds:
        document = parse_bytes(seed, content_type, "seed", LIMITS)
        _check(document)
        assert document.text.strip()
