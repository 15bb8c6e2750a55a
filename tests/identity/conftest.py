"""Fixtures for the identity tests: a provider on a test server with recording audit and
revocation sinks and a clock the test moves (helpers in tests/support/identity_testing.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from identity_testing import (
    PASSWORDS,
    REDIRECT,
    WEB,
    FakeClock,
    Provider,
    RecordingRevocations,
    RecordingSink,
)

from identity import STORE_KEY, IdentitySettings, create_app
from keys import KeyRing


@pytest.fixture
def identity_settings(tmp_path: Path) -> IdentitySettings:
    keys_dir = tmp_path / "keys"
    KeyRing.create(keys_dir, "identity")
    return IdentitySettings(data_dir=tmp_path / "data", keys_dir=keys_dir)


@pytest.fixture
async def provider(identity_settings: IdentitySettings) -> AsyncIterator[Provider]:
    sink, clock = RecordingSink(), FakeClock()
    app = create_app(identity_settings, audit=sink, revocations=RecordingRevocations(), clock=clock)
    async with TestClient(TestServer(app)) as http:
        store = app[STORE_KEY]
        await store.add_user("alice", PASSWORDS["alice"], "user")
        await store.add_user("root", PASSWORDS["root"], "admin")
        await store.add_user("vic", PASSWORDS["vic"], "viewer")
        await store.add_client(WEB, redirect_uris=[REDIRECT])
        yield Provider(http=http, sink=sink, clock=clock, settings=identity_settings)
