"""Artifacts: a Parquet file plus a manifest JSON beside it, written atomically.

`ArtifactStore` is the seam: the local filesystem now; an object store (a pyarrow filesystem)
can stand behind the same interface later. Writers produce a file in `staging()` (same
filesystem, so the final rename is atomic), then `commit()` publishes it with its manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from quantdesk.server.errors import InvalidArgument, NotFound, Problem

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,95}$"
_NAME = re.compile(NAME_PATTERN)
PARQUET = "application/vnd.apache.parquet"


def check_name(name: str, field: str = "cache_key") -> str:
    """Refuse anything that is not a plain artifact name (no separators, no dots, no traversal)."""
    if not _NAME.fullmatch(name):
        raise InvalidArgument.from_problems([Problem(f"$.{field}", "must be 1-96 letters, digits, '_' or '-', "
                                                                  "starting with a letter or digit")])
    return name


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

    def read_manifest(self, name: str) -> dict[str, Any]: ...

    def delete(self, name: str) -> bool: ...


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    """Artifacts in `<data_dir>/artifacts/`: `<name>.parquet` and `<name>.manifest.json`."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._staging = root / ".staging"
        self._staging.mkdir(exist_ok=True)

    def parquet_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.parquet"

    def manifest_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.manifest.json"

    @contextlib.contextmanager
    def staging(self, name: str) -> Iterator[Path]:
        """A private path to write into; removed afterwards unless committed."""
        staged = self._staging / f"{check_name(name)}.{secrets.token_hex(4)}.parquet"
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
        return Artifact(name, target, manifest_file, size, digest)

    def get(self, name: str) -> Artifact:
        path = self.parquet_path(name)
        if not path.exists():
            raise NotFound(f"no artifact named {name!r}")
        manifest = self.read_manifest(name)
        return Artifact(name, path, self.manifest_path(name), path.stat().st_size, str(manifest.get("file_sha256")))

    def read_manifest(self, name: str) -> dict[str, Any]:
        path = self.manifest_path(name)
        if not path.exists():
            raise NotFound(f"no artifact named {name!r}")
        document: dict[str, Any] = json.loads(path.read_text())
        return document

    def delete(self, name: str) -> bool:
        existed = self.parquet_path(name).exists()
        self.parquet_path(name).unlink(missing_ok=True)
        self.manifest_path(name).unlink(missing_ok=True)
        return existed

    def clean_staging(self) -> int:
        """Remove what an interrupted writer left behind (run at start-up)."""
        removed = 0
        for leftover in self._staging.iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed
