"""The soak tests drive ``bench/soak.py`` (the same code the full run uses as a script).

The 10,000-job soak is marked ``slow`` and runs only when asked for (``-m slow``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_BENCH = str(Path(__file__).resolve().parents[2] / "bench")
if _BENCH not in sys.path:
    sys.path.append(_BENCH)  # after the packages: bench/gateway.py must not shadow gateway


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip ``slow`` tests unless the marker expression selects them (``-m slow``)."""
    expression = item.config.getoption("markexpr") or ""
    asked = "slow" in expression and "not slow" not in expression
    if item.get_closest_marker("slow") is not None and not asked:
        pytest.skip("slow: run with -m slow")
