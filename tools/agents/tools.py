"""Research-agent tools: MANTIS challenges, agents that iterate on strategies in a sandbox, keys, the data cache.

Every tool here needs the `agents` scope. Engines are imported inside handlers: numpy and the sandbox
load only when an agent tool that needs them is called (or an agent is resumed at start).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.to_thread
from pydantic import Field

from quantdesk.server.errors import Conflict, NotFound
from quantdesk.server.registry import CallContext, ToolInput, ToolOutput, ToolSet
from quantdesk.tools.agents.challenges import CHALLENGES
from quantdesk.tools.agents.keys import ANTHROPIC_KEY_PATTERN, COINGLASS_KEY_PATTERN
from quantdesk.tools.agents.runner.handle import Agents
from quantdesk.tools.bus.bus import EventBus
from quantdesk.tools.caches.service import CacheService

tools = ToolSet("agents")
tools.service(Agents, lambda services: Agents(services.data_dir, services.state,
                                              lambda: services.get(CacheService).store,
                                              background=bool(services.settings.get("background", True)),
                                              publish=services.get(EventBus).publish),
              at_start=True)

AgentId = Annotated[str, Field(pattern=r"^[a-f0-9\-]{1,40}$", description="An agent id, as create_agent returns.")]
Iteration = Annotated[int, Field(ge=1, le=500, description="Iteration number, from 1.")]
DaysBack = Annotated[int, Field(ge=60, le=365, description="Days of 1-minute history (60-365); the last 20 days "
                                                          "are the holdout.")]
Goal = Annotated[str, Field(min_length=1, max_length=10_000, description="The research goal, up to 10,000 characters.")]
Text = Annotated[str, Field(min_length=1, max_length=10_000)]


def _service(ctx: CallContext) -> Any:
    return ctx.services.get(Agents).service()


def _store(ctx: CallContext) -> Any:
    from quantdesk.tools.agents.runner.store import AgentStore

    return AgentStore(ctx.services.state)


class NoArguments(ToolInput):
    pass


class AgentInput(ToolInput):
    agent_id: AgentId


class IterationInput(ToolInput):
    agent_id: AgentId
    iteration: Iteration


# --- challenges -------------------------------------------------------------------------------------

class ChallengesOutput(ToolOutput):
    challenges: dict[str, dict[str, Any]] = Field(description="By name: type, short, desc, asset, metric, metric_info "
                                                  "(the MANTIS listing) plus assets, dim, horizon_minutes, weight, "
                                                  "label_definition, embedding_layout, no_skill_value.")


@tools.tool(scope="agents", title="List research challenges", read_only=True, idempotent=True)
async def list_challenges(args: NoArguments, ctx: CallContext) -> ChallengesOutput:
    """List the MANTIS prediction challenges an agent can work on: ETH-1H-BINARY, ETH-HITFIRST-100M, ETH-LBFGS,
    BTC-LBFGS-6H, MULTI-BREAKOUT, XSEC-RANK, FUNDING-XSEC. Each comes with its label definition, embedding layout
    and dimension, horizon, primary metric (and whether higher or lower is better) and subnet weight. Call it
    before create_agent to pick a challenge name."""
    return ChallengesOutput(challenges={name: c.listing() for name, c in CHALLENGES.items()})


# --- agents -------------------------------------------------------------------------------------------

class CreateAgentInput(ToolInput):
    challenge: str = Field(max_length=64, description="A challenge name from list_challenges, e.g. ETH-1H-BINARY.")
    goal: Goal
    researcher: Literal["builtin", "anthropic"] = Field(
        "builtin", description="builtin: deterministic feature-family search, no key needed (default). anthropic: "
        "a Claude model writes the strategies (needs set_anthropic_key).")
    model: Literal["sonnet", "opus", "haiku"] = Field("sonnet", description="Claude model alias for the anthropic "
                                                      "researcher and ask_agent; recorded by the builtin one.")
    min_iterations: int = Field(5, ge=1, le=100, description="Iterations before the agent may declare itself done.")
    max_iterations: int = Field(20, ge=1, le=500, description="Hard stop after this many iterations.")
    days_back: DaysBack = 60


class CreateAgentOutput(ToolOutput):
    id: str
    status: str = Field(description="`starting`; follow it with get_agent or list_agents.")


@tools.tool(scope="agents", title="Create a research agent", open_world=True)
async def create_agent(args: CreateAgentInput, ctx: CallContext) -> CreateAgentOutput:
    """Start a research agent on a challenge: it iterates in the background (propose a strategy, run it in a
    sandbox on the development data, score it walk-forward) until it signals done after min_iterations or reaches
    max_iterations; then its best strategy is scored once on the untouched holdout (last 20 days) beside a noise
    floor and a bootstrap CI. Works without any key using the built-in researcher. Fails with rate_limited when
    the concurrent-agent cap is reached. Returns the agent id."""
    # the default minimum (5) yields to a smaller maximum the caller gave; an explicit one that exceeds it is refused
    explicit = "min_iterations" in args.model_fields_set
    minimum = args.min_iterations if explicit else min(args.min_iterations, args.max_iterations)
    result = _service(ctx).create(challenge=args.challenge, goal=args.goal, researcher=args.researcher,
                                  model=args.model, min_iterations=minimum,
                                  max_iterations=args.max_iterations, days_back=args.days_back)
    return CreateAgentOutput(**result)


class ListAgentsInput(ToolInput):
    full: bool = Field(False, description="Full state (iterations, notes, chat) instead of summaries.")
    if_none_match: str | None = Field(None, max_length=64, description="An etag from an earlier call: when nothing "
                                      "changed the result says not_modified and omits the list.")


class ListAgentsOutput(ToolOutput):
    agents: list[dict[str, Any]] = Field(description="Newest first: id, status, config, created_at, iteration_count, "
                                         "paused, last_metrics (development), best, holdout (once scored).")
    etag: str = Field(description="First 16 hex digits of the sha256 of the list; pass it back as if_none_match.")
    not_modified: bool


def _live(service: Any, agent_id: str) -> list[str]:
    return [line for line in service.stdout_tail(agent_id, 30)["content"].splitlines() if line]


@tools.tool(scope="agents", title="List agents", read_only=True, idempotent=True)
async def list_agents(args: ListAgentsInput, ctx: CallContext) -> ListAgentsOutput:
    """List every agent, newest first: summaries by default (status, config, iteration count, latest development
    metrics, best iteration, holdout result once scored) or the full state with `full`. Returns an etag; passing
    it back as if_none_match answers not_modified when nothing changed (cheap polling)."""
    from quantdesk.tools.agents.runner import views

    store = _store(ctx)
    rows = store.all()
    if args.full:
        service = _service(ctx)
        agents = [views.full(r, store, store.iterations(r.id), _live(service, r.id)) for r in rows]
    else:
        agents = [views.summary(r, store.iterations(r.id)) for r in rows]
    tag = views.etag(agents)
    if args.if_none_match is not None and args.if_none_match.strip('"') == tag:
        return ListAgentsOutput(agents=[], etag=tag, not_modified=True)
    return ListAgentsOutput(agents=agents, etag=tag, not_modified=False)


class AgentOutput(ToolOutput):
    agent: dict[str, Any] = Field(description="The full state: config, status, goal, inbox, iterations, notes, "
                                  "STATE.md, chat, live activity, holdout_result.")


@tools.tool(scope="agents", title="Get an agent", read_only=True, idempotent=True)
async def get_agent(args: AgentInput, ctx: CallContext) -> AgentOutput:
    """Everything about one agent: configuration, status, goal, inbox, every iteration (development metrics,
    computed feature reports, code path, tokens), notes, STATE.md, chat, live activity, and the holdout result
    once the agent finished. Not found for an unknown id."""
    from quantdesk.tools.agents.runner import views

    store = _store(ctx)
    row = store.get(args.agent_id)
    return AgentOutput(agent=views.full(row, store, store.iterations(row.id), _live(_service(ctx), row.id)))


class StatusOutput(ToolOutput):
    status: str


class PausedOutput(ToolOutput):
    paused: bool


@tools.tool(scope="agents", title="Stop an agent", destructive=True, idempotent=True)
async def stop_agent(args: AgentInput, ctx: CallContext) -> StatusOutput:
    """Stop an agent now: a running evaluation is killed and that iteration is not recorded; the best strategy so
    far is then scored once on the holdout. Stopping a finished agent changes nothing."""
    return StatusOutput(**_service(ctx).stop(args.agent_id))


@tools.tool(scope="agents", title="Delete an agent", destructive=True, idempotent=False)
async def delete_agent(args: AgentInput, ctx: CallContext) -> StatusOutput:
    """Stop an agent and delete it with its iterations, code, chat and files. Not found when it does not exist."""
    service = _service(ctx)
    return StatusOutput(**await anyio.to_thread.run_sync(service.delete, args.agent_id))


@tools.tool(scope="agents", title="Pause an agent", idempotent=True)
async def pause_agent(args: AgentInput, ctx: CallContext) -> PausedOutput:
    """Pause an agent between iterations: the current iteration finishes first. A paused agent resumes by itself
    after an hour (QUANTDESK_AGENTS_PAUSE_TIMEOUT_SECONDS) or with resume_agent."""
    return PausedOutput(**_service(ctx).pause(args.agent_id))


@tools.tool(scope="agents", title="Resume an agent", idempotent=True)
async def resume_agent(args: AgentInput, ctx: CallContext) -> PausedOutput:
    """Resume a paused agent at the next iteration."""
    return PausedOutput(**_service(ctx).resume(args.agent_id))


class ContentOutput(ToolOutput):
    content: str


class SetGoalInput(ToolInput):
    agent_id: AgentId
    goal: Goal


@tools.tool(scope="agents", title="Get an agent's goal", read_only=True, idempotent=True)
async def get_agent_goal(args: AgentInput, ctx: CallContext) -> ContentOutput:
    """The agent's research goal, as GOAL.md shows it."""
    row = _store(ctx).get(args.agent_id)
    return ContentOutput(content=f"# Research Goal\n\n{row.goal}\n")


