"""The bounds a parse runs within: input size, pages, output size, chunking, time and memory."""

from __future__ import annotations

import math
from dataclasses import dataclass

from schemas.limits import MAX_CHUNKS, MAX_DOCUMENT_BYTES, MAX_TEXT_CHARS

__all__ = ["ParseLimits"]


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Every bound applied to one parse; the defaults are the shared ones of ``schemas.limits``."""

    max_input_bytes: int = MAX_DOCUMENT_BYTES
    """Largest document of any format; text formats are bounded lower (``max_input_bytes``)."""
    max_pages: int = 500
    max_output_chars: int = MAX_TEXT_CHARS
    max_chunks: int = MAX_CHUNKS
    chunk_chars: int = 1_000
    timeout_seconds: float = 20.0
    """Wall time of one parse in the isolated process (``DocumentParser`` only)."""
    memory_bytes: int = 512 * 1024 * 1024
    """Address-space limit of the isolated process (``DocumentParser`` only)."""
    sandbox_cpu_seconds: int = 600
    """CPU seconds one sandbox process may use in its life (the kernel's hard limit, SIGKILL);
    it is replaced before a parse could run into it (``DocumentParser`` only)."""

    def __post_init__(self) -> None:
        for name in ("max_input_bytes", "max_pages", "max_output_chars", "max_chunks"):
            if getattr(self, name) < 0:
                raise ValueError(f"ParseLimits.{name} must not be negative")
        if self.chunk_chars < 1:
            raise ValueError("ParseLimits.chunk_chars must be at least 1")
        if not self.timeout_seconds > 0:
            raise ValueError("ParseLimits.timeout_seconds must be positive")
        # A parse's CPU budget is its time limit rounded up plus 2 s of grace (``sandbox_main``).
        if self.sandbox_cpu_seconds < math.ceil(self.timeout_seconds) + 3:
            raise ValueError("ParseLimits.sandbox_cpu_seconds must cover a parse and its grace")
        if self.memory_bytes < 64 * 1024 * 1024:
            raise ValueError("ParseLimits.memory_bytes must be at least 64 MiB to start Python")
