"""Numeric bounds shared by the wire models, exported so producers can enforce them early."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

__all__ = [
    "MAX_ACTOR_DEPTH",
    "MAX_BLOB_BYTES",
    "MAX_CHUNKS",
    "MAX_DETAIL_CHARS",
    "MAX_DOCUMENT_BYTES",
    "MAX_DURATION_MS",
    "MAX_EPOCH_SECONDS",
    "MAX_KIDS",
    "MAX_METADATA_KEYS",
    "MAX_METADATA_VALUE_CHARS",
    "MAX_PAGES",
    "MAX_TEXT_CHARS",
    "MAX_TRUST_BUNDLE_CHARS",
    "BlobSize",
    "PageCount",
]

MAX_BLOB_BYTES: Final = 1 << 30
"""Largest uploaded document: 1 GiB."""

MAX_DOCUMENT_BYTES: Final = 16 * 1024 * 1024
"""Largest document read (uploaded, then parsed), of any format: 16 MiB. Text formats are
bounded lower, by ``MAX_TEXT_CHARS`` bytes (``schemas.formats.max_input_bytes``)."""

MAX_TEXT_CHARS: Final = 4_000_000
"""Largest extracted text, in characters."""

MAX_CHUNKS: Final = 10_000
"""Most chunks one parse result may carry."""

MAX_PAGES: Final = 100_000
"""Most pages a parsed document may report."""

MAX_METADATA_KEYS: Final = 64
MAX_METADATA_VALUE_CHARS: Final = 1024

MAX_DETAIL_CHARS: Final = 1000
"""Longest human-readable detail in failures and audit events."""

MAX_DURATION_MS: Final = 86_400_000
"""Longest duration a parse may report: one day, far above any real time limit."""

MAX_EPOCH_SECONDS: Final = 1 << 40
"""Upper bound of the envelope's ``iat``/``nbf``/``exp`` (epoch seconds)."""

MAX_ACTOR_DEPTH: Final = 8
"""Deepest RFC 8693 actor chain an envelope may carry."""

MAX_KIDS: Final = 16
"""Most key ids one service may announce in a key-set change."""

BlobSize = Annotated[int, Field(ge=0, le=MAX_BLOB_BYTES)]
"""A document's size in bytes: 0..1 GiB."""

PageCount = Annotated[int, Field(ge=0, le=MAX_PAGES)]
"""How many pages a document has."""

MAX_TRUST_BUNDLE_CHARS: Final = 1 << 20
"""Longest signed trust bundle (compact JWS): every service's public keys, far below this."""