@tools.tool(scope="agents", title="Set an agent's goal", idempotent=True)
async def set_agent_goal(args: SetGoalInput, ctx: CallContext) -> StatusOutput:
    """Replace the agent's research goal (up to 10,000 characters); it takes effect at the next iteration."""
    return StatusOutput(**_service(ctx).set_goal(args.agent_id, args.goal))


class MessageInput(ToolInput):
    agent_id: AgentId
    text: Text = Field(description="A message for the agent, e.g. 'try adding RSI', 'avoid volume features'.")


@tools.tool(scope="agents", title="Message an agent")
async def send_agent_message(args: MessageInput, ctx: CallContext) -> StatusOutput:
    """Send the agent a message: appended to its inbox as `[HH:MM] Operator: text` and to its chat. The agent
    reads the inbox at its next iteration (the built-in researcher understands 'try X', 'focus on X', 'avoid X');
    the inbox is cleared after that iteration."""
    return StatusOutput(**_service(ctx).message(args.agent_id, args.text))


class InboxInput(ToolInput):
    agent_id: AgentId
    content: str = Field(max_length=50_000, description="The new inbox content (empty clears it).")


@tools.tool(scope="agents", title="Read an agent's inbox", read_only=True, idempotent=True)
async def get_agent_inbox(args: AgentInput, ctx: CallContext) -> ContentOutput:
    """The agent's current inbox: operator messages not yet delivered to an iteration."""
    return ContentOutput(content=_store(ctx).get(args.agent_id).inbox)


