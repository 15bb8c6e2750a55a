"""Safe file names for uploads: the client's name is a label, never a path.

Path parts (``/`` and ``\\``), control and format characters (NUL, bidi overrides), line
separators and leading or trailing dots and spaces are removed; the result is at most
``MAX_FILENAME_CHARS`` characters, keeping a short extension. What is left always passes
``schemas.SafeFilename`` (the type ``job.submitted`` carries).
"""

from __future__ import annotations

import unicodedata
from typing import Final

from pydantic import TypeAdapter, ValidationError

from schemas import SafeFilename

__all__ = ["FALLBACK_FILENAME", "MAX_FILENAME_CHARS", "safe_filename"]

MAX_FILENAME_CHARS: Final = 255
MAX_EXTENSION_CHARS: Final = 16
FALLBACK_FILENAME: Final = "upload"
_MAX_INPUT_CHARS: Final = 16_384  # aiohttp caps a header at 8190 bytes anyway
_SAFE: Final = TypeAdapter(SafeFilename)


def _printable(ch: str) -> bool:
    category = unicodedata.category(ch)
    return not (category.startswith("C") or category in {"Zl", "Zp"})


def _shorten(name: str) -> str:
    if len(name) <= MAX_FILENAME_CHARS:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and 0 < len(extension) <= MAX_EXTENSION_CHARS:
        return stem[: MAX_FILENAME_CHARS - len(extension) - 1].rstrip(" .") + "." + extension
    return name[:MAX_FILENAME_CHARS].rstrip(" .")


def safe_filename(raw: str | None) -> str:
    """The last path segment of ``raw``, cleaned; ``FALLBACK_FILENAME`` if nothing is left."""
    if not raw:
        return FALLBACK_FILENAME
    name = unicodedata.normalize("NFC", raw[:_MAX_INPUT_CHARS])
    name = "".join(ch for ch in name if _printable(ch))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _shorten(name.strip(" .\t"))
    try:
        return _SAFE.validate_python(name)
    except ValidationError:
        return FALLBACK_FILENAME
