"""One extractor per supported format; each returns an ``Extraction`` of cleaned text."""

from __future__ import annotations