@tools.tool(scope="agents", title="Replace an agent's inbox", idempotent=True)
async def replace_agent_inbox(args: InboxInput, ctx: CallContext) -> StatusOutput:
    """Replace the agent's inbox entirely (up to 50,000 characters)."""
    return StatusOutput(**_service(ctx).set_inbox(args.agent_id, args.content))


class ChatOutput(ToolOutput):
    messages: list[dict[str, Any]] = Field(description="role, text, ts, type (message or ask), oldest first.")
    paused: bool


@tools.tool(scope="agents", title="Read an agent's chat", read_only=True, idempotent=True)
async def get_agent_chat(args: AgentInput, ctx: CallContext) -> ChatOutput:
    """The chat history: operator messages and ask_agent questions with their answers."""
    store = _store(ctx)
    row = store.get(args.agent_id)
    return ChatOutput(messages=store.chat(row.id), paused=row.paused)


class AskInput(ToolInput):
    agent_id: AgentId
    text: Text = Field(description="A question about the agent, e.g. 'which features help most?'.")
    wait: bool = Field(False, description="Wait for the answer and return it (otherwise it appears in the chat).")


class AskOutput(ToolOutput):
    status: str = Field(description="`processing` (answer will appear in the chat), `answered` or `busy`.")
    answer: str | None = None


