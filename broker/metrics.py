"""Prometheus metrics of every daemon, labelled by service (one set per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = [
    "HANDLER_SECONDS",
    "MESSAGES_HANDLED",
    "MESSAGES_REJECTED",
    "MESSAGES_RETRIED",
    "VERIFY_SECONDS",
]

MESSAGES_HANDLED = Counter(
    "sealflow_messages_handled_total",
    "Messages whose handler finished, by outcome (ok, dead_lettered, duplicate).",
    ["service", "type", "outcome"],
)
MESSAGES_REJECTED = Counter(
    "sealflow_messages_rejected_total",
    "Messages whose envelope was rejected, by reason.",
    ["service", "reason"],
)
MESSAGES_RETRIED = Counter(
    "sealflow_messages_retried_total",
    "Messages scheduled for a delayed retry after a transient handler failure.",
    ["service", "type"],
)
HANDLER_SECONDS = Histogram(
    "sealflow_handler_seconds",
    "Time spent in message handlers.",
    ["service", "type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
VERIFY_SECONDS = Histogram(
    "sealflow_envelope_open_seconds",
    "Time spent opening (verifying) envelopes.",
    ["service"],
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01),
)
