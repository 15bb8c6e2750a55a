"""The token cache: ``tokens.json`` in the user's config directory, private to the user.

Written atomically (a temporary file in the same 0700 directory, fsync, rename) with mode
0600; a cache that group or others can read, or that another user owns, is refused rather
than trusted. A lock file serialises refreshes between concurrent ``sealflow`` processes, so
two of them never spend the same single-use refresh token (which would revoke the family).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import stat
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sealflow.client.errors import CacheError

__all__ = ["MAX_CACHE_BYTES", "TokenCache", "TokenSet"]

MAX_CACHE_BYTES: Final = 64 * 1024
_LOCK_POLL: Final = 0.05
_log = structlog.get_logger("sealflow.client.cache")


class TokenSet(BaseModel):
    """What a sign-in left behind: the tokens, when the access token expires, and for whom."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    issuer: str = Field(min_length=1, max_length=2048)
    client_id: str = Field(min_length=1, max_length=200)
    access_token: str = Field(min_length=1, max_length=16_384)
    token_type: str = Field(default="Bearer", max_length=40)
    expires_at: float
    refresh_token: str | None = Field(default=None, max_length=4096)
    scope: str = Field(default="", max_length=2048)
    subject: str | None = Field(default=None, max_length=256)

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        """True when the access token has at most ``seconds`` of life left."""
        return self.expires_at - (time.time() if now is None else now) <= seconds


class TokenCache:
    """Load, save and delete the cached :class:`TokenSet` at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def directory(self) -> Path:
        """The directory holding the cache (created 0700)."""
        return self.path.parent

    def load(self) -> TokenSet | None:
        """The cached tokens, ``None`` when there are none; :class:`CacheError` if unsafe."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise CacheError(
                f"cannot read the token cache {self.path}: {error.strerror}"
            ) from error
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            self._check_private(info)
            raw = handle.read(MAX_CACHE_BYTES + 1)
        if len(raw) > MAX_CACHE_BYTES:
            raise CacheError(
                f"the token cache {self.path} is larger than {MAX_CACHE_BYTES} bytes; "
                "delete it and run sealflow login"
            )
        try:
            return TokenSet.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as error:
            raise CacheError(
                f"the token cache {self.path} is corrupt; delete it and run sealflow login"
            ) from error

    def save(self, tokens: TokenSet) -> None:
        """Write ``tokens`` atomically with mode 0600 (never a half-written cache)."""
        self._ensure_directory()
        data = tokens.model_dump_json(indent=2).encode()
        try:
            fd, temporary = tempfile.mkstemp(prefix=".tokens.", suffix=".tmp", dir=self.directory)
        except OSError as error:
            raise CacheError(
                f"cannot write the token cache in {self.directory}: {error}"
            ) from error
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
            self._sync_directory()
        except BaseException as error:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            if isinstance(error, OSError):
                raise CacheError(f"cannot write the token cache {self.path}: {error}") from error
            raise
        _log.debug("token_cache_saved", path=str(self.path))

    def delete(self) -> bool:
        """Remove the cache; True when there was one."""
        try:
            self.path.unlink()
            self._sync_directory()
        except FileNotFoundError:
            return False
        except OSError as error:
            raise CacheError(f"cannot delete the token cache {self.path}: {error}") from error
        return True

    @contextlib.asynccontextmanager
    async def locked(self, timeout: float = 30.0) -> AsyncIterator[None]:
        """Hold the cache's lock file (``flock``) for a load-refresh-save sequence."""
        self._ensure_directory()
        lock_file = self.directory / "tokens.lock"
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as error:
            raise CacheError(f"cannot open the lock file {lock_file}: {error}") from error
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise CacheError(f"another sealflow process holds {lock_file}") from None
                    await asyncio.sleep(_LOCK_POLL)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _check_private(self, info: os.stat_result) -> None:
        if not stat.S_ISREG(info.st_mode):
            raise CacheError(f"the token cache {self.path} is not a regular file")
        if info.st_uid != os.getuid():
            raise CacheError(f"the token cache {self.path} belongs to another user; refusing it")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise CacheError(
                f"the token cache {self.path} is accessible to group or others "
                f"(mode {mode:04o}); refusing it — run `chmod 600 {self.path}` if you trust "
                "it, or delete it and run sealflow login"
            )

    def _ensure_directory(self) -> None:
        directory = self.directory
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = directory.stat()
        except OSError as error:
            raise CacheError(f"cannot create {directory}: {error.strerror}") from error
        if info.st_uid != os.getuid():
            raise CacheError(f"{directory} belongs to another user; refusing to keep tokens there")
        if stat.S_IMODE(info.st_mode) & 0o077:
            try:
                os.chmod(directory, 0o700)
            except OSError as error:
                raise CacheError(f"cannot make {directory} private: {error}") from error

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
