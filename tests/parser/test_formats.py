"""Each format, well-formed and malformed, parsed in-process with ``parse_bytes``."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from parser import ParseError, ParseLimits, parse_bytes


def _fails(data: bytes, content_type: str, filename: str, limits: ParseLimits | None = None) -> str:
    with pytest.raises(ParseError) as caught:
        parse_bytes(data, content_type, filename, limits or ParseLimits())
    return caught.value.reason


# --- plain text ---------------------------------------------------------------------------


def test_plain_text_normalises_newlines() -> None:
    doc = parse_bytes(b"one\r\ntwo\rthree\n", "text/plain", "a.txt")
    assert doc.text == "one\ntwo\nthree\n"
    assert doc.parser == "text"
    assert doc.pages is None
    assert doc.metadata["lines"] == 3
    assert doc.metadata["content_type"] == "text/plain"
    assert [(c.start, c.end) for c in doc.chunks] == [(0, 13)]


def test_empty_text_has_no_chunks() -> None:
    doc = parse_bytes(b"", "text/plain", "empty.txt")
    assert doc.text == ""
    assert doc.chunks == ()


# --- Markdown -----------------------------------------------------------------------------

MARKDOWN = b"""# The *Sealflow* manual

Read [the design](https://example.org/design) or <https://example.org>.

## Install

![logo](logo.png)

# Second h1
"""


def test_markdown_keeps_the_source_and_reads_structure() -> None:
    doc = parse_bytes(MARKDOWN, "text/markdown", "manual.md")
    assert doc.text == MARKDOWN.decode()
    assert doc.parser == "markdown"
    assert doc.metadata["title"] == "The Sealflow manual"
    assert doc.metadata["headings"] == 3
    assert doc.metadata["links"] == 2
    assert doc.metadata["images"] == 1


def test_markdown_without_h1_has_no_title() -> None:
    doc = parse_bytes(b"## only h2\n\ntext", "text/markdown", "a.md")
    assert doc.metadata["title"] is None


def test_markdown_nested_very_deeply_still_parses() -> None:
    doc = parse_bytes(b">" * 50_000 + b" deep", "text/markdown", "deep.md")
    assert doc.text.endswith("deep")


# --- HTML ---------------------------------------------------------------------------------

HTML = b"""<!doctype html>
<html lang="en-GB"><head><title>  Quarterly
 report </title><style>p { color: red }</style>
<script>var secret = "SCRIPT";</script></head>
<body>
<h1>Results</h1>
<p>Revenue <b>grew</b> by 3&nbsp;%.</p>
<template><p>TEMPLATE</p></template>
<noscript>NOSCRIPT</noscript>
<div hidden>HIDDEN</div><div style="display: none">INVISIBLE</div>
<ul><li>one</li><li>two</li></ul>
<img src="https://example.org/tracker.png" alt="tracker">
</body></html>"""


def test_html_yields_visible_text_only() -> None:
    doc = parse_bytes(HTML, "text/html", "report.html")
    assert doc.parser == "html"
    assert doc.text == "Results\n\nRevenue grew by 3\xa0%.\n\none\ntwo"
    for hidden in ("SCRIPT", "TEMPLATE", "NOSCRIPT", "HIDDEN", "INVISIBLE", "color", "report"):
        assert hidden not in doc.text
    assert doc.metadata["title"] == "Quarterly report"
    assert doc.metadata["lang"] == "en-GB"


def test_html_with_only_script_has_no_text() -> None:
    doc = parse_bytes(b"<script>alert('x')</script>", "text/html", "x.html")
    assert doc.text == ""
    assert doc.chunks == ()
    assert doc.metadata["title"] is None


def test_html_nested_far_past_the_recursion_limit_is_walked() -> None:
    # 10 000 levels: ten times Python's recursion limit; lexbor's tree building is quadratic
    # in depth, so much deeper documents are left to the sandbox's time limit.
    data = b"<div>" * 10_000 + b"bottom" + b"</div>" * 10_000
    doc = parse_bytes(data, "text/html", "deep.html")
    assert doc.text == "bottom"


# --- JSON ---------------------------------------------------------------------------------


def test_json_is_flattened_into_path_lines() -> None:
    data = json.dumps(
        {"name": "Ada", "tags": ["x", "y"], "odd key": {"n": 1.5, "ok": True, "none": None}}
    ).encode()
    doc = parse_bytes(data, "application/json", "a.json")
    assert doc.parser == "json"
    assert doc.text.splitlines() == [
        "name: Ada",
        "tags[0]: x",
        "tags[1]: y",
        '["odd key"].n: 1.5',
        '["odd key"].ok: true',
        '["odd key"].none: null',
    ]
    assert doc.metadata["type"] == "object"
    assert doc.metadata["keys"] == 3
    assert doc.metadata["leaves"] == 6


def test_json_scalar_root_and_empty_containers() -> None:
    assert parse_bytes(b"42", "application/json", "a.json").text == "$: 42"
    doc = parse_bytes(b'[[], {}, "s"]', "application/json", "a.json")
    assert doc.text == "[0]: []\n[1]: {}\n[2]: s"
    assert doc.metadata["type"] == "array"
    assert doc.metadata["items"] == 3


def test_invalid_json_is_malformed() -> None:
    assert _fails(b'{"a": 1,,}', "application/json", "a.json") == "malformed"


def test_json_nested_100k_deep_is_malformed() -> None:
    assert _fails(b"[" * 100_000 + b"]" * 100_000, "application/json", "a.json") == "malformed"


def test_json_deeper_than_the_depth_limit_is_malformed() -> None:
    assert _fails(b"[" * 100 + b"1" + b"]" * 100, "application/json", "a.json") == "malformed"


def test_json_nan_is_malformed() -> None:
    assert _fails(b'{"a": NaN}', "application/json", "a.json") == "malformed"


def test_json_nul_escape_does_not_reach_the_text() -> None:
    doc = parse_bytes(b'{"a": "x\\u0000y\\ud800"}', "application/json", "a.json")
    assert doc.text == "a: xy\ufffd"


# --- CSV ----------------------------------------------------------------------------------


def test_csv_rows_are_joined_and_counted() -> None:
    data = b'name;city;note\nAda;London;"semi;colon"\nBob;Paris;\n'
    doc = parse_bytes(data, "text/csv", "people.csv")
    assert doc.parser == "csv"
    assert doc.text == "name | city | note\nAda | London | semi;colon\nBob | Paris | "
    assert doc.metadata["rows"] == 3
    assert doc.metadata["columns"] == 3
    assert doc.metadata["delimiter"] == ";"


def test_csv_with_an_enormous_field_is_malformed() -> None:
    data = b'a,b\n1,"' + b"x" * 2_000_000 + b'"\n'
    assert _fails(data, "text/csv", "huge.csv") == "malformed"


def test_csv_with_an_unterminated_quote_never_loads_past_the_field_limit() -> None:
    data = b'a,b\n1,"' + b"x," * 1_000_000
    assert _fails(data, "text/csv", "open.csv") == "malformed"


# --- PDF ----------------------------------------------------------------------------------


def test_pdf_text_metadata_and_paged_chunks(make_pdf: Callable[..., bytes]) -> None:
    data = make_pdf(
        ["First page says hello", "Second page says goodbye"],
        info={"Title": "Greetings", "Author": "Ada", "Producer": "handmade"},
    )
    doc = parse_bytes(data, "application/pdf", "greetings.pdf")
    assert doc.parser == "pdf"
    assert doc.pages == 2
    assert doc.text == "First page says hello\n\nSecond page says goodbye"
    assert doc.metadata["title"] == "Greetings"
    assert doc.metadata["author"] == "Ada"
    assert doc.metadata["producer"] == "handmade"
    assert doc.metadata["pages"] == 2
    assert [(doc.text[c.start : c.end], c.page) for c in doc.chunks] == [
        ("First page says hello", 1),
        ("Second page says goodbye", 2),
    ]


def test_compressed_pdf_is_read(make_pdf: Callable[..., bytes]) -> None:
    doc = parse_bytes(make_pdf(["squeezed"], compress=True), "application/pdf", "z.pdf")
    assert doc.text == "squeezed"


def test_pdf_chunks_never_span_pages(make_pdf: Callable[..., bytes]) -> None:
    pages = [" ".join(f"p{n}w{i}" for i in range(60)) for n in range(3)]
    doc = parse_bytes(make_pdf(pages), "application/pdf", "a.pdf", ParseLimits(chunk_chars=100))
    assert {c.page for c in doc.chunks} == {1, 2, 3}
    for chunk in doc.chunks:
        assert chunk.page is not None
        words = doc.text[chunk.start : chunk.end].split()
        assert all(word.startswith(f"p{chunk.page - 1}w") for word in words)


def test_pdf_with_a_user_password_is_encrypted(
    make_pdf: Callable[..., bytes], make_encrypted_pdf: Callable[..., bytes]
) -> None:
    data = make_encrypted_pdf(make_pdf(["secret"]), user_password="pw", owner_password="owner")
    assert _fails(data, "application/pdf", "locked.pdf") == "encrypted"


def test_pdf_with_only_an_owner_password_opens_like_in_a_viewer(
    make_pdf: Callable[..., bytes], make_encrypted_pdf: Callable[..., bytes]
) -> None:
    data = make_encrypted_pdf(make_pdf(["readable"]), user_password="", owner_password="owner")
    assert parse_bytes(data, "application/pdf", "restricted.pdf").text == "readable"


def test_truncated_pdf_is_malformed(make_pdf: Callable[..., bytes]) -> None:
    data = make_pdf(["complete text"])
    assert _fails(data[: len(data) // 2], "application/pdf", "cut.pdf") == "malformed"


def test_pdf_header_followed_by_garbage_is_malformed() -> None:
    assert _fails(b"%PDF-1.7\n" + b"\x00garbage" * 100, "application/pdf", "x.pdf") == "malformed"


def test_pdf_with_more_pages_than_allowed_is_too_large(make_pdf: Callable[..., bytes]) -> None:
    data = make_pdf(["one", "two", "three"])
    assert _fails(data, "application/pdf", "a.pdf", ParseLimits(max_pages=2)) == "too_large"
