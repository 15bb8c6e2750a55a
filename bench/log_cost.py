"""The cost of one structlog line as the daemons log it: µs per ``message.handled`` line.

    .venv/bin/python bench/log_cost.py [--n 20000] 2>/dev/null

Configures logging exactly as a daemon does (``broker.logging.configure_logging``: JSON to
stderr, contextvars bound per message), then times ``_log.info`` of the consumer's per-message
line, and the same call filtered out below the level, for scale. Redirect stderr to
``/dev/null`` (or a file): a terminal would measure the terminal.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time

import structlog

from broker.logging import configure_logging

__all__ = ["time_lines"]


def time_lines(n: int, *, level: str) -> float:
    """Median µs per ``message.handled`` line over 5 rounds of ``n`` lines at ``level``."""
    configure_logging("worker", level=level)
    log = structlog.get_logger("sealflow.broker")
    structlog.contextvars.bind_contextvars(
        job="0" * 32, jti="1" * 32, trace="2" * 32, type="job.submitted"
    )
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            log.info("message.handled", type="job.submitted", ms=1.23)
        rounds.append((time.perf_counter() - started) / n * 1e6)
    structlog.contextvars.clear_contextvars()
    return statistics.median(rounds)


def main() -> None:
    """Print µs per line, emitted and filtered."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    emitted = time_lines(args.n, level="INFO")
    filtered = time_lines(args.n, level="WARNING")
    logging.shutdown()
    print(f"µs per line: emitted {emitted:.1f}, filtered out {filtered:.2f}", file=sys.stdout)


if __name__ == "__main__":
    main()
