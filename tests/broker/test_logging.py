"""Every line a daemon writes to stderr is JSON: its own, and the stdlib's warnings and tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def _stderr_of(script: str) -> list[str]:
    """Run ``script`` after ``configure_logging("probe")`` in a fresh interpreter."""
    code = "from broker import configure_logging\nconfigure_logging('probe')\n" + textwrap.dedent(
        script
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return [line for line in done.stderr.splitlines() if line.strip()]


def test_stdlib_warnings_and_tracebacks_are_json_lines() -> None:
    """aiohttp-, aio-pika- and asyncio-style records, with and without a traceback, and
    ``warnings.warn``: one JSON object a line, the traceback inside it, ``service`` bound."""
    lines = _stderr_of(
        """
        import asyncio, logging, warnings
        logging.getLogger("aio_pika.robust_connection").warning("connection lost %s", "x")
        try:
            raise ValueError("header too long\\nsecond line")
        except ValueError:
            logging.getLogger("aiohttp.server").exception("Error handling request")
        warnings.warn("old api", DeprecationWarning, stacklevel=1)
        async def fail():
            raise RuntimeError("never retrieved")
        async def main():
            task = asyncio.ensure_future(fail())
            await asyncio.sleep(0)
            del task
        asyncio.run(main())
        import gc; gc.collect()
        logging.getLogger("aiohttp.access").info("GET / 200")
        """
    )
    records = [json.loads(line) for line in lines]  # raises on any plain-text line
    assert all(record["service"] == "probe" for record in records)
    by_logger = {record.get("logger"): record for record in records}
    assert by_logger["aio_pika.robust_connection"]["event"] == "connection lost x"
    assert by_logger["aio_pika.robust_connection"]["level"] == "warning"
    server = by_logger["aiohttp.server"]
    assert server["level"] == "error"
    assert "ValueError: header too long" in server["exception"]
    assert "old api" in by_logger["py.warnings"]["event"]
    assert "RuntimeError: never retrieved" in by_logger["asyncio"]["exception"]
    assert "aiohttp.access" not in by_logger  # INFO from libraries is below the floor


def test_structlog_lines_stay_json_and_configuring_twice_adds_no_second_handler() -> None:
    """The daemon's own lines are unchanged, and a second configure does not double lines."""
    lines = _stderr_of(
        """
        import logging, structlog
        from broker import configure_logging
        configure_logging('probe')
        structlog.get_logger().info("own.event", job="j1")
        logging.getLogger("aiormq").error("once")
        """
    )
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["own.event", "once"]
    assert records[0]["job"] == "j1"
