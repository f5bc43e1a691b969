"""Users with passwords, and the short-lived JWT bearer tokens the OAuth2 password flow issues for them.

AlphaPulse clients log in at `POST /token` with a username and password and then send
`Authorization: Bearer <jwt>`. Users live in SQLite beside the API keys (managed by
`quantdesk users ...`); passwords are stored as scrypt hashes. Tokens are HS256 JWTs signed with
a secret kept in the data directory (mode 0600) or given as QUANTDESK_JWT_SECRET, and carry the
user's scopes at issue time; a user removed or disabled since is refused on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quantdesk.server.context import Principal
from quantdesk.server.errors import Conflict, InvalidArgument, NotFound, Unauthorized
from quantdesk.server.state import StateStore

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS users (
        username TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created_at TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
    )""",
]
ISSUER = "quantdesk"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, n, salt, digest = stored.split("$")
        actual = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), dklen=32, n=int(n), r=8, p=1)
    except ValueError:
        return False
    return hmac.compare_digest(actual.hex(), digest)


@dataclass(frozen=True, slots=True)
class User:
    username: str
    scopes: frozenset[str]
    created_at: str
    disabled: bool

    def as_dict(self) -> dict[str, Any]:
        return {"username": self.username, "scopes": sorted(self.scopes), "created_at": self.created_at,
                "disabled": self.disabled}


class UserStore:
    def __init__(self, state: StateStore) -> None:
        self._state = state
        state.ensure_schema("users", _SCHEMA)

    def create(self, username: str, password: str, scopes: frozenset[str]) -> User:
        if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "") \
                .isalnum():
            raise InvalidArgument("a username is 1-64 letters, digits, '-', '_' or '.'")
        if len(password) < 12:
            raise InvalidArgument("a password needs at least 12 characters")
        user = User(username, scopes, datetime.now(UTC).isoformat(), False)
        with self._state.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                raise Conflict(f"user {username!r} exists")
            conn.execute("INSERT INTO users (username, password_hash, scopes, created_at) VALUES (?, ?, ?, ?)",
                         (username, hash_password(password), ",".join(sorted(scopes)), user.created_at))
        return user

    def list(self) -> list[User]:
        return [User(r["username"], frozenset(r["scopes"].split(",")), r["created_at"], bool(r["disabled"]))
                for r in self._state.query("SELECT * FROM users ORDER BY username")]

    def exist(self) -> bool:
        return bool(self._state.query("SELECT 1 FROM users LIMIT 1"))

    def delete(self, username: str) -> None:
        with self._state.transaction() as conn:
            if conn.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount == 0:
                raise NotFound(f"no user {username!r}")

    def verify(self, username: str, password: str) -> User | None:
        rows = self._state.query("SELECT * FROM users WHERE username = ?", (username,))
        # A missing user still costs one hash, so timing does not tell which usernames exist.
        stored = rows[0]["password_hash"] if rows else hash_password(secrets.token_hex(8))
        if not check_password(password, stored) or not rows or rows[0]["disabled"]:
            return None
        row = rows[0]
        return User(row["username"], frozenset(row["scopes"].split(",")), row["created_at"], False)

    def active(self, username: str) -> bool:
        rows = self._state.query("SELECT disabled FROM users WHERE username = ?", (username,))
        return bool(rows) and not rows[0]["disabled"]


def _load_secret(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes()
    secret = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return secret


class TokenIssuer:
    """Issues and checks the JWTs of the password flow."""

    def __init__(self, users: UserStore, data_dir: Path, secret: str | None, expire_minutes: int) -> None:
        self.users = users
        self.expire_minutes = expire_minutes
        self._secret = secret.encode() if secret else _load_secret(data_dir / "jwt-secret")

    def issue(self, username: str, password: str) -> dict[str, Any]:
        import jwt

        user = self.users.verify(username, password)
        if user is None:
            raise Unauthorized("incorrect username or password")
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user.username, "iat": now, "exp": now + self.expire_minutes * 60,
                  "scopes": sorted(user.scopes)}
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        return {"access_token": token, "token_type": "bearer", "expires_in": self.expire_minutes * 60}

    def principal(self, token: str) -> Principal:
        import jwt

        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], issuer=ISSUER,
                                options={"require": ["exp", "sub", "iss"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired: log in again at /token") from None
        except jwt.PyJWTError:
            raise Unauthorized("the access token is not valid") from None
        username = str(claims["sub"])
        if not self.users.active(username):
            raise Unauthorized("the access token's user no longer exists or is disabled")
        return Principal.with_scopes(f"user:{username}", username, frozenset(claims.get("scopes", [])))


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2 and credential.startswith("eyJ")
