"""Runtime settings: embedded defaults, overridden by QUANTDESK_* environment variables and CLI flags."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "quantdesk"


@lru_cache(maxsize=1024)
def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = field(default_factory=default_data_dir)
    env_api_key: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    tools_page_size: int = 500
    """Every tool on one page by default: MCP clients (the Python SDK among them) re-read only the first
    page to find a tool's output schema, so a tool past it failed their validation."""
    background: bool = True
    """Whether this process runs background work (job resumption, the desk's live runner, research agents);
    one-shot CLI commands turn it off and leave that work to the long-lived server."""
    jwt_secret: str | None = None
    """Signs the OAuth2 password flow's tokens (QUANTDESK_JWT_SECRET); a random one in the data directory if unset."""
    jwt_expire_minutes: int = 30
    mcp_extension: str | None = None
    """`module:attribute` of an MCP extension object to serve beside the registry (the conformance fixtures)."""
    max_resource_bytes: int = 8 * 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the API cross-site (CORS); none by default."""
    log_level: str = "INFO"
    tool_modules: tuple[str, ...] = ()
    """Extra modules defining `tools = ToolSet(...)`, beside quantdesk.tools (QUANTDESK_TOOL_MODULES)."""
    import_dirs: tuple[Path, ...] = ()
    dashboard: bool = True
    """Serve the web dashboard at /ui (QUANTDESK_DASHBOARD=0 turns it off)."""
    """Folders besides the data directory whose files path-taking tools may read and write (QUANTDESK_IMPORT_DIRS)."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        settings = cls()
        if env.get("QUANTDESK_DATA_DIR"):
            settings = replace(settings, data_dir=Path(env["QUANTDESK_DATA_DIR"]))
        if env.get("QUANTDESK_API_KEY"):
            settings = replace(settings, env_api_key=env["QUANTDESK_API_KEY"])
        if env.get("QUANTDESK_HOST"):
            settings = replace(settings, host=env["QUANTDESK_HOST"])
        if env.get("QUANTDESK_PORT"):
            settings = replace(settings, port=int(env["QUANTDESK_PORT"]))
        if env.get("QUANTDESK_MAX_BODY_BYTES"):
            settings = replace(settings, max_body_bytes=int(env["QUANTDESK_MAX_BODY_BYTES"]))
        if env.get("QUANTDESK_ALLOWED_HOSTS"):
            settings = replace(settings, allowed_hosts=_split(env["QUANTDESK_ALLOWED_HOSTS"]))
        if env.get("QUANTDESK_ALLOWED_ORIGINS"):
            settings = replace(settings, allowed_origins=_split(env["QUANTDESK_ALLOWED_ORIGINS"]))
        if env.get("QUANTDESK_TOOLS_PAGE_SIZE"):
            settings = replace(settings, tools_page_size=max(1, int(env["QUANTDESK_TOOLS_PAGE_SIZE"])))
        if env.get("QUANTDESK_TOOL_MODULES"):
            settings = replace(settings, tool_modules=_split(env["QUANTDESK_TOOL_MODULES"]))
        if env.get("QUANTDESK_MAX_RESOURCE_BYTES"):
            settings = replace(settings, max_resource_bytes=int(env["QUANTDESK_MAX_RESOURCE_BYTES"]))
        if env.get("QUANTDESK_CORS_ORIGINS"):
            settings = replace(settings, cors_origins=_split(env["QUANTDESK_CORS_ORIGINS"]))
        if env.get("QUANTDESK_JWT_SECRET"):
            settings = replace(settings, jwt_secret=env["QUANTDESK_JWT_SECRET"])
        if env.get("QUANTDESK_JWT_EXPIRE_MINUTES"):
            settings = replace(settings, jwt_expire_minutes=max(1, int(env["QUANTDESK_JWT_EXPIRE_MINUTES"])))
        if env.get("QUANTDESK_MCP_EXTENSION"):
            settings = replace(settings, mcp_extension=env["QUANTDESK_MCP_EXTENSION"])
        if env.get("QUANTDESK_IMPORT_DIRS"):
            settings = replace(settings, import_dirs=tuple(Path(p) for p in _split(env["QUANTDESK_IMPORT_DIRS"])))
        if env.get("QUANTDESK_DASHBOARD"):
            enabled = env["QUANTDESK_DASHBOARD"].lower() not in ("0", "false", "no", "off")
            settings = replace(settings, dashboard=enabled)
        if env.get("QUANTDESK_LOG_LEVEL"):
            settings = replace(settings, log_level=env["QUANTDESK_LOG_LEVEL"].upper())
        return settings

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    def host_allowlist(self) -> list[str]:
        """Host headers accepted (DNS-rebinding protection): loopback names plus the configured ones."""
        hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
        if not is_loopback_host(self.host) and self.host not in ("0.0.0.0", "::"):
            hosts += [f"{self.host}:*", self.host]
        return hosts + list(self.allowed_hosts)

    def origin_allowlist(self) -> list[str]:
        origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
        return origins + list(self.allowed_origins) + list(self.cors_origins)

    @property
    def state_path(self) -> Path:
        return self.data_dir / "quantdesk.sqlite3"
