"""The job worker: takes ``job.submitted``, asks the parser, stores the result, emits job events."""

from __future__ import annotations

from workers.daemon import run_daemon_forever, serve
from workers.handlers import WorkerHandlers
from workers.settings import WorkerSettings

__all__ = ["WorkerHandlers", "WorkerSettings", "run_daemon_forever", "serve"]
