"""API keys with scopes: stored as hashes in SQLite, accepted as `X-API-Key` or `Authorization: Bearer`.

A key is shown once, at creation. The database holds only its sha256 (keys are 256-bit random
tokens, so a fast hash is enough: there is nothing to brute-force). With no key configured
at all, the server is in open loopback mode: loopback callers get every scope.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from quantdesk.server.context import LOCAL_PRINCIPAL, SCOPES, Principal
from quantdesk.server.errors import InvalidArgument, NotFound, Unauthorized
from quantdesk.server.state import StateStore

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


class KeyStore:
    """Creates, lists, revokes and resolves keys; resolution is cached until the database changes."""

    def __init__(self, state: StateStore, env_key: str | None = None) -> None:
        self._state = state
        self._env_key = env_key
        state.ensure_schema("api_keys", _SCHEMA)
        self._lock = threading.Lock()
        self._version = -1
        self._by_hash: dict[str, Principal] = {}

    def create(self, scopes: frozenset[str], name: str | None = None) -> tuple[KeyRecord, str]:
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = KeyRecord(key_id, name or f"key-{key_id}", scopes, datetime.now(UTC).isoformat(), None)
        with self._state.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, name, key_hash, scopes, created_at) VALUES (?, ?, ?, ?, ?)",
                (record.id, record.name, _hash(secret), ",".join(sorted(scopes)), record.created_at),
            )
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
        return next(r for r in self.list() if r.id == rows[0]["id"])

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
        if self._env_key:
            return True
        with self._lock:
            self._refresh()
            return bool(self._by_hash)

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

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def open_mode(self) -> bool:
        return not self.keys.has_keys()

    def authenticate(self, credential: str | None, client_is_loopback: bool) -> Principal:
        if credential is not None:
            principal = self.keys.resolve(credential)
            if principal is None:
                raise Unauthorized("unknown or revoked API key")
            return principal
        if client_is_loopback and self.open_mode():
            return LOCAL_PRINCIPAL
        raise Unauthorized("an API key is required: send X-API-Key or Authorization: Bearer")
