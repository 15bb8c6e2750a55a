"""The code that runs inside a parser sandbox process: limits first, then a request loop.

The sandbox is started with the ``spawn`` method, so it is a fresh interpreter that shares
nothing with the (threaded, asyncio) parent but one pipe.
"""

from __future__ import annotations

import csv
import logging
import math
import resource
import signal
import warnings
from multiprocessing.connection import Connection

from pypdf.errors import PdfReadWarning

from parser.document import ParsedDocument
from parser.errors import ParseError
from parser.formats.csv_rows import CSV_MAX_FIELD_CHARS
from parser.limits import ParseLimits
from parser.parsing import parse_bytes
from parser.protocol import (
    MAX_REQUEST_HEADER_BYTES,
    READY,
    decode_request,
    encode_document,
    encode_failure,
)

__all__ = ["sandbox_main"]

_CPU_GRACE_SECONDS = 2
"""CPU seconds beyond the wall-time limit before the kernel stops a runaway sandbox."""


def sandbox_main(connection: Connection, limits: ParseLimits) -> None:
    """Apply the process limits, report ready, then answer requests until the pipe closes."""
    _restrict(limits)
    connection.send_bytes(READY)
    while True:
        try:
            header = connection.recv_bytes(MAX_REQUEST_HEADER_BYTES)
            data = connection.recv_bytes(max(1, limits.max_input_bytes))
        except EOFError:
            return
        answer, exiting = _answer(header, data, limits)
        del data
        connection.send_bytes(answer)
        if exiting:
            return


def _restrict(limits: ParseLimits) -> None:
    """Bound memory, CPU and core dumps; the parent owns interrupts and warnings are muted."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    memory = (
        limits.memory_bytes if hard == resource.RLIM_INFINITY else min(hard, limits.memory_bytes)
    )
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    _, core_hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, core_hard))
    _arm_cpu_limit(limits)
    csv.field_size_limit(CSV_MAX_FIELD_CHARS)
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    warnings.simplefilter("ignore", PdfReadWarning)


def _arm_cpu_limit(limits: ParseLimits) -> None:
    """Let the next parse use at most its wall-time limit (plus grace) of CPU time.

    A backstop for when the parent cannot kill the sandbox (the parent itself died): the
    kernel sends SIGXCPU, whose default action ends the process.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    budget = math.ceil(usage.ru_utime + usage.ru_stime + limits.timeout_seconds)
    soft = budget + _CPU_GRACE_SECONDS
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _answer(header: bytes, data: bytes, limits: ParseLimits) -> tuple[bytes, bool]:
    """The encoded answer to one request, and whether the sandbox must quit after it."""
    _arm_cpu_limit(limits)
    try:
        return encode_document(_parse(header, data, limits)), False
    except ParseError as error:
        return encode_failure(error, exiting=False), False
    except MemoryError:
        out_of_memory = True
    # Answered outside the handler, so the frames holding the memory are already released;
    # the sandbox still quits after answering, so that its replacement starts with a clean heap.
    assert out_of_memory
    too_large = ParseError("too_large", f"document needs more than {limits.memory_bytes} bytes")
    return encode_failure(too_large, exiting=True), True


def _parse(header: bytes, data: bytes, limits: ParseLimits) -> ParsedDocument:
    """``parse_bytes``; any exception it should not raise is reported as ``internal``."""
    try:
        request = decode_request(header)
        return parse_bytes(data, request.content_type, request.filename, limits)
    except (ParseError, MemoryError):
        raise
    except Exception as exc:
        raise ParseError("internal", f"parser failed: {type(exc).__name__}: {exc}") from exc
