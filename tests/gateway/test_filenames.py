"""Upload file names are labels, never paths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from gateway.filenames import safe_filename
from schemas import SafeFilename

_SAFE = TypeAdapter(SafeFilename)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\x", "x"),
        ("/etc/shadow", "shadow"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("a\x00b.txt", "ab.txt"),
        ("line\nbreak.txt", "linebreak.txt"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ("..", "upload"),
        ("...", "upload"),
        (" ", "upload"),
        ("", "upload"),
        (None, "upload"),
        (".bashrc", "bashrc"),
        ("trailing. ", "trailing"),
        ("café.md", "café.md"),
        ("cafe\u0301.md", "café.md"),  # NFC
    ],
)
def test_examples(raw: str | None, expected: str) -> None:
    assert safe_filename(raw) == expected


def test_a_very_long_name_is_cut_to_255_keeping_a_short_extension() -> None:
    name = safe_filename("x" * 10_000 + ".markdown")
    assert len(name) == 255
    assert name.endswith(".markdown")
    assert len(safe_filename("y" * 10_000)) == 255


@given(st.text(max_size=600))
def test_any_input_gives_a_safe_filename(raw: str) -> None:
    name = safe_filename(raw)
    assert _SAFE.validate_python(name) == name
    assert "/" not in name
    assert "\\" not in name
    assert "\x00" not in name
    assert name not in {".", ".."}
    assert len(name) <= 255
