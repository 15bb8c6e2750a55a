"""A parser sandbox process seen from the parent: start it, talk to it, kill it, reap it.

Every method blocks; ``DocumentParser`` calls them from its own threads. ``kill`` alone is
safe to call while another thread is inside ``exchange``: the dead sandbox's pipe closes,
which ends the exchange with ``EOFError`` or ``OSError``.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess

from parser.errors import ParseError
from parser.limits import ParseLimits
from parser.parsing import parse_bytes
from parser.protocol import MAX_READY_BYTES, SandboxReady, decode_ready, max_response_bytes
from parser.sandbox_main import ParseFunction, sandbox_main

__all__ = ["SandboxProcess"]

_CONTEXT = multiprocessing.get_context("spawn")
_STOP_GRACE_SECONDS = 2.0


class SandboxProcess:
    """One spawned sandbox and the parent's end of the pipe to it."""

    __slots__ = ("_connection", "_max_response", "_process", "ready")

    def __init__(self, process: SpawnProcess, connection: Connection, max_response: int) -> None:
        self._process = process
        self._connection = connection
        self._max_response = max_response
        self.ready: SandboxReady | None = None
        """What the sandbox reported once confined: how, and what is left open."""

    @classmethod
    def start(
        cls,
        limits: ParseLimits,
        startup_timeout: float,
        *,
        user: str,
        parse: ParseFunction = parse_bytes,
    ) -> SandboxProcess:
        """Spawn a sandbox and wait until it reports ready; ``ParseError("internal")`` if not.

        The sandbox drops to ``user`` when started as root, and runs ``parse`` on each document.
        """
        parent_end, child_end = _CONTEXT.Pipe(duplex=True)
        process = _CONTEXT.Process(
            target=sandbox_main,
            args=(child_end, limits, user, parse),
            name="sealflow-parser-sandbox",
            daemon=True,
        )
        try:
            process.start()
        except OSError as exc:
            parent_end.close()
            child_end.close()
            raise ParseError("internal", f"cannot start a parser process: {exc}") from exc
        # Only the child may hold its end open, so that its death reads as end-of-file here.
        child_end.close()
        sandbox = cls(process, parent_end, max_response_bytes(limits))
        try:
            if not parent_end.poll(startup_timeout):
                raise EOFError("no ready message in time")
            sandbox.ready = decode_ready(parent_end.recv_bytes(MAX_READY_BYTES))
        except (EOFError, OSError, ParseError) as error:
            exit_code = process.exitcode
            sandbox.kill()
            sandbox.close()
            if isinstance(error, ParseError):
                raise
            raise ParseError(
                "internal", f"parser process did not start (exit code {exit_code})"
            ) from error
        return sandbox

    @property
    def pid(self) -> int | None:
        """The sandbox's process id."""
        return self._process.pid

    def is_alive(self) -> bool:
        """Whether the sandbox process is still running."""
        return self._process.is_alive()

    def exchange(self, header: bytes, data: bytes) -> bytes:
        """Send one request and wait for its answer; ``EOFError``/``OSError`` if it dies."""
        self._connection.send_bytes(header)
        self._connection.send_bytes(data)
        return self._connection.recv_bytes(self._max_response)

    def exit_code(self) -> int | None:
        """The exit code once the sandbox has ended (negative: the signal that ended it)."""
        return self._process.exitcode

    def wait(self, timeout: float) -> int | None:
        """Wait at most ``timeout`` seconds for the sandbox to end; its exit code, if it did."""
        self._process.join(timeout)
        return self._process.exitcode

    def kill(self) -> None:
        """Send SIGKILL to the sandbox; does not wait."""
        if self._process.exitcode is None:
            self._process.kill()

    def close(self) -> None:
        """Stop the sandbox (EOF first, SIGKILL after a grace period), reap it, free the pipe.

        Call only when no thread is inside ``exchange``.
        """
        self._connection.close()
        self._process.join(_STOP_GRACE_SECONDS)
        if self._process.exitcode is None:
            self._process.kill()
            self._process.join()
        self._process.close()