@tools.tool(scope="agents", title="Ask about an agent", open_world=True)
async def ask_agent(args: AskInput, ctx: CallContext) -> AskOutput:
    """Ask the agent's researcher a question about its progress (built-in: a factual summary of best iteration,
    trend and strongest computed features; anthropic: Claude answers from the agent's records). Development
    scores only. Set wait to get the answer in the result; otherwise poll get_agent_chat."""
    service = _service(ctx)
    result = await anyio.to_thread.run_sync(lambda: service.ask(args.agent_id, args.text, wait=args.wait))
    return AskOutput(**result)


@tools.tool(scope="agents", title="Read an agent's notes", read_only=True, idempotent=True)
async def get_agent_notes(args: AgentInput, ctx: CallContext) -> ContentOutput:
    """The agent's notes.txt: what the researcher wrote down at each iteration."""
    return ContentOutput(content=_store(ctx).get(args.agent_id).notes)


@tools.tool(scope="agents", title="Read an agent's STATE.md", read_only=True, idempotent=True)
async def get_agent_state(args: AgentInput, ctx: CallContext) -> ContentOutput:
    """The agent's STATE.md: its persistent memory (best so far, what it will try next)."""
    return ContentOutput(content=_store(ctx).get(args.agent_id).state_md)


class StdoutInput(ToolInput):
    agent_id: AgentId
    tail: int = Field(200, ge=1, le=5000, description="Lines from the end (1-5000).")


class StdoutOutput(ToolOutput):
    content: str
    lines: int = Field(description="Lines in the whole log.")
    showing: int


@tools.tool(scope="agents", title="Tail an agent's log", read_only=True, idempotent=True)
async def get_agent_stdout(args: StdoutInput, ctx: CallContext) -> StdoutOutput:
    """The last lines of the agent's activity log (data loading, each iteration's steps, scores, holdout)."""
    return StdoutOutput(**_service(ctx).stdout_tail(args.agent_id, args.tail))


class IterationsOutput(ToolOutput):
    count: int
    iterations: list[dict[str, Any]] = Field(description="Each: iteration, timestamp, metrics (development), "
                                             "analysis, activity, thoughts, tokens, elapsed_s, has_error, error, "
                                             "done_signal, timed_out, improved, sandbox.")


@tools.tool(scope="agents", title="List an agent's iterations", read_only=True, idempotent=True)
async def list_agent_iterations(args: AgentInput, ctx: CallContext) -> IterationsOutput:
    """Every finished iteration of an agent with its development metrics (per window), computed feature report,
    hypothesis, what changed, tokens and cost, elapsed seconds, and the failure reason when it failed."""
    store = _store(ctx)
    store.get(args.agent_id)
    records = store.iterations(args.agent_id)
    return IterationsOutput(count=len(records), iterations=records)


class CodeOutput(ToolOutput):
    iteration: int
    code: str = Field(description="The strategy module of that iteration (Python).")
    media_type: str = "text/x-python"


@tools.tool(scope="agents", title="Get an iteration's code", read_only=True, idempotent=True)
async def get_agent_code(args: IterationInput, ctx: CallContext) -> CodeOutput:
    """The Python strategy (Featurizer + Predictor) an iteration evaluated. Not found when the iteration has no
    code (it does not exist, or the researcher failed before writing any)."""
    _, code = _store(ctx).iteration(args.agent_id, args.iteration)
    if not code:
        raise NotFound(f"iteration {args.iteration} of agent {args.agent_id!r} has no code")
    return CodeOutput(iteration=args.iteration, code=code)


class FeaturesOutput(ToolOutput):
    iteration: int
    feature_report: list[dict[str, Any]] = Field(description="Per feature: name, description, signal, stats, "
                                                 "predictive_power (computed by the evaluator), importance_rank.")


@tools.tool(scope="agents", title="Get an iteration's feature report", read_only=True, idempotent=True)
async def get_iteration_features(args: IterationInput, ctx: CallContext) -> FeaturesOutput:
    """The feature report of an iteration, computed by the evaluator from the features the strategy produced on
    the development rows (statistics and Spearman predictive power with p-value), not written by the agent."""
    record, _ = _store(ctx).iteration(args.agent_id, args.iteration)
    return FeaturesOutput(iteration=args.iteration,
                          feature_report=(record.get("analysis") or {}).get("feature_report") or [])


class MetricsOutput(ToolOutput):
    iteration: int
    metrics: dict[str, Any]
    analysis: dict[str, Any]


