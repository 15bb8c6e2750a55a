"""The token cache: private permissions, atomic writes, and clear refusals."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from sealflow.client import CacheError, TokenCache, TokenSet


def _tokens(**changes: object) -> TokenSet:
    values: dict[str, object] = {
        "issuer": "http://localhost:8081",
        "client_id": "sealflow-cli",
        "access_token": "at-1",
        "refresh_token": "rt-1",
        "expires_at": time.time() + 900,
        "scope": "openid jobs:read",
        "subject": "alice",
    }
    values.update(changes)
    return TokenSet.model_validate(values)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_save_creates_a_private_directory_and_file(config_dir: Path) -> None:
    cache = TokenCache(config_dir / "tokens.json")
    cache.save(_tokens())
    assert _mode(config_dir) == 0o700
    assert _mode(config_dir / "tokens.json") == 0o600
    assert cache.load() == _tokens(expires_at=cache.load().expires_at)  # type: ignore[union-attr]


def test_round_trip_and_delete(config_dir: Path) -> None:
    cache = TokenCache(config_dir / "tokens.json")
    assert cache.load() is None
    tokens = _tokens()
    cache.save(tokens)
    assert cache.load() == tokens
    assert cache.delete() is True
    assert cache.load() is None
    assert cache.delete() is False


def test_an_existing_loose_directory_is_tightened(config_dir: Path) -> None:
    config_dir.mkdir(parents=True, mode=0o755)
    os.chmod(config_dir, 0o755)
    TokenCache(config_dir / "tokens.json").save(_tokens())
    assert _mode(config_dir) == 0o700


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_cache_readable_by_others_is_refused(config_dir: Path, mode: int) -> None:
    cache = TokenCache(config_dir / "tokens.json")
    cache.save(_tokens())
    os.chmod(cache.path, mode)
    with pytest.raises(CacheError, match=r"accessible to group or others \(mode 0" + f"{mode:o}"):
        cache.load()


def test_a_symlinked_cache_is_refused(config_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    TokenCache(target).save(_tokens())
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "tokens.json").symlink_to(target)
    with pytest.raises(CacheError, match="cannot read the token cache"):
        TokenCache(config_dir / "tokens.json").load()


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"issuer": "x"}', b"\xff\xfe", b""],
    ids=["syntax", "wrong-shape", "missing-fields", "not-utf8", "empty"],
)
def test_a_corrupt_cache_is_a_clear_error(config_dir: Path, content: bytes) -> None:
    config_dir.mkdir(parents=True)
    path = config_dir / "tokens.json"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(CacheError, match="is corrupt; delete it and run sealflow login"):
        TokenCache(path).load()


def test_an_oversized_cache_is_refused(config_dir: Path) -> None:
    config_dir.mkdir(parents=True)
    path = config_dir / "tokens.json"
    path.write_bytes(b" " * (65 * 1024))
    os.chmod(path, 0o600)
    with pytest.raises(CacheError, match="larger than"):
        TokenCache(path).load()


def test_a_failed_write_leaves_the_old_cache_and_no_temporary_file(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = TokenCache(config_dir / "tokens.json")
    old = _tokens(access_token="old")
    cache.save(old)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(CacheError, match=r"cannot write the token cache .*No space left"):
        cache.save(_tokens(access_token="new"))
    monkeypatch.undo()
    assert cache.load() == old
    assert sorted(p.name for p in config_dir.iterdir()) == ["tokens.json"]


def test_save_replaces_the_file_rather_than_rewriting_it(config_dir: Path) -> None:
    cache = TokenCache(config_dir / "tokens.json")
    cache.save(_tokens(access_token="first"))
    before = cache.path.stat().st_ino
    cache.save(_tokens(access_token="second"))
    assert cache.path.stat().st_ino != before  # a new file renamed over the old one
    assert cache.load().access_token == "second"  # type: ignore[union-attr]


async def test_the_lock_excludes_a_second_holder(config_dir: Path) -> None:
    first = TokenCache(config_dir / "tokens.json")
    second = TokenCache(config_dir / "tokens.json")
    async with first.locked():
        with pytest.raises(CacheError, match="another sealflow process holds"):
            async with second.locked(timeout=0):
                pytest.fail("the lock was taken twice")
    async with second.locked(timeout=0):
        assert (config_dir / "tokens.lock").exists()


def test_expires_within() -> None:
    tokens = _tokens(expires_at=1_000.0)
    assert tokens.expires_within(60, now=950.0)
    assert not tokens.expires_within(60, now=900.0)
