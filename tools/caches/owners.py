"""Which of the processes sharing a data directory are alive: each holds a lock on its own claim file.

Start-up recovery (failing `running` jobs, removing staging files) may only touch what a dead
process left behind, because a stdio server, `quantdesk call` and `quantdesk serve` can share one
data directory. A process claims a token by holding an exclusive `flock` on `<folder>/<token>.lock`
for its lifetime; the kernel drops the lock when the process dies, even by `kill -9`, so a claim
file that can be locked belongs to a dead process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
from pathlib import Path

TOKEN_PATTERN = re.compile(r"^p\d+-[0-9a-f]{8}$")


class ProcessClaims:
    """This process's claim in `folder`, and the liveness test for any other claim there."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.token = f"p{os.getpid()}-{secrets.token_hex(4)}"
        # Locked under a temporary name, then renamed: no other process ever sees the claim unlocked.
        pending = folder / f".{self.token}.tmp"
        self._fd: int | None = os.open(pending, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.replace(pending, self._path(self.token))

    def _path(self, token: str) -> Path:
        return self.folder / f"{token}.lock"

    def is_alive(self, token: str | None) -> bool:
        """Whether the process that claimed `token` still runs (a token never claimed is not alive)."""
        if token is None or not TOKEN_PATTERN.fullmatch(token):
            return False
        if token == self.token:
            return self._fd is not None
        path = self._path(token)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            path.unlink(missing_ok=True)  # a dead claim; while we hold its lock nobody else can take it
            return False
        finally:
            os.close(fd)

    def owner_of(self, file_name: str) -> str | None:
        """The live claim whose token is one of the dot-separated parts of `file_name`, if any."""
        return next((part for part in file_name.split(".") if self.is_alive(part)), None)

    def sweep(self) -> int:
        """Remove the claim files of dead processes; returns how many."""
        removed = 0
        for path in self.folder.iterdir():
            token = path.name.removesuffix(".lock")
            if path.name.endswith(".lock") and token != self.token and not self.is_alive(token):
                removed += 1
            elif path.name.endswith(".tmp"):
                # a process killed between creating and renaming its claim: never locked by anyone now
                with contextlib.suppress(OSError):
                    fd = os.open(path, os.O_RDWR)
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        path.unlink(missing_ok=True)
                    except BlockingIOError:
                        pass
                    finally:
                        os.close(fd)
        return removed

    def release(self) -> None:
        if self._fd is None:
            return
        self._path(self.token).unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