@tools.tool(scope="agents", title="Get an iteration's metrics", read_only=True, idempotent=True)
async def get_iteration_metrics(args: IterationInput, ctx: CallContext) -> MetricsOutput:
    """An iteration's development metrics (per walk-forward window, the summary and the noise SD) and analysis."""
    record, _ = _store(ctx).iteration(args.agent_id, args.iteration)
    return MetricsOutput(iteration=args.iteration, metrics=record.get("metrics") or {},
                         analysis=record.get("analysis") or {})


class HoldoutOutput(ToolOutput):
    agent_id: str
    holdout: dict[str, Any] | None = Field(description="status (running, done, failed, skipped), the iteration "
                                           "scored, metrics with noise_floor, confidence_interval and "
                                           "causality_audit; null until the agent finishes.")
    holdout_runs: int = Field(description="Completed holdout evaluations: at most 1 per agent.")


@tools.tool(scope="agents", title="Get an agent's holdout result", read_only=True, idempotent=True)
async def get_agent_holdout(args: AgentInput, ctx: CallContext) -> HoldoutOutput:
    """The one holdout evaluation of an agent's best strategy, made when the agent finished: the headline metric
    on the last 20 days, the no-skill noise floor on the same windows (with a permutation p-value), a
    block-bootstrap 95% interval and a causality audit. The agent itself never sees it."""
    row = _store(ctx).get(args.agent_id)
    return HoldoutOutput(agent_id=row.id, holdout=row.holdout, holdout_runs=row.holdout_runs)


class AgentsHealthOutput(ToolOutput):
    status: str
    agents_running: int
    max_agents: int
    uptime_s: float


@tools.tool(scope="agents", title="Agent runner health", read_only=True, idempotent=True)
async def get_agents_health(args: NoArguments, ctx: CallContext) -> AgentsHealthOutput:
    """How many agents are active against the concurrency cap, and the server's uptime."""
    import time

    from quantdesk.tools.agents.runner.service import AgentSettings

    return AgentsHealthOutput(status="healthy", agents_running=_store(ctx).count_active(),
                              max_agents=AgentSettings.from_env().max_agents,
                              uptime_s=round(time.time() - ctx.services.info.started_at, 1))


class SandboxOutput(ToolOutput):
    capabilities: dict[str, Any] = Field(description="mode (root, user, rlimits), which isolation steps work here, "
                                         "the limits in force.")


@tools.tool(scope="agents", title="Sandbox capabilities", read_only=True, idempotent=True)
async def get_sandbox_status(args: NoArguments, ctx: CallContext) -> SandboxOutput:
    """What the strategy sandbox enforces on this machine: network, PID and mount namespaces, the unprivileged
    user, rlimits (CPU, memory, file size, open files, processes) and the wall-clock limit."""
    service = _service(ctx)
    return SandboxOutput(capabilities=await anyio.to_thread.run_sync(service.sandbox.capabilities))


# --- keys ---------------------------------------------------------------------------------------------

class KeyOutput(ToolOutput):
    set: bool
    masked: str | None = Field(None, description="The first characters and the last four; never the key.")


class AnthropicKeyInput(ToolInput):
    key: str = Field(pattern=ANTHROPIC_KEY_PATTERN, description="The key (sk-ant-...); stored 0600.")


class CoinglassKeyInput(ToolInput):
    key: str = Field(pattern=COINGLASS_KEY_PATTERN, description="The key; stored 0600 in the data directory.")


def _key_output(ctx: CallContext, name: Literal["anthropic", "coinglass"]) -> KeyOutput:
    masked = ctx.services.get(Agents).keys.masked(name)
    return KeyOutput(set=masked is not None, masked=masked)


@tools.tool(scope="agents", title="Anthropic key status", read_only=True, idempotent=True)
async def get_anthropic_key(args: NoArguments, ctx: CallContext) -> KeyOutput:
    """Whether an Anthropic API key is stored, shown masked (never the full key)."""
    return _key_output(ctx, "anthropic")


@tools.tool(scope="agents", title="Set the Anthropic key", idempotent=True)
async def set_anthropic_key(args: AnthropicKeyInput, ctx: CallContext) -> KeyOutput:
    """Store the Anthropic API key used by the anthropic researcher and ask_agent (must start with sk-ant-).
    Stored 0600 in the data directory; never returned, logged or visible to strategy code."""
    ctx.services.get(Agents).keys.set("anthropic", args.key)
    return _key_output(ctx, "anthropic")


