"""API keys with scopes: stored as hashes in SQLite, accepted as `X-API-Key` or `Authorization: Bearer`.

A key is shown once, at creation. The database holds only its sha256 (keys are 256-bit random
tokens, so a fast hash is enough: there is nothing to brute-force). With no key configured
at all, the server is in open loopback mode: loopback callers get every scope.

Open mode must never be reached by losing keys. So the first stored key also writes a marker file
beside the database (`<db stem>.keys-marker.json`, listing each key's id, name and scopes, never a
secret); while it exists, a store whose key table is empty or missing refuses to open
(`KeysMissing`), and only `quantdesk state recover` clears it. The environment key
(QUANTDESK_API_KEY) is not stored, so it writes no marker.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantdesk.server.context import LOCAL_PRINCIPAL, SCOPES, Principal
from quantdesk.server.errors import InvalidArgument, NotFound, Unauthorized
from quantdesk.server.state import StateDamaged, StateStore, fsync_directory, recovery_commands, write_file_atomically

if TYPE_CHECKING:
    from quantdesk.server.oauth import TokenIssuer

KEY_PREFIX = "qd_"
ENV_KEY_ID = "env"

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )""",
]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise InvalidArgument(f"unknown scopes {unknown}; choose from {', '.join(SCOPES)}" if unknown
                              else "give at least one scope")
    return scopes


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    name: str
    scopes: frozenset[str]
    created_at: str
    revoked_at: str | None

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "scopes": sorted(self.scopes),
                "created_at": self.created_at, "revoked_at": self.revoked_at}


class KeyMarker:
    """The file that remembers, outside the database, that keys were stored in it."""

    def __init__(self, state_path: Path) -> None:
        self.path = state_path.with_name(f"{state_path.stem}.keys-marker.json")
        self.database = state_path

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> dict[str, Any]:
        """The recorded document; an unreadable one still counts as a marker (it is there, so keys were)."""
        try:
            document = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}

    def keys(self) -> list[dict[str, Any]]:
        keys = self.read().get("keys")
        return [k for k in keys if isinstance(k, dict)] if isinstance(keys, list) else []

    def record(self, records: list[KeyRecord]) -> None:
        """Write the marker (atomically) when what it lists differs from the stored keys."""
        keys = [r.as_dict() for r in records]
        current = self.read() if self.exists() else None
        if current is not None and current.get("keys") == keys:
            return
        since = (current or {}).get("since") or datetime.now(UTC).isoformat()
        document = {"database": self.database.name, "since": since, "keys": keys,
                    "what": "API keys are stored in the database named here. While this file exists, quantdesk "
                            "refuses to start on that database if its key table is empty or missing, instead of "
                            "opening access. Only `quantdesk state recover` clears it."}
        write_file_atomically(self.path, json.dumps(document, indent=2).encode() + b"\n")

    def move_aside(self, label: str) -> Path | None:
        """Clear the marker, keeping it as `<name>.<label>`: it lists the keys to create again."""
        if not self.exists():
            return None
        target = self.path.with_name(f"{self.path.name}.{label}")
        os.replace(self.path, target)
        fsync_directory(self.path.parent)
        return target


class KeysMissing(StateDamaged):
    """Keys were stored (the marker says so) but the store holds none: it was replaced, truncated or emptied."""

    def __init__(self, marker: KeyMarker) -> None:
        _, recover = recovery_commands(marker.database)
        active = sum(1 for k in marker.keys() if not k.get("revoked_at"))
        super().__init__(marker.database, "no API keys, but keys were stored before", message=(
            f"the state store {marker.database} holds no API keys, but keys were stored in it before ({active} "
            f"active, as recorded in {marker.path}), so the file was replaced, truncated or emptied; quantdesk "
            f"will not start on it, because an empty key table would open access to every loopback caller. Stop "
            f"any server that uses it, then restore the file from a backup, or accept the loss with `{recover}`, "
            f"which moves the file aside (it is kept, never deleted), clears the marker and lists the keys to "
            f"create again."))
        self.marker = marker


