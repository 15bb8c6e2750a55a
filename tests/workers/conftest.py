"""Fixtures of the worker's handler and sweeper tests: a store, a recording rig, the handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from handler_testing import HandlerRig, handler_rig
from sealflow_testing import Env

from store import JobStore, open_store
from workers import WorkerHandlers


@pytest.fixture(scope="module")
def env(handler_env: Env) -> Env:
    """The module's envelope keys (``handler_env`` of ``tests/conftest.py``)."""
    return handler_env


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[JobStore]:
    """A fresh embedded job store (the default backend)."""
    jobs = await open_store(None, tmp_path)
    try:
        yield jobs
    finally:
        await jobs.close()


@pytest.fixture
def rig(env: Env) -> HandlerRig:
    """The worker's recording publisher and audit sink."""
    return handler_rig(env, "worker")


@pytest.fixture
def handlers(store: JobStore, rig: HandlerRig) -> WorkerHandlers:
    """The handlers under test, given the recording publisher like any other."""
    return WorkerHandlers(store, rig.publisher, rig.audit)
