"""The light front of the agent service: built at server start, it builds the heavy service only when needed.

At start it looks in SQLite for agents that were running (or whose holdout run was cut off); only then
does it build the `AgentService` (numpy, the sandbox, the data cache), which resumes them. Otherwise
the service is built at the first call that needs it, so a server without agents starts as fast as
one without this domain.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from quantdesk.tools.agents.keys import KeyStore
from quantdesk.tools.agents.runner.store import ACTIVE, SqlState
from quantdesk.tools.caches.store import ArtifactStore

if TYPE_CHECKING:
    from quantdesk.tools.agents.runner.events import AgentChanged
    from quantdesk.tools.agents.runner.service import AgentService


class Agents:
    def __init__(self, data_dir: Path, state: SqlState, artifacts: Callable[[], ArtifactStore],
                 background: bool = True, publish: Callable[[AgentChanged], object] | None = None) -> None:
        """`background=False` (a one-shot command) never resumes agents here: the long-lived server does."""
        self.data_dir = data_dir
        self.background = background
        self._publish = publish
        self.state = state
        self._artifacts = artifacts
        self.keys = KeyStore(data_dir)
        self._service: AgentService | None = None
        self._lock = threading.Lock()
        from quantdesk.tools.agents.runner.store import AgentStore

        store = AgentStore(state)
        rows = store.all()
        if background and any(r.status in ACTIVE or (r.holdout or {}).get("status") == "running" for r in rows):
            self.service()

    def service(self) -> AgentService:
        with self._lock:
            if self._service is None:
                from quantdesk.tools.agents.runner.service import AgentService

                self._service = AgentService(self.data_dir, self.state, self._artifacts(), resume=self.background,
                                             publish=self._publish)
            return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
