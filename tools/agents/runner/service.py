"""The agent service: creates agents, runs each one in a background thread, resumes them after a restart.

A thread per active agent runs the loop: load the data (building the cache entry if needed), then
iterate: check stop and pause at the boundary, ask the researcher for a proposal, evaluate it in the
sandbox on the development rows, write the record (one durable transaction). When the agent finishes
(done signal after `min_iterations`, `max_iterations`, or a stop) its best strategy is scored on the
holdout, once. A fault inside an iteration (a researcher error, a strategy that fails) is a failed
iteration with its reason; a fault outside one (data unavailable) ends the agent as `crashed` with
the error recorded. The service never lets an exception kill the server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quantdesk.server.errors import InvalidArgument, NotFound, Problem, RateLimited
from quantdesk.tools.agents.challenges import Challenge, all_assets, get_challenge
from quantdesk.tools.agents.data.binance import DEFAULT_ENDPOINTS, BinanceKlinesSource
from quantdesk.tools.agents.data.cache import DataCache
from quantdesk.tools.agents.data.market import MarketData, MarketDataSource
from quantdesk.tools.agents.data.synthetic import DEFAULT_SEED, SyntheticSource
from quantdesk.tools.agents.evaluate.backends import BACKENDS, make_backend
from quantdesk.tools.agents.evaluate.evaluator import Evaluation, Evaluator
from quantdesk.tools.agents.evaluate.scoring import Split, make_split
from quantdesk.tools.agents.keys import KeyStore
from quantdesk.tools.agents.researchers.anthropic_api import AnthropicResearcher, AnthropicSettings
from quantdesk.tools.agents.researchers.base import Proposal, ResearchContext, Researcher, ResearcherError
from quantdesk.tools.agents.researchers.builtin import BuiltinResearcher
from quantdesk.tools.agents.runner.events import AgentChanged
from quantdesk.tools.agents.runner.records import best_iteration, history_entry, iteration_record
from quantdesk.tools.agents.runner.store import ACTIVE, AgentRow, AgentStore, SqlState, now_iso
from quantdesk.tools.agents.sandbox.sandbox import Limits, Sandbox
from quantdesk.tools.caches.store import ArtifactStore

logger = logging.getLogger("quantdesk.agents")
MAX_STDOUT_BYTES = 4 << 20
ASK_CONCURRENCY = 3


@dataclass(frozen=True, slots=True)
class AgentSettings:
    max_agents: int = 5
    data_source: str = "synthetic"
    synthetic_seed: int = DEFAULT_SEED
    binance_endpoints: tuple[str, ...] = DEFAULT_ENDPOINTS
    evaluation_timeout_seconds: float = 1800.0
    pause_timeout_seconds: float = 3600.0
    holdout_days: float = 20.0
    evaluation_backend: str = "process"
    dask_address: str | None = None
    anthropic: AnthropicSettings = field(default_factory=AnthropicSettings)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AgentSettings:
        env = dict(os.environ if env is None else env)

        def number(name: str, default: float) -> float:
            try:
                return float(env[name]) if env.get(name) else default
            except ValueError:
                logger.warning("%s is not a number; using %s", name, default)
                return default

        def mapping(name: str) -> dict[str, Any] | None:
            try:
                value = json.loads(env[name]) if env.get(name) else None
            except ValueError:
                logger.warning("%s is not a JSON object; ignored", name)
                return None
            return value if isinstance(value, dict) else None

        endpoints = tuple(u.strip() for u in env.get("QUANTDESK_BINANCE_URLS", "").split(",") if u.strip())
        prices = mapping("QUANTDESK_ANTHROPIC_PRICES")
        return cls(
            max_agents=max(1, int(number("QUANTDESK_AGENTS_MAX", 5))),
            data_source=env.get("QUANTDESK_AGENTS_DATA_SOURCE", "synthetic"),
            synthetic_seed=int(number("QUANTDESK_AGENTS_SEED", DEFAULT_SEED)),
            binance_endpoints=endpoints or DEFAULT_ENDPOINTS,
            evaluation_timeout_seconds=number("QUANTDESK_AGENTS_EVAL_TIMEOUT_SECONDS", 1800.0),
            pause_timeout_seconds=number("QUANTDESK_AGENTS_PAUSE_TIMEOUT_SECONDS", 3600.0),
            evaluation_backend=_backend(env.get("QUANTDESK_AGENTS_BACKEND", "process")),
            dask_address=env.get("QUANTDESK_DASK_ADDRESS") or None,
            anthropic=AnthropicSettings(
                base_url=env.get("QUANTDESK_ANTHROPIC_BASE_URL") or None,
                models=mapping("QUANTDESK_ANTHROPIC_MODELS"),
                prices={k: (float(v[0]), float(v[1])) for k, v in prices.items()} if prices else None))


def _backend(name: str) -> str:
    if name not in BACKENDS:
        logger.warning("QUANTDESK_AGENTS_BACKEND=%s is not one of %s; using process", name, BACKENDS)
        return "process"
    return name


@dataclass(slots=True)
class _Run:
    thread: threading.Thread
    wake: threading.Event = field(default_factory=threading.Event)


def _source(settings: AgentSettings) -> MarketDataSource:
    if settings.data_source == "binance":
        return BinanceKlinesSource(settings.binance_endpoints)
    return SyntheticSource(settings.synthetic_seed)


class AgentService:
    def __init__(self, data_dir: Path, state: SqlState, artifacts: ArtifactStore,
                 settings: AgentSettings | None = None, *, source: MarketDataSource | None = None,
                 sandbox: Sandbox | None = None, resume: bool = True,
                 publish: Callable[[AgentChanged], object] | None = None) -> None:
        self.settings = settings or AgentSettings.from_env()
        self.data_dir = data_dir
        self.root = data_dir / "agents"
        self.root.mkdir(parents=True, exist_ok=True)
        # every committed change of an agent reaches the bus's `agent` topic (dashboards re-read the agent then)
        self.store = AgentStore(state, (lambda agent_id, change: publish(AgentChanged(agent_id, change)))
                                if publish is not None else None)
        self.keys = KeyStore(data_dir)
        self.cache = DataCache(artifacts, source or _source(self.settings), all_assets())
        limits = Limits(wall_seconds=self.settings.evaluation_timeout_seconds,
                        cpu_seconds=int(self.settings.evaluation_timeout_seconds))
        self.sandbox = sandbox or Sandbox(hidden=(data_dir,), limits=limits)
        self.evaluator = Evaluator(self.sandbox)
        self.evaluations = make_backend(self.settings.evaluation_backend, self.evaluator, self.settings.dask_address,
                                        limits, (data_dir,))
        self.builtin = BuiltinResearcher()
        self.anthropic = AnthropicResearcher(lambda: self.keys.get("anthropic"), self.settings.anthropic)
        self._runs: dict[str, _Run] = {}
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._ask = threading.BoundedSemaphore(ASK_CONCURRENCY)
        self.started_at = time.monotonic()
        if resume:
            self._resume_all()

    # --- lifecycle --------------------------------------------------------------------------------

    def _resume_all(self) -> None:
        """Agents that were running when the server stopped continue from their last finished iteration."""
        for row in self.store.all():
            if row.status in ACTIVE:
                self._log(row.id, "[resume] server restarted; continuing after iteration "
                                  f"{self.store.iteration_count(row.id)}")
                self._start(row.id)
            elif row.holdout is not None and row.holdout.get("status") == "running":
                self._start(row.id)

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.wake.set()
        self.sandbox.kill_all()
        for run in runs:
            run.thread.join(timeout=5)
        self.evaluations.close()

    def _start(self, agent_id: str) -> None:
        with self._lock:
            existing = self._runs.get(agent_id)
            if existing is not None and existing.thread.is_alive():
                return
            thread = threading.Thread(target=self._main, args=(agent_id,), daemon=True, name=f"agent-{agent_id}")
            self._runs[agent_id] = _Run(thread)
            thread.start()

    def running_count(self) -> int:
        return self.store.count_active()

    # --- create and control -----------------------------------------------------------------------------

    def create(self, *, challenge: str, goal: str, researcher: str, model: str, min_iterations: int,
               max_iterations: int, days_back: int) -> dict[str, Any]:
        spec = get_challenge(challenge)
        problems = []
        if not goal.strip():
            problems.append(Problem("$.goal", "must not be empty"))
        if min_iterations > max_iterations:
            problems.append(Problem("$.min_iterations", "must not exceed max_iterations"))
        if problems:
            raise InvalidArgument.from_problems(problems)
        if researcher == "anthropic" and not self.keys.get("anthropic"):
            raise InvalidArgument.from_problems([Problem("$.researcher", "the anthropic researcher needs a stored "
                                                                        "Anthropic key (set_anthropic_key)")])
        with self._lock:
            if self.running_count() >= self.settings.max_agents:
                raise RateLimited(f"max {self.settings.max_agents} concurrent agents reached", retry_after_seconds=60)
            agent_id = secrets.token_hex(6)
            config = {"challenge": spec.name, "goal": goal, "min_iterations": min_iterations,
                      "max_iterations": max_iterations, "model": model, "days_back": days_back,
                      "researcher": researcher, "seed": int.from_bytes(hashlib.sha256(agent_id.encode()).digest()[:4],
                                                                       "big"),
                      "data_source": self.cache.source.name}
            self.store.create(agent_id, config, goal)
            self._log(agent_id, f"[create] {spec.name} with the {researcher} researcher")
            self._start(agent_id)
        return {"id": agent_id, "status": "starting"}

    def stop(self, agent_id: str) -> dict[str, Any]:
        row = self.store.get(agent_id)
        if row.status in ACTIVE:
            self.store.update(agent_id, stop_requested=1, paused=0, status="stopped", durable=True)
            self._log(agent_id, "[stop] stop requested")
            self.sandbox.kill_owner(agent_id)
            self._wake(agent_id)
        return {"status": "stopped"}

    def delete(self, agent_id: str) -> dict[str, Any]:
        self.store.get(agent_id)
        self.store.update(agent_id, stop_requested=1, status="stopped")
        self.sandbox.kill_owner(agent_id)
        self._wake(agent_id)
        with self._lock:
            run = self._runs.pop(agent_id, None)
        if run is not None:
            run.thread.join(timeout=10)
        self.store.delete(agent_id)
        shutil.rmtree(self.root / agent_id, ignore_errors=True)
        return {"status": "deleted"}

    def pause(self, agent_id: str) -> dict[str, Any]:
        row = self.store.get(agent_id)
        if row.status in ACTIVE:
            self.store.update(agent_id, paused=1, paused_at=now_iso())
            self._log(agent_id, "[pause] pausing after the current iteration")
        return {"paused": True}

    def resume(self, agent_id: str) -> dict[str, Any]:
        row = self.store.get(agent_id)
        self.store.update(agent_id, paused=0, paused_at=None,
                          status="running" if row.status == "paused" else row.status)
        self._wake(agent_id)
        return {"paused": False}

    def _wake(self, agent_id: str) -> None:
        with self._lock:
            run = self._runs.get(agent_id)
        if run is not None:
            run.wake.set()

    def set_goal(self, agent_id: str, goal: str) -> dict[str, Any]:
        if not goal.strip():
            raise InvalidArgument.from_problems([Problem("$.goal", "must not be empty")])
        row = self.store.get(agent_id)
        self.store.update(agent_id, goal=goal, config={**row.config, "goal": goal})
        return {"status": "updated"}

    def message(self, agent_id: str, text: str) -> dict[str, Any]:
        if not text.strip():
            raise InvalidArgument.from_problems([Problem("$.text", "must not be empty")])
        self.store.get(agent_id)
        self.store.add_chat(agent_id, "user", text.strip(), "message")
        self.store.append_inbox(agent_id, f"[{datetime.now(UTC).strftime('%H:%M')}] Operator: {text.strip()}")
        return {"status": "sent"}

    def set_inbox(self, agent_id: str, content: str) -> dict[str, Any]:
        self.store.get(agent_id)
        self.store.update(agent_id, inbox=content)
        return {"status": "ok"}

    def ask(self, agent_id: str, text: str, *, wait: bool) -> dict[str, Any]:
        if not text.strip():
            raise InvalidArgument.from_problems([Problem("$.text", "must not be empty")])
        row = self.store.get(agent_id)
        self.store.add_chat(agent_id, "user", text.strip(), "ask")
        if not self._ask.acquire(blocking=wait):
            message = "Too many concurrent questions. Try again in a moment."
            self.store.add_chat(agent_id, "assistant", message, "ask")
            return {"status": "busy", "answer": message}
        if wait:
            try:
                return {"status": "answered", "answer": self._answer(row, text.strip())}
            finally:
                self._ask.release()

        def background() -> None:
            try:
                self._answer(row, text.strip())
            finally:
                self._ask.release()

        threading.Thread(target=background, daemon=True, name=f"ask-{agent_id}").start()
        return {"status": "processing"}

    def _answer(self, row: AgentRow, question: str) -> str:
        researcher = self._researcher(row)
        try:
            answer, _ = researcher.answer(question, self._context(row, self.store.iterations(row.id), 0))
        except ResearcherError as exc:
            answer = f"Error: {exc}"
        except Exception:  # noqa: BLE001 - a failed answer is reported in the chat, not raised
            logger.exception("ask failed for agent %s", row.id)
            answer = "Error: the question could not be answered"
        try:
            self.store.add_chat(row.id, "assistant", answer[:5000], "ask")
        except NotFound:
            pass
        return answer[:5000]

    # --- the loop ------------------------------------------------------------------------------------

    def _researcher(self, row: AgentRow) -> Researcher:
        return self.anthropic if row.config.get("researcher") == "anthropic" else self.builtin

    def _context(self, row: AgentRow, records: list[dict[str, Any]], iteration: int) -> ResearchContext:
        return ResearchContext(
            agent_id=row.id, challenge=get_challenge(row.config["challenge"]), goal=row.goal, state_md=row.state_md,
            notes=row.notes, inbox=row.inbox, history=[history_entry(r) for r in records], iteration=iteration,
            min_iterations=int(row.config["min_iterations"]), max_iterations=int(row.config["max_iterations"]),
            model=str(row.config.get("model", "sonnet")), seed=int(row.config.get("seed", 0)))

    def load_data(self, challenge: Challenge, days_back: int,
                  progress: Callable[[int, int, str], None] | None = None) -> MarketData:
        return self.cache.load_assets(days_back, _needed(challenge), progress)

    def _main(self, agent_id: str) -> None:
        try:
            self._loop(agent_id)
        except NotFound:
            return  # deleted meanwhile
        except Exception as exc:  # noqa: BLE001 - an agent's fault must not reach the server
            logger.exception("agent %s crashed", agent_id)
            try:
                self.store.update(agent_id, status="crashed", error=f"{type(exc).__name__}: {exc}"[:1000],
                                  durable=True)
                self._log(agent_id, f"[crash] {type(exc).__name__}: {exc}")
            except NotFound:
                pass

    def _loop(self, agent_id: str) -> None:
        row = self.store.get(agent_id)
        challenge = get_challenge(row.config["challenge"])
        if row.status == "starting":
            self.store.update(agent_id, status="running", phase="loading data")
        self._log(agent_id, f"[prefetch] loading {row.config['days_back']} days of minute bars")
        data = self.load_data(challenge, int(row.config["days_back"]),
                              lambda step, total, text: self._log(agent_id, f"[prefetch] {text}"))
        split = make_split(challenge, data.rows, self.settings.holdout_days)
        self._log(agent_id, f"[data] {data.rows} minutes ({data.data_source}); development rows {split.dev_end}, "
                            f"holdout from row {split.holdout_start}")
        while not self._closing.is_set():
            row = self.store.get(agent_id)
            if row.holdout is not None and row.holdout.get("status") in ("running",):
                break
            if row.stop_requested or row.status not in ACTIVE:
                break
            if row.paused:
                if self._wait_paused(agent_id, row):
                    continue
                continue
            records = self.store.iterations(agent_id)
            iteration = len(records) + 1
            if iteration > int(row.config["max_iterations"]):
                self.store.update(agent_id, status="max_iterations_reached", phase="", durable=True)
                break
            record = self._iterate(row, challenge, data, split, records, iteration)
            if record is None:
                break
            if record["done_signal"]:
                self.store.update(agent_id, status="completed", phase="", durable=True)
                self._log(agent_id, f"[done] the researcher signalled done after iteration {iteration}")
                break
        if self._closing.is_set():
            return
        self._finish(agent_id, challenge, data, split)

    def _wait_paused(self, agent_id: str, row: AgentRow) -> bool:
        if row.status != "paused":
            self.store.update(agent_id, status="paused", phase="paused")
            self._log(agent_id, "[pause] paused")
        with self._lock:
            run = self._runs[agent_id]
        run.wake.clear()
        paused_at = datetime.fromisoformat((row.paused_at or now_iso()).replace("Z", "+00:00"))
        remaining = self.settings.pause_timeout_seconds - (datetime.now(UTC) - paused_at).total_seconds()
        if remaining <= 0:
            self.store.update(agent_id, paused=0, paused_at=None, status="running")
            self._log(agent_id, "[pause] pause timed out; resuming")
            return True
        run.wake.wait(timeout=min(remaining, 60.0))
        row = self.store.get(agent_id)
        if not row.paused and row.status == "paused":
            self.store.update(agent_id, status="running", phase="")
            self._log(agent_id, "[resume] resumed")
        return False

    def _iterate(self, row: AgentRow, challenge: Challenge, data: MarketData, split: Split,
                 records: list[dict[str, Any]], iteration: int) -> dict[str, Any] | None:
        agent_id = row.id
        started, stamp = time.monotonic(), now_iso()
        activity: list[str] = []

        def step(text: str) -> None:
            activity.append(text)
            self._log(agent_id, f"[iter {iteration}] {text}")
            self.store.update(agent_id, phase=text[:200])

        researcher = self._researcher(row)
        context = self._context(row, records, iteration)
        proposal: Proposal | None = None
        evaluation: Evaluation | None = None
        error: str | None = None
        step(f"asking the {researcher.name} researcher" + (" (inbox delivered)" if row.inbox else ""))
        try:
            proposal = researcher.propose(context)
        except ResearcherError as exc:
            error = f"researcher: {exc}"
        if proposal is not None:
            step(f"proposal: {proposal.what_changed}"[:300])
            step("evaluating in the sandbox on the development rows")
            workdir = self.root / agent_id / f"iteration_{iteration}"
            workdir.mkdir(parents=True, exist_ok=True)
            descriptions = {f["name"]: {"description": f.get("description", ""), "signal": f.get("signal", "")}
                            for f in proposal.feature_spec}
            evaluation = self.evaluations.development(
                challenge, data, split, proposal.code, workdir, descriptions=descriptions,
                seed=int(row.config["seed"]) + iteration, wall_seconds=self.settings.evaluation_timeout_seconds,
                owner=agent_id, cancelled=lambda: self._closing.is_set() or self.store.get(agent_id).stop_requested)
            if self._closing.is_set():
                return None  # the server is shutting down: the iteration is redone after the restart
            if self.store.get(agent_id).stop_requested:
                self._log(agent_id, f"[iter {iteration}] stopped during the iteration; not recorded")
                return None
            if not evaluation.ok:
                error = evaluation.error
            step("scored: " + (f"{challenge.metric.primary} = {evaluation.metrics.get(challenge.metric.primary)}"
                               if evaluation.ok else f"failed: {error}")[:300])
        record = iteration_record(challenge, iteration, proposal, evaluation, error, records, timestamp=stamp,
                                  elapsed_seconds=time.monotonic() - started, activity=activity,
                                  min_iterations=int(row.config["min_iterations"]), researcher=researcher.name,
                                  sandbox_mode=str(self.sandbox.capabilities().get("mode")))
        notes = row.notes + (("\n" if row.notes else "") + proposal.notes if proposal and proposal.notes else "")
        self.store.finish_iteration(agent_id, record, proposal.code if proposal else "", inbox_read=row.inbox,
                                    state_md=proposal.state_md if proposal and proposal.state_md else row.state_md,
                                    notes=notes[-50_000:])
        return record

    def _finish(self, agent_id: str, challenge: Challenge, data: MarketData, split: Split) -> None:
        """Score the best strategy on the holdout: once per agent, after it finished."""
        row = self.store.get(agent_id)
        if row.holdout is not None and row.holdout.get("status") in ("done", "failed", "skipped"):
            return
        records = self.store.iterations(agent_id)
        best = best_iteration(challenge, records)
        if best is None:
            self.store.update(agent_id, holdout={"status": "skipped", "reason": "no successful iteration"},
                              durable=True)
            return
        self.store.update(agent_id, holdout={"status": "running", "iteration": best["iteration"]}, phase="holdout")
        self._log(agent_id, f"[holdout] scoring iteration {best['iteration']} on the holdout (once)")
        _, code = self.store.iteration(agent_id, int(best["iteration"]))
        workdir = self.root / agent_id / "holdout"
        workdir.mkdir(parents=True, exist_ok=True)
        evaluation = self.evaluator.holdout(challenge, data, split, code, workdir,
                                            dev_digest=best.get("embeddings_digest"),
                                            seed=int(row.config["seed"]),
                                            wall_seconds=self.settings.evaluation_timeout_seconds, owner=agent_id)
        if self._closing.is_set():
            return
        holdout = {"status": "done" if evaluation.ok else "failed", "iteration": best["iteration"],
                   "evaluated_at": now_iso(), "metrics": evaluation.metrics if evaluation.ok else {},
                   "error": evaluation.error, "sandbox_seconds": evaluation.sandbox_seconds}
        self.store.update(agent_id, holdout=holdout, holdout_runs=row.holdout_runs + 1, phase="", durable=True)
        value = evaluation.metrics.get(challenge.metric.primary) if evaluation.ok else None
        self._log(agent_id, f"[holdout] {challenge.metric.primary} = {value}" if evaluation.ok
                  else f"[holdout] failed: {evaluation.error}")

    # --- stdout -----------------------------------------------------------------------------------------

    def _log(self, agent_id: str, line: str) -> None:
        folder = self.root / agent_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "stdout.log"
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        with open(path, "a") as handle:
            handle.write(f"{stamp} {line}\n")
        if path.stat().st_size > MAX_STDOUT_BYTES:
            text = path.read_bytes()[-MAX_STDOUT_BYTES // 2:]
            path.write_bytes(text[text.find(b"\n") + 1:])

    def stdout_tail(self, agent_id: str, tail: int) -> dict[str, Any]:
        self.store.get(agent_id)
        path = self.root / agent_id / "stdout.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        shown = lines[-tail:]
        return {"content": "\n".join(shown), "lines": len(lines), "showing": len(shown)}


def _needed(challenge: Challenge) -> tuple[str, ...]:
    assets = list(challenge.assets)
    if len(assets) == 1 and assets[0] != "BTC":
        assets.append("BTC")
    return tuple(assets)
