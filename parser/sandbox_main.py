"""The code that runs inside a parser sandbox process: confinement first, then a request loop.

The sandbox is started with the ``spawn`` method, so it is a fresh interpreter that shares
nothing with the (threaded, asyncio) parent but one pipe. It imports and warms up everything
a parse needs, confines itself (``parser.confinement``), reports ready with what it achieved,
and only then reads documents, which arrive as bytes: it is never given a path.
"""

from __future__ import annotations

import csv
import logging
import math
import resource
import signal
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection

from pypdf.errors import PdfReadWarning

from parser.confinement import SandboxRefused, confine
from parser.document import ParsedDocument
from parser.errors import ParseError
from parser.formats.csv_rows import CSV_MAX_FIELD_CHARS
from parser.limits import ParseLimits
from parser.parsing import parse_bytes
from parser.preload import preload
from parser.protocol import (
    MAX_REQUEST_HEADER_BYTES,
    decode_request,
    encode_document,
    encode_failure,
    encode_ready,
    encode_refusal,
)

__all__ = ["CPU_GRACE_SECONDS", "ParseFunction", "sandbox_main"]

ParseFunction = Callable[[bytes, str, str, ParseLimits], ParsedDocument]
"""What the sandbox runs on each document: ``parse_bytes``, or a hostile stand-in in tests."""

CPU_GRACE_SECONDS = 2
"""CPU seconds beyond the wall-time limit before the kernel stops a runaway sandbox."""


def sandbox_main(
    connection: Connection, limits: ParseLimits, user: str, parse: ParseFunction = parse_bytes
) -> None:
    """Warm up, confine, report ready, then answer requests until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    csv.field_size_limit(CSV_MAX_FIELD_CHARS)
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    warnings.simplefilter("ignore", PdfReadWarning)
    skipped = preload()
    try:
        confinement = confine(limits, user=user, keep_fd=connection.fileno())
    except (SandboxRefused, OSError) as error:
        # Nothing is parsed unconfined: the parent hears why, and the sandbox ends.
        connection.send_bytes(encode_refusal(f"{type(error).__name__}: {error}"))
        return
    connection.send_bytes(encode_ready(confinement, skipped))
    while True:
        try:
            header = connection.recv_bytes(MAX_REQUEST_HEADER_BYTES)
            data = connection.recv_bytes(max(1, limits.max_input_bytes))
        except EOFError:
            return
        answer, exiting = _answer(header, data, limits, parse)
        del data
        connection.send_bytes(answer)
        if exiting:
            return


def _arm_cpu_limit(limits: ParseLimits) -> bool:
    """Let the next parse use at most its wall-time limit (plus grace) of CPU time.

    A backstop for when the parent cannot kill the sandbox (the parent itself died): the
    kernel sends SIGXCPU, whose default action ends the process, and SIGKILL at the hard
    limit (the sandbox's lifetime CPU budget). False when that budget cannot cover a whole
    parse any more: the sandbox then quits after answering and the parent starts a fresh one.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + limits.timeout_seconds) + CPU_GRACE_SECONDS
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        return True
    resource.setrlimit(resource.RLIMIT_CPU, (min(soft, hard), hard))
    return soft < hard


def _answer(
    header: bytes, data: bytes, limits: ParseLimits, parse: ParseFunction
) -> tuple[bytes, bool]:
    """The encoded answer to one request, and whether the sandbox must quit after it."""
    _arm_cpu_limit(limits)
    try:
        document = _parse(header, data, limits, parse)
    except ParseError as error:
        exiting = not _arm_cpu_limit(limits)
        return encode_failure(error, exiting=exiting), exiting
    except MemoryError:
        out_of_memory = True
    else:
        exiting = not _arm_cpu_limit(limits)
        return encode_document(document, exiting=exiting), exiting
    # Answered outside the handler, so the frames holding the memory are already released;
    # the sandbox still quits after answering, so that its replacement starts with a clean heap.
    assert out_of_memory
    too_large = ParseError("too_large", f"document needs more than {limits.memory_bytes} bytes")
    return encode_failure(too_large, exiting=True), True


def _parse(header: bytes, data: bytes, limits: ParseLimits, parse: ParseFunction) -> ParsedDocument:
    """``parse``; any exception it should not raise is reported as ``internal``."""
    try:
        request = decode_request(header)
        return parse(data, request.content_type, request.filename, limits)
    except (ParseError, MemoryError):
        raise
    except Exception as exc:
        raise ParseError("internal", f"parser failed: {type(exc).__name__}: {exc}") from exc
