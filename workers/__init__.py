"""The job worker: takes ``job.submitted``, asks the parser, stores the result, emits job events."""

from __future__ import annotations

from workers.daemon import serve
from workers.handlers import WorkerHandlers
from workers.settings import WorkerSettings
from workers.sweeper import StuckJobSweeper

__all__ = ["StuckJobSweeper", "WorkerHandlers", "WorkerSettings", "serve"]
