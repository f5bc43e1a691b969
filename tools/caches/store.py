"""Artifacts: a Parquet file plus a manifest JSON beside it, written atomically, and checked when read.

`ArtifactStore` is the seam: the local filesystem now; an object store (a pyarrow filesystem)
can stand behind the same interface later. Writers produce a file in `staging()` (same
filesystem, so the final rename is atomic), then `commit()` publishes it with its manifest.

Every lookup (`get`, `verify`) checks the file's size against its manifest; `verify(sha256=True)`
also checks its digest (on cache hits and exports, where reading the file once is cheap next to
what follows). A file that fails is moved to `.quarantine/` beside the artifacts, never served,
and `ArtifactDamaged` says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

from quantdesk.server.errors import InvalidArgument, NotFound, Problem

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,95}$"
_NAME = re.compile(NAME_PATTERN)
PARQUET = "application/vnd.apache.parquet"
logger = logging.getLogger("quantdesk.caches")


def check_name(name: str, field: str = "cache_key") -> str:
    """Refuse anything that is not a plain artifact name (no separators, no dots, no traversal)."""
    if not _NAME.fullmatch(name):
        raise InvalidArgument.from_problems([Problem(f"$.{field}", "must be 1-96 letters, digits, '_' or '-', "
                                                                  "starting with a letter or digit")])
    return name


class ArtifactDamaged(NotFound):
    """An artifact failed verification: it was moved to quarantine and is no longer served."""

    def __init__(self, name: str, reason: str, quarantined_at: str | None = None) -> None:
        when = f" at {quarantined_at}" if quarantined_at else ""
        super().__init__(f"cache entry {name!r} failed verification ({reason}) and was moved to quarantine{when}; "
                         "it is no longer in the cache: generate or normalize it again")
        self.name = name
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    path: Path
    manifest_path: Path
    bytes: int
    sha256: str


class ArtifactStore(Protocol):
    backend: str

    def staging(self, name: str) -> contextlib.AbstractContextManager[Path]: ...

    def commit(self, staged: Path, name: str, manifest: dict[str, Any]) -> Artifact: ...

    def get(self, name: str) -> Artifact: ...

    def verify(self, name: str, *, expected_bytes: int | None = None, sha256: bool = False) -> Artifact: ...

    def read_manifest(self, name: str) -> dict[str, Any]: ...

    def delete(self, name: str) -> bool: ...


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _signature(stat: os.stat_result) -> tuple[int, int, int, int]:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class LocalArtifactStore:
    """Artifacts in `<data_dir>/artifacts/`: `<name>.parquet` and `<name>.manifest.json`.

    Staged files carry the writer's `owner` token in their name (`<name>.<owner>.<random>.parquet`,
    and the pipeline's temporary file beside it starts with that name), so start-up clean-up can
    tell a dead writer's leftovers from a live one's work in progress. `on_quarantine(name, reason)`
    is called after a damaged artifact was moved away (the cache service drops its index entry).
    """

    backend = "local"

    def __init__(self, root: Path, owner: str | None = None,
                 on_quarantine: Callable[[str, str], None] | None = None) -> None:
        self.root = root
        self.owner = owner or f"p{os.getpid()}-{secrets.token_hex(4)}"
        self.on_quarantine = on_quarantine
        root.mkdir(parents=True, exist_ok=True)
        self._staging = root / ".staging"
        self._staging.mkdir(exist_ok=True)
        self.quarantine_dir = root / ".quarantine"
        # name -> (inode, size, mtime, ctime) of the file whose digest last matched, so an unchanged file is
        # not hashed again. Any write to the file changes its ctime, which no caller can set back.
        self._digest_ok: dict[str, tuple[int, int, int, int]] = {}

    def parquet_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.parquet"

    def manifest_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.manifest.json"

    @contextlib.contextmanager
    def staging(self, name: str) -> Iterator[Path]:
        """A private path to write into; removed afterwards unless committed."""
        staged = self._staging / f"{check_name(name)}.{self.owner}.{secrets.token_hex(4)}.parquet"
        try:
            yield staged
        finally:
            staged.unlink(missing_ok=True)

    def commit(self, staged: Path, name: str, manifest: dict[str, Any]) -> Artifact:
        """Publish a staged file: manifest first (so a listed Parquet always has one), then an atomic rename."""
        target, manifest_file = self.parquet_path(name), self.manifest_path(name)
        size = staged.stat().st_size
        digest = manifest.get("file_sha256") or sha256_file(staged)
        write_json_atomically(manifest_file, {**manifest, "file_sha256": digest, "content_length_bytes": size})
        try:
            with open(staged, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(staged, target)
            _fsync_dir(self.root)
        except BaseException:
            manifest_file.unlink(missing_ok=True)
            raise
        self._digest_ok[name] = _signature(target.stat())
        return Artifact(name, target, manifest_file, size, digest)

    def get(self, name: str) -> Artifact:
        """The artifact, after checking its size against its manifest (a damaged one is quarantined)."""
        return self.verify(name)

    def verify(self, name: str, *, expected_bytes: int | None = None, sha256: bool = False) -> Artifact:
        """Check the file against its manifest (size; the digest too when `sha256`) and an index's `expected_bytes`.

        Raises `NotFound` when there is no such artifact, and `ArtifactDamaged` (after moving its files
        to quarantine) when there is one that fails.
        """
        path, manifest_file = self.parquet_path(name), self.manifest_path(name)
        try:
            stat = path.stat()
        except FileNotFoundError:
            if manifest_file.exists() or expected_bytes is not None:
                self.quarantine(name, "its Parquet file is missing")
            raise NotFound(f"no artifact named {name!r}") from None
        manifest = self.read_manifest(name)
        recorded = manifest.get("content_length_bytes")
        for expected, source in ((recorded, "its manifest"), (expected_bytes, "the cache index")):
            if expected is not None and stat.st_size != expected:
                self.quarantine(name, f"the file is {stat.st_size} bytes, {source} records {expected}")
        digest = str(manifest.get("file_sha256"))
        if sha256 and self._digest_ok.get(name) != _signature(stat):
            if sha256_file(path) != digest:
                self.quarantine(name, "its sha256 differs from the one recorded when it was written")
            self._digest_ok[name] = _signature(stat)
        return Artifact(name, path, manifest_file, stat.st_size, digest)

    def read_manifest(self, name: str) -> dict[str, Any]:
        path = self.manifest_path(name)
        try:
            text = path.read_text()
        except FileNotFoundError:
            if self.parquet_path(name).exists():
                self.quarantine(name, "its manifest is missing")
            raise NotFound(f"no artifact named {name!r}") from None
        try:
            document = json.loads(text)
        except ValueError:
            self.quarantine(name, "its manifest is not valid JSON")
        if not isinstance(document, dict):
            self.quarantine(name, "its manifest is not a JSON object")
        return document

    def quarantine(self, name: str, reason: str) -> NoReturn:
        """Move the artifact's files to `.quarantine/` with a note of why, tell `on_quarantine`, and raise."""
        at = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        self.quarantine_dir.mkdir(exist_ok=True)
        moved = []
        for source in (self.parquet_path(name), self.manifest_path(name)):
            with contextlib.suppress(FileNotFoundError):
                target = self.quarantine_dir / f"{name}.{at}.{source.name.removeprefix(name + '.')}"
                os.replace(source, target)
                moved.append(target.name)
        write_json_atomically(self.quarantine_dir / f"{name}.{at}.reason.json",
                              {"cache_key": name, "reason": reason, "quarantined_at": at, "files": moved})
        self._digest_ok.pop(name, None)
        logger.error("artifact %s failed verification (%s): moved to %s", name, reason, self.quarantine_dir)
        if self.on_quarantine is not None:
            self.on_quarantine(name, reason)
        raise ArtifactDamaged(name, reason, at)

    def delete(self, name: str) -> bool:
        self._digest_ok.pop(name, None)
        existed = self.parquet_path(name).exists()
        self.parquet_path(name).unlink(missing_ok=True)
        self.manifest_path(name).unlink(missing_ok=True)
        return existed

    def clean_staging(self, owner_of: Callable[[str], str | None] = lambda name: None) -> list[tuple[str, int]]:
        """Remove what interrupted writers left behind (run at start-up): every staged file but those whose
        writer still runs (`owner_of(file name)` names a live owner). Returns each removed name and size."""
        removed: list[tuple[str, int]] = []
        for leftover in self._staging.iterdir():
            if owner_of(leftover.name) is not None:
                continue
            with contextlib.suppress(FileNotFoundError):
                size = leftover.stat().st_size
                leftover.unlink()
                removed.append((leftover.name, size))
        return removed
