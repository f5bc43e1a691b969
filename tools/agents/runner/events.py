"""The agents domain's bus event: something a viewer of an agent would see changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class AgentChanged:
    """An agent was created, changed status or phase, finished an iteration, got a message or was deleted."""

    agent_id: str
    change: str
    """created, updated (status, phase, pause, holdout, goal, inbox), iteration, chat or deleted."""

    topic: ClassVar[str] = "agent"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "agent_id": self.agent_id, "change": self.change}
