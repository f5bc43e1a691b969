"""API keys the agents use (Anthropic, CoinGlass): 0600 files in the data directory, shown masked, never echoed.

Keys live in `<data_dir>/keys/<name>.key`, written atomically with mode 0600 in a 0700 folder. The
server reads a key when it needs it (a request to the API, in the server process); it never puts one
in an environment, a log line, a tool result or a sandbox (the sandbox hides the data directory and
runs as another user with an empty environment).
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from pathlib import Path
from typing import Literal

from quantdesk.server.errors import InvalidArgument, Problem

KeyName = Literal["anthropic", "coinglass"]
# The patterns are also the tools' input schemas, so clients see the rule before they send a key.
ANTHROPIC_KEY_PATTERN = r"^sk-ant-[A-Za-z0-9_\-]{4,250}$"
COINGLASS_KEY_PATTERN = r"^[A-Za-z0-9._\-]{4,256}$"
_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "anthropic": (re.compile(ANTHROPIC_KEY_PATTERN), "must start with sk-ant- followed by letters, digits, '-' or '_'"),
    "coinglass": (re.compile(COINGLASS_KEY_PATTERN), "may hold only letters, digits, '.', '-' and '_'"),
}
_PREFIX = {"anthropic": 8, "coinglass": 6}


def mask(key: str, prefix: int = 6, suffix: int = 4) -> str:
    """`sk-ant-a...xY9z`; short keys show as `***` (MANTIS' rule)."""
    if len(key) <= prefix + suffix + 3:
        return "***"
    return key[:prefix] + "..." + key[-suffix:]


class KeyStore:
    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "keys"
        self._lock = threading.Lock()

    def _path(self, name: KeyName) -> Path:
        return self.folder / f"{name}.key"

    def get(self, name: KeyName) -> str | None:
        try:
            value = self._path(name).read_text().strip()
        except FileNotFoundError:
            return None
        return value or None

    def set(self, name: KeyName, value: str) -> str:
        """Store a key; returns its masked form. The value is checked, never echoed in the error."""
        value = value.strip()
        pattern, rule = _RULES[name]
        if not pattern.fullmatch(value):
            raise InvalidArgument.from_problems([Problem("$.key", rule)])
        with self._lock:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.folder, 0o700)
            tmp = self.folder / f".{name}.{secrets.token_hex(4)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(value)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self._path(name))
            finally:
                tmp.unlink(missing_ok=True)
        return self.masked(name) or "***"

    def delete(self, name: KeyName) -> bool:
        with self._lock:
            try:
                self._path(name).unlink()
                return True
            except FileNotFoundError:
                return False

    def masked(self, name: KeyName) -> str | None:
        value = self.get(name)
        return None if value is None else mask(value, _PREFIX[name])
