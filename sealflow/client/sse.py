"""A bounded reader of server-sent events (the WHATWG ``text/event-stream`` format)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import aiohttp

from sealflow.client.errors import TransportError

__all__ = ["MAX_EVENT_BYTES", "SseEvent", "iter_events"]

MAX_EVENT_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event: its type (``message`` unless named) and its data lines joined."""

    event: str
    data: str
    id: str | None = None


async def iter_events(
    stream: aiohttp.StreamReader, *, max_bytes: int = MAX_EVENT_BYTES
) -> AsyncIterator[SseEvent]:
    """The events of ``stream`` until it ends; an event over ``max_bytes`` is an error."""
    event, data, event_id, size = "", list[str](), None, 0
    while True:
        try:
            raw = await stream.readline()
        except ValueError as error:  # a line longer than the reader's buffer limit
            raise TransportError("an event stream line is too long") from error
        if not raw:
            return
        size += len(raw)
        if size > max_bytes:
            raise TransportError(f"an event is larger than {max_bytes} bytes")
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(event=event or "message", data="\n".join(data), id=event_id)
            event, data, size = "", [], 0
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            event_id = value
