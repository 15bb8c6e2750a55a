"""Messages between ``DocumentParser`` and its sandbox process, as bounded JSON.

The parent never unpickles anything from the sandbox: the sandbox handles hostile documents,
so its answers are plain JSON, size-capped and checked field by field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from parser.confinement import Confinement
from parser.document import ParsedDocument
from parser.errors import PARSE_ERROR_REASONS, ParseError, ParseErrorReason
from parser.limits import ParseLimits
from schemas.parsing import Chunk, MetadataValue

__all__ = [
    "MAX_READY_BYTES",
    "MAX_REQUEST_HEADER_BYTES",
    "ParseRequest",
    "SandboxAnswer",
    "SandboxReady",
    "decode_ready",
    "decode_request",
    "decode_response",
    "encode_document",
    "encode_failure",
    "encode_ready",
    "encode_refusal",
    "encode_request",
    "max_response_bytes",
]

MAX_READY_BYTES: Final = 4096
MAX_REQUEST_HEADER_BYTES: Final = 8192
_MAX_READY_TEXT_CHARS = 500
_MAX_CONTENT_TYPE_CHARS = 255
_MAX_FILENAME_CHARS = 1024


@dataclass(frozen=True, slots=True)
class ParseRequest:
    """What the sandbox needs besides the document bytes."""

    content_type: str
    filename: str


@dataclass(frozen=True, slots=True)
class SandboxReady:
    """The sandbox's first message: how it is confined, and which modules it could not load."""

    confinement: Confinement
    skipped_modules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SandboxAnswer:
    """The document or the ``ParseError``; ``exiting`` when the sandbox quits after answering."""

    outcome: ParsedDocument | ParseError
    exiting: bool


def encode_ready(confinement: Confinement, skipped_modules: tuple[str, ...]) -> bytes:
    """The first message, sent once the sandbox is confined and warmed up."""
    body = {
        "ready": {
            "user": confinement.user[:_MAX_READY_TEXT_CHARS],
            "files": confinement.files[:_MAX_READY_TEXT_CHARS],
            "network": confinement.network[:_MAX_READY_TEXT_CHARS],
            "complete": confinement.complete,
            "skipped_modules": [name[:100] for name in skipped_modules[:20]],
        }
    }
    return json.dumps(body).encode("ascii")


def encode_refusal(reason: str) -> bytes:
    """The first message of a sandbox that could not confine itself, instead of ready."""
    return json.dumps({"refused": reason[:_MAX_READY_TEXT_CHARS]}).encode("utf-8")


def decode_ready(payload: bytes) -> SandboxReady:
    """Check and read the first message; a refusal or anything unexpected is
    ``ParseError("internal")``."""
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise _bad("ready message is not JSON") from exc
    if isinstance(body, dict) and isinstance(body.get("refused"), str):
        raise ParseError("internal", f"the sandbox refused to start: {body['refused']}")
    try:
        ready = body["ready"]
        texts = [ready[name] for name in ("user", "files", "network")]
        complete, skipped = ready["complete"], ready["skipped_modules"]
    except (TypeError, KeyError) as exc:
        raise _bad("ready message is not the expected object") from exc
    if not all(isinstance(t, str) for t in texts) or not isinstance(complete, bool):
        raise _bad("ready message has fields of the wrong type")
    if not isinstance(skipped, list) or not all(isinstance(name, str) for name in skipped):
        raise _bad("ready message has a malformed list of skipped modules")
    confinement = Confinement(user=texts[0], files=texts[1], network=texts[2], complete=complete)
    return SandboxReady(confinement, tuple(skipped))


def encode_request(content_type: str, filename: str) -> bytes:
    """The request header (the document bytes follow as a separate message)."""
    # The file name's tail is kept: only its extension matters to format detection.
    header = {
        "content_type": content_type[:_MAX_CONTENT_TYPE_CHARS],
        "filename": filename[-_MAX_FILENAME_CHARS:],
    }
    return json.dumps(header).encode("ascii")


