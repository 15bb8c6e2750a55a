"""Fixtures for the identity tests: a provider on a test server with recording audit and
revocation sinks and a clock the test moves (helpers in tests/support/identity_testing.py), and
the identity store on each backend (``open_identity``, ``store``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
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
from store_testing import BACKENDS, reset_identity
from store_testing import postgres_url as postgres_url  # the session fixture, registered here

from identity import (
    STORE_KEY,
    AnyIdentityStore,
    IdentitySettings,
    IdentityStore,
    PgIdentityStore,
    create_app,
)

OpenIdentity = Callable[[], Awaitable[AnyIdentityStore]]


@pytest.fixture(params=BACKENDS)
def open_identity(request: pytest.FixtureRequest, tmp_path: Path) -> OpenIdentity:
    """Opens another handle (another identity instance) on one empty identity database of the
    backend under test: a SQLite file, or the run's PostgreSQL database with its tables emptied."""
    if request.param == "sqlite":
        path = tmp_path / "identity.sqlite3"
        return lambda: IdentityStore.open(path)
    url: str = request.getfixturevalue("postgres_url")
    reset_identity(url)
    return lambda: PgIdentityStore.open(url)


@pytest.fixture
async def store(open_identity: OpenIdentity) -> AsyncIterator[AnyIdentityStore]:
    """The identity store of the backend under test, empty."""
    opened = await open_identity()
    yield opened
    await opened.close()


@pytest.fixture
def identity_settings(keys_dir: Path, tmp_path: Path) -> IdentitySettings:
    """The provider's settings over this test's copy of the key rings."""
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
