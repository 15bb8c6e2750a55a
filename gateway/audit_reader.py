"""The gateway's only way to the audit log: the audit daemon's query API over HTTP.

Each request carries a fresh service token (``keys.service_tokens``) signed with the gateway's
own key, for audience ``audit`` and scope ``audit:read``, bound to that one request and naming
the admin it reads for. The gateway never opens the audit daemon's files. Every failure to get
an answer is a ``503`` that says why; a query the daemon calls malformed is a ``400``.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from pathlib import Path
from typing import Final
from urllib.parse import urlencode

import aiohttp
import structlog
from aiohttp import web
from pydantic import ValidationError
from yarl import URL

from gateway.appkeys import SETTINGS_KEY
from gateway.errors import BadRequest, Unavailable
from keys import KeyRing, SigningKey, issue_service_token, request_digest
from schemas import ErrorBody
from schemas.api_admin import AuditRecordList, AuditRecordView
from schemas.audit_query import AUDIT_RECORDS_PATH, AuditQuery

__all__ = ["AuditReader", "audit_reader"]

_log = structlog.get_logger("sealflow.gateway.audit_reader")

SERVICE: Final = "gateway"
READ_SCOPE: Final = "audit:read"
MAX_ANSWER_BYTES: Final = 32 * 1024 * 1024
"""1,000 records of a few KiB each fit many times over."""
MAX_ERROR_BYTES: Final = 4096
TOKEN_LIFETIME: Final = 30


class AuditReader:
    """Reads audit records from the audit daemon at ``url`` (scheme, host and port only)."""

    def __init__(self, url: str, keys_dir: Path, *, timeout: float) -> None:
        self.url = URL(url.rstrip("/"))
        self.keys_dir = keys_dir
        self.timeout = timeout
        self._key: SigningKey | None = None
        self._ring_stamp: tuple[int, int, int] | None = None

    def _signing_key(self) -> SigningKey:
        """The gateway's active key, re-read when its ring file changes (after a rotation)."""
        try:
            info = os.stat(self.keys_dir / SERVICE / "ring.json")
            stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = None
        if self._key is None or stamp != self._ring_stamp:
            self._key = KeyRing.load(self.keys_dir, SERVICE).signing_key()
            self._ring_stamp = stamp
        return self._key

    async def records(self, query: AuditQuery, *, actor: str | None) -> list[AuditRecordView]:
        """The records the daemon answers for ``query``, oldest first."""
        target = f"{AUDIT_RECORDS_PATH}?{urlencode(query.params())}"
        key = await asyncio.to_thread(self._signing_key)
        token = issue_service_token(
            key,
            audience="audit",
            scope=(READ_SCOPE,),
            request=request_digest("GET", target),
            lifetime=TOKEN_LIFETIME,
            actor=actor,
        )
        url = URL(f"{self.url.origin()}{target}", encoded=True)
        log = _log.bind(service=SERVICE, actor=actor, audit_url=str(self.url))
        timeout = aiohttp.ClientTimeout(total=self.timeout, connect=min(self.timeout, 3.0))
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(
                    url, headers={"Authorization": f"Bearer {token}"}, allow_redirects=False
                ) as response,
            ):
                status = response.status
                limit = MAX_ANSWER_BYTES if status == 200 else MAX_ERROR_BYTES
                body = await _read_bounded(response, limit)
        except TimeoutError as error:  # before OSError, of which it is a kind
            log.warning("audit_reader.timeout", timeout=self.timeout)
            raise Unavailable("the audit service took too long to answer") from error
        except (aiohttp.ClientError, OSError) as error:
            log.warning("audit_reader.unreachable", error=type(error).__name__)
            raise Unavailable(
                f"the audit service does not answer at {self.url}; is `sealflow audit` running?"
            ) from error
        if status != 200:
            raise _refusal(status, body, log)
        if body is None:
            raise Unavailable("the audit service's answer is too large")
        try:
            return list(AuditRecordList.model_validate_json(body).records)
        except ValidationError as error:
            log.error("audit_reader.malformed_answer")
            raise Unavailable("the audit service answered something that is not records") from error


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or None as soon as it grows past ``limit`` bytes."""
    declared = response.content_length
    if declared is not None and declared > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _refusal(
    status: int, body: bytes | None, log: structlog.typing.FilteringBoundLogger
) -> Exception:
    """The error for a non-200 answer: the daemon's 400 is the caller's; the rest is a 503."""
    try:
        answer = ErrorBody.model_validate_json(body if body is not None else b"")
        code, detail = answer.error, answer.detail
    except ValidationError:
        code, detail = "unknown", f"HTTP {status}"
    if status == 400:
        return BadRequest(detail)
    log.error("audit_reader.refused", status=status, code=code)
    if status in {401, 403}:
        return Unavailable(f"the audit service refused the gateway's service token ({code})")
    return Unavailable(f"the audit service could not answer: {detail}")


_READERS: Final = weakref.WeakKeyDictionary[web.Application, "AuditReader"]()


def audit_reader(app: web.Application) -> AuditReader:
    """The app's audit reader, made from its settings on first use."""
    reader = _READERS.get(app)
    if reader is None:
        settings = app[SETTINGS_KEY]
        reader = AuditReader(settings.audit_url, settings.keys_dir, timeout=settings.audit_timeout)
        _READERS[app] = reader
    return reader
