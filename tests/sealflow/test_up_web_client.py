"""``sealflow up`` registers the gateway's browser client at the identity on a fresh machine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from identity import IdentitySettings, IdentityStore
from sealflow.commands.up import _ensure_web_client


def _client_uris(client_id: str) -> tuple[str, ...] | None:
    async def read() -> tuple[str, ...] | None:
        store = await IdentityStore.open(IdentitySettings().database_path)
        try:
            client = await store.get_client(client_id)
            return None if client is None else client.redirect_uris
        finally:
            await store.close()

    return asyncio.run(read())


def test_the_browser_client_is_registered_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SEALFLOW_GATEWAY_URL", "http://localhost:9090")
    monkeypatch.delenv("SEALFLOW_WEB_CLIENT_SECRET", raising=False)
    _ensure_web_client()
    assert _client_uris("sealflow-web") == ("http://localhost:9090/callback",)
    monkeypatch.setenv("SEALFLOW_GATEWAY_URL", "http://localhost:9191")
    _ensure_web_client()  # left as it is, with a warning naming the URL it lacks
    assert _client_uris("sealflow-web") == ("http://localhost:9090/callback",)