class KeyStore:
    """Creates, lists, revokes and resolves keys; resolution is cached until the database changes.

    Refuses to open (`KeysMissing`) on a store with no key rows when the marker says keys were stored.
    """

    def __init__(self, state: StateStore, env_key: str | None = None) -> None:
        self._state = state
        self._env_key = env_key
        self.marker = KeyMarker(state.path)
        # Checked before the DDL, so a refused store is left as it was found.
        if self.marker.exists() and not self._has_key_rows():
            raise KeysMissing(self.marker)
        state.ensure_schema("api_keys", _SCHEMA)
        self._lock = threading.Lock()
        self._version = -1
        self._by_hash: dict[str, Principal] = {}
        records = self.list()
        if records:
            self.marker.record(records)  # a store from before markers, or a crash between commit and marker
        # Once keys were stored, this process never falls back to open mode, whatever the table shows later.
        self._keys_stored = bool(records)

    def _has_key_rows(self) -> bool:
        if not self._state.query("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'api_keys'"):
            return False
        return bool(self._state.query("SELECT 1 FROM api_keys LIMIT 1"))

    def create(self, scopes: frozenset[str], name: str | None = None) -> tuple[KeyRecord, str]:
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = KeyRecord(key_id, name or f"key-{key_id}", scopes, datetime.now(UTC).isoformat(), None)
        with self._state.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, name, key_hash, scopes, created_at) VALUES (?, ?, ?, ?, ?)",
                (record.id, record.name, _hash(secret), ",".join(sorted(scopes)), record.created_at),
            )
        self._keys_stored = True
        self.marker.record(self.list())
        return record, secret

    def list(self) -> list[KeyRecord]:
        rows = self._state.query("SELECT id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at")
        return [KeyRecord(r["id"], r["name"], frozenset(r["scopes"].split(",")), r["created_at"], r["revoked_at"])
                for r in rows]

    def revoke(self, id_or_name: str) -> KeyRecord:
        now = datetime.now(UTC).isoformat()
        with self._state.transaction() as conn:
            rows = conn.execute("SELECT id FROM api_keys WHERE (id = ? OR name = ?) AND revoked_at IS NULL",
                                (id_or_name, id_or_name)).fetchall()
            if not rows:
                raise NotFound(f"no active key with id or name {id_or_name!r}")
            if len(rows) > 1:
                raise InvalidArgument(f"{len(rows)} keys are named {id_or_name!r}; revoke by id")
            conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (now, rows[0]["id"]))
        self._version = -1
        records = self.list()
        self.marker.record(records)
        return next(r for r in records if r.id == rows[0]["id"])

    def _refresh(self) -> None:
        version = self._state.data_version()
        if version == self._version:
            return
        rows = self._state.query("SELECT id, name, key_hash, scopes FROM api_keys WHERE revoked_at IS NULL")
        self._by_hash = {
            r["key_hash"]: Principal.with_scopes(r["id"], r["name"], frozenset(r["scopes"].split(","))) for r in rows
        }
        self._version = version

    def has_keys(self) -> bool:
        """Whether callers need a key: true once any key was stored, even if every one is revoked since."""
        if self._env_key or self._keys_stored:
            return True
        with self._lock:
            self._refresh()
            if self._by_hash:
                self._keys_stored = True
            return self._keys_stored

    def resolve(self, secret: str) -> Principal | None:
        if self._env_key and hmac.compare_digest(secret.encode(), self._env_key.encode()):
            return Principal.with_scopes(ENV_KEY_ID, "QUANTDESK_API_KEY", frozenset({"admin"}))
        with self._lock:
            self._refresh()
            return self._by_hash.get(_hash(secret))


def credential_from_headers(headers: dict[str, str]) -> str | None:
    """The key a request carries, from `X-API-Key` or `Authorization: Bearer` (lower-cased header names)."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class Authenticator:
    """Turns a request's credential and peer address into a Principal, or refuses."""

    def __init__(self, keys: KeyStore, tokens: TokenIssuer | None = None) -> None:
        self.keys = keys
        self.tokens = tokens

    def open_mode(self) -> bool:
        return not self.keys.has_keys() and not (self.tokens is not None and self.tokens.users.exist())

    def authenticate(self, credential: str | None, client_is_loopback: bool) -> Principal:
        from quantdesk.server.oauth import looks_like_jwt

        if credential is not None:
            if self.tokens is not None and looks_like_jwt(credential):
                return self.tokens.principal(credential)
            principal = self.keys.resolve(credential)
            if principal is None:
                raise Unauthorized("unknown or revoked API key")
            return principal
        if client_is_loopback and self.open_mode():
            return LOCAL_PRINCIPAL
        raise Unauthorized("an API key is required: send X-API-Key or Authorization: Bearer")
