"""Fuzz tests: a modest number of inputs by default, many more under ``-m slow``."""

from __future__ import annotations

import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip ``slow`` tests unless the marker expression selects them (``-m slow``)."""
    expression = item.config.getoption("markexpr") or ""
    asked = "slow" in expression and "not slow" not in expression
    if item.get_closest_marker("slow") is not None and not asked:
        pytest.skip("slow: run with -m slow")
