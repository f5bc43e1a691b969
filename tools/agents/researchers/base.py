"""The researcher interface: propose the next iteration's strategy; answer an operator's question."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from quantdesk.tools.agents.challenges import Challenge


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def as_tokens(self) -> dict[str, Any]:
        """The MANTIS iteration record's `tokens` field."""
        return {"input": self.input_tokens, "output": self.output_tokens, "cost": round(self.cost_usd, 6)}


@dataclass(frozen=True, slots=True)
class ResearchContext:
    agent_id: str
    challenge: Challenge
    goal: str
    state_md: str
    notes: str
    inbox: str
    history: list[dict[str, Any]]
    """Earlier iterations: iteration, dev metrics (never holdout), feature_report, feature_spec, learner_spec,
    hypothesis, what_changed, has_error, error."""
    iteration: int
    min_iterations: int
    max_iterations: int
    model: str
    seed: int


@dataclass(frozen=True, slots=True)
class Proposal:
    hypothesis: str
    what_changed: str
    code: str
    done: bool = False
    notes: str = ""
    state_md: str = ""
    feature_spec: list[dict[str, Any]] = field(default_factory=list)
    learner_spec: dict[str, Any] = field(default_factory=dict)
    inference_spec: dict[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    thoughts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ResearcherError(Exception):
    """The researcher could not propose (an API error, an unusable answer): the iteration fails with this reason."""


class Researcher(Protocol):
    name: str

    def propose(self, ctx: ResearchContext) -> Proposal: ...

    def answer(self, question: str, ctx: ResearchContext) -> tuple[str, Usage]: ...
