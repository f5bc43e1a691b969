"""Which server-side files a tool may read or write: the data directory and the configured import directories.

Tools that take a path (normalize_file, describe_dataset) resolve it here, so a caller can never
reach a file outside those roots, symlinks included. Relative paths are taken from the data
directory, which is where a remote client's files land anyway.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from quantdesk.server.errors import Conflict, InvalidArgument, NotFound, Problem


class ServerPaths:
    """The roots a path argument must resolve into, and the checks for reading and writing there."""

    def __init__(self, data_dir: Path, import_dirs: Iterable[Path] = ()) -> None:
        self.data_dir = data_dir
        self.roots: tuple[Path, ...] = tuple(dict.fromkeys(p.resolve() for p in (data_dir, *import_dirs)))

    def _confine(self, raw: str, field: str) -> Path:
        if not raw or "\x00" in raw:
            raise InvalidArgument.from_problems([Problem(field, "is not a usable path")])
        path = Path(raw).expanduser()
        resolved = (path if path.is_absolute() else self.data_dir / path).resolve()
        if not any(resolved == root or resolved.is_relative_to(root) for root in self.roots):
            raise InvalidArgument.from_problems([Problem(
                field, "must be inside the data directory or an import directory (QUANTDESK_IMPORT_DIRS)")])
        return resolved

    def readable(self, raw: str, field: str) -> Path:
        """A regular file inside the roots that the server can read."""
        path = self._confine(raw, field)
        if not path.is_file():
            raise NotFound(f"{field}: no file at {raw}")
        if not os.access(path, os.R_OK):
            raise InvalidArgument.from_problems([Problem(field, "the server cannot read this file")])
        return path

    def writable(self, raw: str, field: str, *, overwrite: bool) -> Path:
        """A path inside the roots whose folder exists; an existing file only when `overwrite` says so."""
        path = self._confine(raw, field)
        if not path.parent.is_dir():
            raise InvalidArgument.from_problems([Problem(field, "the folder does not exist")])
        if path.is_dir():
            raise InvalidArgument.from_problems([Problem(field, "is a directory")])
        if path.exists() and not overwrite:
            raise Conflict(f"{field}: {raw} exists; pass overwrite: true (CLI: --overwrite) to replace it")
        return path
