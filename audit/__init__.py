"""The audit sink's library: a tamper-evident, hash-chained log with signed checkpoints.

``AuditLog`` appends events durably and deduplicates them by id, ``verify_log`` checks the
whole chain, its chained checkpoints and the anchor kept outside the log directory,
``iter_records``/``follow_records`` read it (DESIGN §7).
"""

from __future__ import annotations

from audit.anchor import CheckpointAnchor, FileAnchor
from audit.checkpoint import Checkpoint
from audit.errors import AuditLogError
from audit.follow import follow_records
from audit.log import AuditLog
from audit.query import AuditFilter, iter_records
from audit.record import AuditRecord
from audit.settings import AuditSettings
from audit.verify import VerifyReport, adopt_anchor, verify_log

__all__ = [
    "AuditFilter",
    "AuditLog",
    "AuditLogError",
    "AuditRecord",
    "AuditSettings",
    "Checkpoint",
    "CheckpointAnchor",
    "FileAnchor",
    "VerifyReport",
    "adopt_anchor",
    "follow_records",
    "iter_records",
    "verify_log",
]
