"""A researcher backed by Anthropic's Messages API (the official `anthropic` SDK), with a forced tool call.

The model gets the challenge, the strategy interface, the goal, its own STATE and notes, the history
of development scores and computed feature reports (never holdout scores), and the operator's inbox;
it must answer by calling `propose_iteration`, whose input schema is the proposal. Model ids come from
configuration (alias -> id), never from code paths that cannot be changed. Tokens and cost are read
from the response's usage and a configurable price table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quantdesk.tools.agents.challenges import Challenge
from quantdesk.tools.agents.researchers.base import Proposal, ResearchContext, ResearcherError, Usage

DEFAULT_MODELS = {"sonnet": "claude-sonnet-4-6", "opus": "claude-opus-4-7", "haiku": "claude-haiku-4-5"}
"""Editable through QUANTDESK_ANTHROPIC_MODELS (a JSON object alias -> model id)."""
DEFAULT_PRICES = {"sonnet": (3.0, 15.0), "opus": (15.0, 75.0), "haiku": (1.0, 5.0)}
"""USD per million input and output tokens, by alias (QUANTDESK_ANTHROPIC_PRICES overrides)."""
MAX_TOKENS = 8192
MAX_CODE_CHARS = 100_000

PROPOSAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "hypothesis": {"type": "string", "description": "What this iteration tests and why."},
        "what_changed": {"type": "string", "description": "The change from the previous iteration."},
        "code": {"type": "string", "description": "The complete strategy module (see the interface)."},
        "done": {"type": "boolean", "description": "True when further iterations are unlikely to help."},
        "notes": {"type": "string", "description": "Notes to keep for later iterations."},
        "state": {"type": "string", "description": "The new STATE.md: your persistent memory."},
        "features": {"type": "array", "description": "Feature names with a description and the expected signal.",
                     "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                                "description": {"type": "string"},
                                                                "signal": {"type": "string"}},
                               "required": ["name"]}},
    },
    "required": ["hypothesis", "what_changed", "code", "done"],
}

INTERFACE = """Write one Python module (numpy only; no network, no files). Define a subclass of Featurizer and
one of Predictor, imported with `from quantdesk_strategy import Featurizer, Predictor`.
Featurizer: `warmup` (rows before the first call), `compute_interval` (minutes between calls),
`setup(self, assets, total_timesteps)`, `compute(self, view) -> dict[str, np.ndarray]`.
Predictor: `predict(self, features) -> np.ndarray` of the challenge's dimension, called every minute.
The view shows minutes 0..t only: view.t, view.assets, view.prices(asset, lookback=None),
view.ohlcv(asset, lookback=None) (open, high, low, close, volume), view.prices_matrix(lookback=None),
view.ohlcv_matrix(lookback=None), view.timestamps(lookback=None), view.funding(asset, lookback=None),
view.funding_matrix(lookback=None), view.has_funding(). Pass lookback to copy only the last rows: a
full-history copy every minute is slow. Labels are never given: a learning strategy derives them
causally from past prices (a label for minute r is known at r + horizon)."""


@dataclass(frozen=True, slots=True)
class AnthropicSettings:
    base_url: str | None = None
    models: dict[str, str] | None = None
    prices: dict[str, tuple[float, float]] | None = None
    timeout_seconds: float = 600.0
    max_retries: int = 2


def _describe(challenge: Challenge) -> str:
    return (f"Challenge {challenge.name} ({challenge.type}): {challenge.desc}. Assets: {', '.join(challenge.assets)}."
            f" Horizon {challenge.horizon_minutes} minutes. Label: {challenge.label_definition} Embedding "
            f"({challenge.dim} values): {challenge.embedding_layout} Primary metric {challenge.metric.primary} "
            f"({challenge.metric.direction} is better, no skill = {challenge.metric.no_skill}).")


def _history(ctx: ResearchContext) -> str:
    lines = []
    for entry in ctx.history[-8:]:
        metrics = entry.get("metrics") or {}
        shown = {k: v for k, v in metrics.items() if k not in ("windows",) and not isinstance(v, dict | list)}
        line = f"Iteration {entry['iteration']}: " + (f"FAILED: {entry.get('error')}" if entry.get("has_error")
                                                     else json.dumps(shown, default=str))
        report = entry.get("feature_report") or []
        if report:
            line += "\n  computed features: " + "; ".join(
                f"{f['name']} rho={f['predictive_power'].get('value')} p={f['predictive_power'].get('p_value')}"
                for f in report[:8])
        if entry.get("what_changed"):
            line += f"\n  change: {entry['what_changed']}"
        lines.append(line)
    return "\n".join(lines) or "No iterations yet."


class AnthropicResearcher:
    name = "anthropic"

    def __init__(self, api_key: Callable[[], str | None], settings: AnthropicSettings | None = None) -> None:
        self._api_key = api_key
        self.settings = settings or AnthropicSettings()

    def model_id(self, alias: str) -> str:
        models = {**DEFAULT_MODELS, **(self.settings.models or {})}
        return models.get(alias, alias)

    def _client(self) -> Any:
        import anthropic

        key = self._api_key()
        if not key:
            raise ResearcherError("no Anthropic key is stored (set_anthropic_key)")
        return anthropic.Anthropic(api_key=key, base_url=self.settings.base_url, max_retries=self.settings.max_retries,
                                   timeout=self.settings.timeout_seconds)

    def _usage(self, alias: str, message: Any) -> Usage:
        prices = {**DEFAULT_PRICES, **(self.settings.prices or {})}
        price_in, price_out = prices.get(alias, DEFAULT_PRICES["sonnet"])
        usage = getattr(message, "usage", None)
        tokens_in = int(getattr(usage, "input_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "output_tokens", 0) or 0)
        return Usage(tokens_in, tokens_out, (tokens_in * price_in + tokens_out * price_out) / 1e6)

    def _call(self, ctx: ResearchContext, **request: Any) -> Any:
        import anthropic

        try:
            return self._client().messages.create(model=self.model_id(ctx.model), **request)
        except anthropic.APIStatusError as exc:
            raise ResearcherError(f"the Anthropic API answered HTTP {exc.status_code}") from None
        except anthropic.APIConnectionError:
            raise ResearcherError("the Anthropic API could not be reached") from None
        except anthropic.AnthropicError as exc:
            raise ResearcherError(f"Anthropic client error: {type(exc).__name__}") from None

    def propose(self, ctx: ResearchContext) -> Proposal:
        system = ("You are a quantitative researcher iterating on a prediction strategy for a MANTIS challenge. "
                  "You only ever see development-period scores; a holdout is scored once at the end. Answer by "
                  "calling propose_iteration.")
        prompt = "\n\n".join([
            _describe(ctx.challenge), "## Strategy interface\n" + INTERFACE, f"## Goal\n{ctx.goal}",
            f"## STATE.md\n{ctx.state_md or '(empty)'}", f"## Notes\n{ctx.notes[-4000:] or '(none)'}",
            f"## History (development scores)\n{_history(ctx)}",
            f"## Operator inbox\n{ctx.inbox}" if ctx.inbox else "## Operator inbox\n(empty)",
            f"This is iteration {ctx.iteration} (minimum {ctx.min_iterations}, maximum {ctx.max_iterations})."])
        message = self._call(ctx, max_tokens=MAX_TOKENS, system=system,
                             messages=[{"role": "user", "content": prompt}],
                             tools=[{"name": "propose_iteration", "description": "Propose the next strategy.",
                                     "input_schema": PROPOSAL_SCHEMA}],
                             tool_choice={"type": "tool", "name": "propose_iteration"})
        call = next((b for b in getattr(message, "content", []) if getattr(b, "type", "") == "tool_use"
                     and getattr(b, "name", "") == "propose_iteration"), None)
        if call is None or not isinstance(call.input, dict):
            raise ResearcherError("the model did not call propose_iteration")
        data: dict[str, Any] = call.input
        code = data.get("code")
        if not isinstance(code, str) or not code.strip():
            raise ResearcherError("the proposal has no code")
        if len(code) > MAX_CODE_CHARS:
            raise ResearcherError(f"the proposed code exceeds {MAX_CODE_CHARS} characters")
        thoughts = [str(getattr(b, "text", ""))[:2000] for b in message.content if getattr(b, "type", "") == "text"]
        features = [f for f in data.get("features") or [] if isinstance(f, dict) and isinstance(f.get("name"), str)]
        return Proposal(
            hypothesis=str(data.get("hypothesis", ""))[:4000], what_changed=str(data.get("what_changed", ""))[:4000],
            code=code, done=bool(data.get("done", False)), notes=str(data.get("notes", ""))[:8000],
            state_md=str(data.get("state", ctx.state_md))[:20000],
            feature_spec=[{"name": f["name"][:64], "description": str(f.get("description", ""))[:500],
                           "signal": str(f.get("signal", ""))[:200]} for f in features[:64]],
            learner_spec={"model": self.model_id(ctx.model)}, usage=self._usage(ctx.model, message),
            model=self.model_id(ctx.model), thoughts=thoughts[-20:])

    def answer(self, question: str, ctx: ResearchContext) -> tuple[str, Usage]:
        system = ("You are a research assistant analysing an autonomous strategy agent. Answer the operator's "
                  "question from the context only; be concise and specific.")
        prompt = "\n\n".join([_describe(ctx.challenge), f"## Goal\n{ctx.goal}", f"## STATE.md\n{ctx.state_md}",
                              f"## History\n{_history(ctx)}", f"## Question\n{question}"])
        message = self._call(ctx, max_tokens=2048, system=system, messages=[{"role": "user", "content": prompt}])
        text = "".join(str(getattr(b, "text", "")) for b in message.content if getattr(b, "type", "") == "text")
        return text.strip() or "No answer was generated.", self._usage(ctx.model, message)
