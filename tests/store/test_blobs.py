"""BlobStore: content addressing, integrity, path safety, atomic streaming uploads."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import store.blobs as blobs_module
from store import BlobCorrupt, BlobNotFound, BlobStore, BlobTooLarge
from store.blobs import SPOOL_BYTES


def _files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if not path.is_dir()]


async def _stream(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_put_returns_sha256_and_shards_the_path(blobs: BlobStore) -> None:
    sha = blobs.put(b"hello world")
    assert sha == hashlib.sha256(b"hello world").hexdigest()
    assert blobs.path_for(sha) == blobs.root / sha[:2] / sha[2:4] / sha
    assert blobs.path_for(sha).read_bytes() == b"hello world"


def test_put_then_read_roundtrips(blobs: BlobStore) -> None:
    sha = blobs.put(b"\x00binary\xff" * 100)
    assert blobs.read(sha, max_bytes=10_000) == b"\x00binary\xff" * 100


def test_put_is_idempotent(blobs: BlobStore) -> None:
    first = blobs.put(b"same bytes")
    second = blobs.put(b"same bytes")
    assert first == second
    assert _files_under(blobs.root) == [blobs.path_for(first)]


def test_put_repairs_a_corrupt_copy(blobs: BlobStore) -> None:
    sha = blobs.put(b"original")
    blobs.path_for(sha).write_bytes(b"tampered")
    assert blobs.put(b"original") == sha
    assert blobs.read(sha, max_bytes=100) == b"original"


def test_put_empty_blob(blobs: BlobStore) -> None:
    sha = blobs.put(b"")
    assert blobs.read(sha, max_bytes=0) == b""


def test_exists_and_delete(blobs: BlobStore) -> None:
    sha = blobs.put(b"to delete")
    assert blobs.exists(sha)
    assert blobs.delete(sha) is True
    assert not blobs.exists(sha)
    assert blobs.delete(sha) is False


def test_read_missing_blob_raises_blob_not_found(blobs: BlobStore) -> None:
    with pytest.raises(BlobNotFound) as info:
        blobs.read("a" * 64, max_bytes=100)
    assert info.value.reason == "blob_missing"


def test_read_detects_a_flipped_byte(blobs: BlobStore) -> None:
    sha = blobs.put(b"important document body")
    path = blobs.path_for(sha)
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BlobCorrupt) as info:
        blobs.read(sha, max_bytes=1000)
    assert info.value.reason == "digest_mismatch"


def test_read_over_max_bytes_raises_too_large(blobs: BlobStore) -> None:
    sha = blobs.put(b"x" * 101)
    assert blobs.read(sha, max_bytes=101) == b"x" * 101
    with pytest.raises(BlobTooLarge) as info:
        blobs.read(sha, max_bytes=100)
    assert info.value.reason == "too_large"


def test_read_refuses_a_symlink_in_place_of_a_blob(blobs: BlobStore, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_bytes(b"secret")
    sha = hashlib.sha256(b"secret").hexdigest()
    path = blobs.path_for(sha)
    path.parent.mkdir(parents=True)
    path.symlink_to(outside)
    with pytest.raises(BlobCorrupt, match="symbolic link"):
        blobs.read(sha, max_bytes=100)


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "A" * 64,
        "ab" * 31,
        "a" * 65,
        "",
        "g" * 64,
        "../" + "a" * 61,
        "a" * 63 + "\n",
        "a" * 32 + "/" + "a" * 31,
    ],
)
def test_bad_digest_strings_raise_value_error(blobs: BlobStore, bad: str) -> None:
    for call in (
        lambda: blobs.path_for(bad),
        lambda: blobs.exists(bad),
        lambda: blobs.delete(bad),
        lambda: blobs.read(bad, max_bytes=10),
    ):
        with pytest.raises(ValueError, match="sha256"):
            call()


async def test_put_stream_hashes_and_stores(blobs: BlobStore) -> None:
    sha, size = await blobs.put_stream(_stream(b"abc", b"", b"def"), max_bytes=6)
    assert sha == hashlib.sha256(b"abcdef").hexdigest()
    assert size == 6
    assert blobs.read(sha, max_bytes=6) == b"abcdef"
    assert _files_under(blobs.root) == [blobs.path_for(sha)]


async def test_put_stream_of_existing_blob_leaves_one_file(blobs: BlobStore) -> None:
    sha = blobs.put(b"abcdef")
    streamed, _ = await blobs.put_stream(_stream(b"abc", b"def"), max_bytes=100)
    assert streamed == sha
    assert _files_under(blobs.root) == [blobs.path_for(sha)]


async def test_put_stream_over_max_bytes_leaves_no_file(blobs: BlobStore) -> None:
    with pytest.raises(BlobTooLarge) as info:
        await blobs.put_stream(_stream(b"a" * 4, b"b" * 4, b"c" * 4), max_bytes=10)
    assert info.value.reason == "too_large"
    assert _files_under(blobs.root) == []
    assert not blobs.exists(hashlib.sha256(b"a" * 4 + b"b" * 4 + b"c" * 4).hexdigest())


async def test_put_stream_failing_source_leaves_no_file(blobs: BlobStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await blobs.put_stream(broken(), max_bytes=1000)
    assert _files_under(blobs.root) == []


async def test_put_stream_of_a_small_upload_takes_one_thread_trip(
    blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small upload is opened, written, fsynced and installed in one worker-thread call."""
    trips: list[str] = []
    to_thread = blobs_module.asyncio.to_thread

    async def counting(func: Callable[..., Any], /, *args: Any) -> Any:
        trips.append(getattr(func, "__name__", repr(func)))
        return await to_thread(func, *args)

    monkeypatch.setattr(blobs_module.asyncio, "to_thread", counting)
    sha, size = await blobs.put_stream(_stream(b"a" * 4096, b"b" * 4096), max_bytes=1 << 20)
    assert trips == ["_finish"]
    assert blobs.read(sha, max_bytes=size) == b"a" * 4096 + b"b" * 4096


async def test_put_stream_larger_than_the_spool_is_written_as_it_comes(blobs: BlobStore) -> None:
    """An upload over SPOOL_BYTES is spilled to its file in parts and stored intact."""
    parts = [bytes([n]) * (SPOOL_BYTES // 3) for n in range(7)]
    sha, size = await blobs.put_stream(_stream(*parts), max_bytes=1 << 24)
    data = b"".join(parts)
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert blobs.read(sha, max_bytes=size) == data
    assert not [p for p in blobs.root.iterdir() if p.name.startswith(".tmp-")]