def decode_request(header: bytes) -> ParseRequest:
    """Read a request header written by ``encode_request``."""
    fields = json.loads(header)
    return ParseRequest(content_type=str(fields["content_type"]), filename=str(fields["filename"]))


def encode_document(document: ParsedDocument, *, exiting: bool) -> bytes:
    """A successful answer."""
    body: dict[str, object] = {
        "document": {
            "text": document.text,
            "metadata": document.metadata,
            "chunks": [[c.index, c.start, c.end, c.page] for c in document.chunks],
            "pages": document.pages,
            "parser": document.parser,
        },
        "exiting": exiting,
    }
    return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")


def encode_failure(error: ParseError, *, exiting: bool) -> bytes:
    """A failed answer."""
    body = {"error": {"reason": error.reason, "detail": error.detail}, "exiting": exiting}
    return json.dumps(body).encode("utf-8")


def max_response_bytes(limits: ParseLimits) -> int:
    """The largest answer a sandbox within ``limits`` can give (JSON escapes take 6 bytes)."""
    return 6 * limits.max_output_chars + 64 * limits.max_chunks + 1024 * 1024


def decode_response(payload: bytes) -> SandboxAnswer:
    """Check and read a sandbox's answer; anything unexpected is ``ParseError("internal")``."""
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise _bad("answer is not JSON") from exc
    if not isinstance(body, dict):
        raise _bad("answer is not an object")
    if "error" in body:
        return _failure(body)
    document = body.get("document")
    if not isinstance(document, dict):
        raise _bad("answer has neither a document nor an error")
    text = document.get("text")
    parser = document.get("parser")
    pages = document.get("pages")
    if not isinstance(text, str) or not isinstance(parser, str):
        raise _bad("document text or parser is not a string")
    if pages is not None and not _is_int(pages):
        raise _bad("document pages is not an integer")
    parsed = ParsedDocument(
        text=text,
        metadata=_metadata(document.get("metadata")),
        chunks=_chunks(document.get("chunks"), len(text)),
        pages=pages,
        parser=parser,
    )
    return SandboxAnswer(parsed, exiting=body.get("exiting") is True)


def _failure(body: dict[str, Any]) -> SandboxAnswer:
    error = body["error"]
    if not isinstance(error, dict):
        raise _bad("error is not an object")
    reason, detail = error.get("reason"), error.get("detail")
    if reason not in PARSE_ERROR_REASONS or not isinstance(detail, str):
        raise _bad("error has an unknown reason or no detail")
    reason_code: ParseErrorReason = reason
    return SandboxAnswer(ParseError(reason_code, detail), exiting=body.get("exiting") is True)


def _metadata(raw: object) -> dict[str, MetadataValue]:
    if not isinstance(raw, dict):
        raise _bad("metadata is not an object")
    metadata: dict[str, MetadataValue] = {}
    for key, value in raw.items():
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise _bad(f"metadata {key!r} is not a scalar")
        metadata[key] = value
    return metadata


def _chunks(raw: object, length: int) -> tuple[Chunk, ...]:
    if not isinstance(raw, list):
        raise _bad("chunks is not a list")
    chunks: list[Chunk] = []
    previous_end = 0
    for position, item in enumerate(raw):
        if not isinstance(item, list) or len(item) != 4:
            raise _bad(f"chunk {position} is not [index, start, end, page]")
        index, start, end, page = item
        if not (_is_int(index) and _is_int(start) and _is_int(end)):
            raise _bad(f"chunk {position} has non-integer offsets")
        if page is not None and not _is_int(page):
            raise _bad(f"chunk {position} has a non-integer page")
        if index != position or not previous_end <= start < end <= length:
            raise _bad(f"chunk {position} is out of order or outside the text")
        previous_end = end
        try:
            chunks.append(Chunk(index=index, start=start, end=end, page=page))
        except ValidationError as exc:
            raise _bad(f"chunk {position} is outside the bounds of a chunk") from exc
    return tuple(chunks)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(what: str) -> ParseError:
    return ParseError("internal", f"parser process gave a malformed answer: {what}")