@tools.tool(scope="agents", title="Delete the Anthropic key", destructive=True, idempotent=True)
async def delete_anthropic_key(args: NoArguments, ctx: CallContext) -> KeyOutput:
    """Remove the stored Anthropic API key."""
    ctx.services.get(Agents).keys.delete("anthropic")
    return KeyOutput(set=False)


@tools.tool(scope="agents", title="CoinGlass key status", read_only=True, idempotent=True)
async def get_coinglass_key(args: NoArguments, ctx: CallContext) -> KeyOutput:
    """Whether a CoinGlass API key is stored, shown masked."""
    return _key_output(ctx, "coinglass")


@tools.tool(scope="agents", title="Set the CoinGlass key", idempotent=True)
async def set_coinglass_key(args: CoinglassKeyInput, ctx: CallContext) -> KeyOutput:
    """Store the CoinGlass API key (letters, digits, '.', '-', '_'); stored 0600, never returned in full."""
    ctx.services.get(Agents).keys.set("coinglass", args.key)
    return _key_output(ctx, "coinglass")


@tools.tool(scope="agents", title="Delete the CoinGlass key", destructive=True, idempotent=True)
async def delete_coinglass_key(args: NoArguments, ctx: CallContext) -> KeyOutput:
    """Remove the stored CoinGlass API key."""
    ctx.services.get(Agents).keys.delete("coinglass")
    return KeyOutput(set=False)


# --- data cache ---------------------------------------------------------------------------------------

class DataCacheOutput(ToolOutput):
    entries: dict[str, dict[str, Any]] = Field(description="By days back (60, 90, 120, 180 and any other cached): "
                                               "cached, assets, has_coinglass, age_hours, data_source.")
    data_source: str = Field(description="`synthetic` (quantdesk's generator, the default) or `binance`.")


class DaysInput(ToolInput):
    days_back: DaysBack = 60


class PrefetchInput(ToolInput):
    days_back: DaysBack = 60
    coinglass_key: str | None = Field(None, pattern=COINGLASS_KEY_PATTERN,
                                      description="Stored as the CoinGlass key when given (as MANTIS does).")


class PrefetchOutput(ToolOutput):
    status: str
    days_back: int


class PrefetchStatusOutput(ToolOutput):
    running: bool
    progress: str
    step: int
    total_steps: int
    error: str | None
    finished_at: str | None
    days_back: int | None


@tools.tool(scope="agents", title="Data cache status", read_only=True, idempotent=True)
async def get_data_cache(args: NoArguments, ctx: CallContext) -> DataCacheOutput:
    """Which lookback windows of 1-minute bars for the 29 challenge assets are cached (Parquet artifacts), with
    asset count and age. Agents build what they need on first use; prefetch_data builds it ahead."""
    service = _service(ctx)
    entries = await anyio.to_thread.run_sync(service.cache.entries)
    return DataCacheOutput(entries={str(k): v for k, v in entries.items()}, data_source=service.cache.source.name)


@tools.tool(scope="agents", title="Prefetch market data", idempotent=True, open_world=True)
async def prefetch_data(args: PrefetchInput, ctx: CallContext) -> PrefetchOutput:
    """Build the cache of 1-minute bars (and funding) for every challenge asset over days_back days in the
    background; follow it with get_data_cache_status. Conflict while another prefetch runs."""
    service = _service(ctx)
    if args.coinglass_key is not None:
        ctx.services.get(Agents).keys.set("coinglass", args.coinglass_key)
    service.cache.start_prefetch(args.days_back)
    return PrefetchOutput(status="started", days_back=args.days_back)


@tools.tool(scope="agents", title="Prefetch progress", read_only=True, idempotent=True)
async def get_data_cache_status(args: NoArguments, ctx: CallContext) -> PrefetchStatusOutput:
    """Progress of the running (or last) prefetch: step of total, message, error, finish time."""
    return PrefetchStatusOutput(**_service(ctx).cache.status())


@tools.tool(scope="agents", title="Delete cached market data", destructive=True, idempotent=True)
async def delete_data_cache(args: DaysInput, ctx: CallContext) -> PrefetchOutput:
    """Delete the cached bars of one lookback window. Conflict while a prefetch runs."""
    service = _service(ctx)
    if service.cache.status()["running"]:
        raise Conflict("a prefetch is running; delete after it finishes")
    service.cache.delete(args.days_back)
    return PrefetchOutput(status="deleted", days_back=args.days_back)


