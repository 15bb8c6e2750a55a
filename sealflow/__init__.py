"""The ``sealflow`` command line and the all-in-one runner; it only wires the other packages."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
