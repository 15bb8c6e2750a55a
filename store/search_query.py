"""Turn an untrusted search string into a safe FTS5 MATCH expression.

Every run of letters and digits becomes a double-quoted FTS5 string, and the strings are
joined by spaces (implicit AND). Quotes, ``*``, ``^``, ``:``, parentheses, ``NEAR``,
``AND``/``OR``/``NOT`` and control characters are therefore never FTS5 syntax: words
such as ``OR`` are searched as words and punctuation is dropped.
"""

from __future__ import annotations

import re

__all__ = ["MAX_QUERY_CHARS", "MAX_QUERY_TERMS", "to_fts5_query"]

MAX_QUERY_CHARS = 1_000
MAX_QUERY_TERMS = 32

# Letters and digits only: ``\w`` minus the underscore, which FTS5's tokenizer separates on.
_TERM = re.compile(r"[^\W_]+")


def to_fts5_query(text: str) -> str | None:
    """The FTS5 expression for ``text``, or None when it has no searchable term.

    Only the first ``MAX_QUERY_CHARS`` characters and ``MAX_QUERY_TERMS`` terms count, which
    bounds the work one query can ask of the index.
    """
    terms = _TERM.findall(text[:MAX_QUERY_CHARS])[:MAX_QUERY_TERMS]
    if not terms:
        return None
    return " ".join(f'"{term}"' for term in terms)
