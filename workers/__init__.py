"""The job worker: takes ``job.submitted``, asks the parser, stores the result, emits job events."""

from __future__ import annotations

from workers.daemon import serve
from workers.handlers import WorkerHandlers
from workers.settings import WorkerSettings

__all__ = ["WorkerHandlers", "WorkerSettings", "serve"]
