"""HTTP plumbing shared by the identity and gateway clients: timeouts and bounded bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import aiohttp

from sealflow import __version__
from sealflow.client.errors import ClientError, TransportError
from sealflow.client.settings import ClientSettings

__all__ = [
    "MAX_BODY_BYTES",
    "USER_AGENT",
    "new_session",
    "read_body",
    "read_json",
    "request_timeout",
    "stream_timeout",
    "transport_errors",
]

MAX_BODY_BYTES: Final = 16 * 1024 * 1024
USER_AGENT: Final = f"sealflow-cli/{__version__}"


def request_timeout(settings: ClientSettings) -> aiohttp.ClientTimeout:
    """For an ordinary call: bounded in total."""
    return aiohttp.ClientTimeout(total=settings.http_timeout, sock_connect=settings.connect_timeout)


def stream_timeout(settings: ClientSettings) -> aiohttp.ClientTimeout:
    """For an upload or an event stream: bounded per connect and per read, not in total."""
    return aiohttp.ClientTimeout(
        total=None, sock_connect=settings.connect_timeout, sock_read=settings.http_timeout
    )


def new_session(settings: ClientSettings) -> aiohttp.ClientSession:
    """A client session with the default timeout and our user agent."""
    return aiohttp.ClientSession(
        timeout=request_timeout(settings),
        headers={"User-Agent": USER_AGENT},
        raise_for_status=False,
    )


@contextmanager
def transport_errors(what: str) -> Iterator[None]:
    """Turn connection failures and timeouts into one-line :class:`TransportError`."""
    try:
        yield
    except TimeoutError as error:
        raise TransportError(f"{what}: timed out") from error
    except aiohttp.ClientConnectorError as error:
        raise TransportError(
            f"{what}: cannot connect ({error.os_error.strerror or error})"
        ) from error
    except aiohttp.ClientPayloadError as error:
        raise TransportError(f"{what}: the answer was cut short") from error
    except aiohttp.ClientError as error:
        ours = _client_error_cause(error)
        if ours is not None:  # e.g. an UploadError raised while aiohttp wrote the body
            raise ours from None
        raise TransportError(f"{what}: {error.__class__.__name__}: {error}") from error


def _client_error_cause(error: BaseException) -> ClientError | None:
    """Our own error that aiohttp wrapped, if any, a few causes down."""
    cause = error.__cause__ or error.__context__
    for _ in range(5):
        if cause is None:
            return None
        if isinstance(cause, ClientError):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


async def read_body(response: aiohttp.ClientResponse, limit: int = MAX_BODY_BYTES) -> bytes:
    """The response body, refusing one over ``limit`` bytes instead of buffering it."""
    length = response.content_length
    if length is not None and length > limit:
        raise TransportError(f"{response.url.host} sent {length} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise TransportError(f"{response.url.host} sent more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def read_json(raw: bytes, what: str) -> Any:
    """Decode a JSON body, or a :class:`TransportError` naming ``what`` sent garbage."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        raise TransportError(f"{what} did not answer JSON") from error
