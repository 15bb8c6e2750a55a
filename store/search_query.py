"""Turn an untrusted search string into a safe query: its words only, never query syntax.

Every run of letters and digits is a term. For FTS5 each becomes a double-quoted string,
joined by spaces (implicit AND); for PostgreSQL the terms, joined by spaces, are given to
``plainto_tsquery``, which ANDs them and reads no operator. Quotes, ``*``, ``^``, ``:``,
parentheses, ``NEAR``, ``AND``/``OR``/``NOT``, ``&``, ``|``, ``!`` and control characters
are therefore never syntax on either backend: ``OR`` is searched as a word.
"""

from __future__ import annotations

import re

__all__ = ["MAX_QUERY_CHARS", "MAX_QUERY_TERMS", "query_terms", "to_fts5_query"]

MAX_QUERY_CHARS = 1_000
MAX_QUERY_TERMS = 32

# Letters and digits only: ``\w`` minus the underscore, which FTS5's tokenizer separates on.
_TERM = re.compile(r"[^\W_]+")


def query_terms(text: str) -> list[str]:
    """The searchable terms of ``text``, in order.

    Only the first ``MAX_QUERY_CHARS`` characters and ``MAX_QUERY_TERMS`` terms count, which
    bounds the work one query can ask of the index.
    """
    return list(_TERM.findall(text[:MAX_QUERY_CHARS])[:MAX_QUERY_TERMS])


def to_fts5_query(text: str) -> str | None:
    """The FTS5 expression for ``text``, or None when it has no searchable term."""
    terms = query_terms(text)
    if not terms:
        return None
    return " ".join(f'"{term}"' for term in terms)
