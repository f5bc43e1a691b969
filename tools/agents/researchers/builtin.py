"""The built-in researcher: deterministic feature-family search with a walk-forward logistic learner.

Iteration 1 screens a wide set of families (the goal's keywords first); the evaluator's computed
feature report ranks them by predictive power on the development rows. Iteration 2 keeps the best
four. After that: from the best set so far (by the development metric), add the strongest untried
family, or drop the weakest member when the last addition did not help by more than two noise SDs;
combinations already tried are skipped (a tabu list); once families run out, the L2 strength is
varied. Operator messages steer it: "try X" / "focus on X" move matching families to the front,
"avoid X" removes them. Done once `min_iterations` are reached and three iterations in a row brought
no improvement beyond two noise SDs, or nothing is left to try. Same inputs, same proposals: there
is no randomness, and the seed is only recorded.
"""

from __future__ import annotations

import re
from typing import Any

from quantdesk.tools.agents.challenges import Challenge
from quantdesk.tools.agents.researchers.base import Proposal, ResearchContext, Usage
from quantdesk.tools.agents.researchers.template import describe_family, render, warmup_for

SINGLE = ["ret_5", "ret_15", "ret_60", "ret_240", "vol_60", "vol_240", "boll_60", "boll_240", "rsi_14", "rsi_60",
          "range_60", "range_pos_240", "volz_240", "svol_60", "btc_ret_15", "btc_ret_60", "tod"]
MULTI = ["ret_15", "ret_60", "ret_240", "vol_60", "vol_240", "boll_60", "boll_240", "rsi_60", "range_60",
         "range_pos_240", "volz_240", "svol_60"]
KEYWORDS: dict[str, tuple[str, ...]] = {
    "momentum": ("ret_15", "ret_60", "ret_240"), "trend": ("ret_60", "ret_240"),
    "reversion": ("boll_60", "boll_240", "rsi_14", "rsi_60", "ret_60"), "reversal": ("ret_60", "boll_60", "rsi_60"),
    "rsi": ("rsi_14", "rsi_60"), "bollinger": ("boll_60", "boll_240"), "volume": ("volz_240", "svol_60"),
    "volatility": ("vol_60", "vol_240", "range_60"), "range": ("range_60", "range_pos_240"),
    "breakout": ("range_pos_240", "range_60"), "btc": ("btc_ret_15", "btc_ret_60"), "lead": ("btc_ret_15",),
    "time": ("tod",), "season": ("tod",), "intraday": ("tod",), "funding": ("fund_level", "fund_chg_480"),
    "carry": ("fund_level",),
}
SCREEN_SIZE = 10
KEEP_AFTER_SCREEN = 4
STALE_LIMIT = 3
L2_SCHEDULE = (1.0, 10.0, 0.1)


def candidates(challenge: Challenge) -> list[str]:
    if len(challenge.assets) == 1:
        families = list(SINGLE)
        if challenge.assets[0] == "BTC":
            families = [f for f in families if not f.startswith("btc_")]
        return families
    families = list(MULTI)
    if challenge.type == "funding_xsec":
        families = ["fund_level", "fund_chg_480", *families]
    return families


def keyword_families(text: str, allowed: list[str]) -> list[str]:
    lowered = text.lower()
    found: list[str] = []
    for word, families in KEYWORDS.items():
        if word in lowered:
            found += [f for f in families if f in allowed and f not in found]
    for family in allowed:
        if family in lowered and family not in found:
            found.append(family)
    return found


def steering(inbox: str, allowed: list[str]) -> tuple[list[str], set[str]]:
    """Families the operator asked to try first, and families to avoid."""
    prefer: list[str] = []
    avoid: set[str] = set()
    for line in inbox.splitlines():
        text = line.split("Operator:", 1)[-1]
        for match in re.finditer(r"\b(try|focus on|add|use|avoid|drop|remove|no)\b(.*)", text, re.IGNORECASE):
            families = keyword_families(match.group(2), allowed)
            if match.group(1).lower() in ("avoid", "drop", "remove", "no"):
                avoid.update(families)
            else:
                prefer += [f for f in families if f not in prefer]
    return prefer, avoid


def _primary(challenge: Challenge, entry: dict[str, Any]) -> float | None:
    if entry.get("has_error"):
        return None
    value = (entry.get("metrics") or {}).get(challenge.metric.primary)
    return float(value) if isinstance(value, int | float) else None


def _better(challenge: Challenge, a: float, b: float, margin: float = 0.0) -> bool:
    return a > b + margin if challenge.metric.direction == "higher" else a < b - margin


class BuiltinResearcher:
    name = "builtin"

    def propose(self, ctx: ResearchContext) -> Proposal:
        challenge = ctx.challenge
        allowed = candidates(challenge)
        prefer, avoid = steering(ctx.inbox, allowed)
        allowed = [f for f in allowed if f not in avoid]
        tried = {tuple(sorted(h.get("learner_spec", {}).get("families", []))) + (
            h.get("learner_spec", {}).get("l2", 1.0),) for h in ctx.history}
        ranking = self._ranking(ctx, allowed)
        best = self._best(ctx)
        thoughts: list[str] = []
        l2 = 1.0
        if not ctx.history:
            seeded = keyword_families(ctx.goal, allowed)
            families = list(dict.fromkeys([*prefer, *seeded, *[f for f in allowed if f not in seeded]]))[:SCREEN_SIZE]
            change = "screening run: " + ", ".join(families)
            hypothesis = ("A broad first set ranks the feature families by computed predictive power on the "
                          "development rows" + (f"; the goal points at {', '.join(seeded)}" if seeded else ""))
        elif len(ctx.history) == 1 or best is None:
            families = list(dict.fromkeys([*prefer, *ranking]))[:KEEP_AFTER_SCREEN] or allowed[:KEEP_AFTER_SCREEN]
            change = "kept the strongest families of the screen: " + ", ".join(families)
            hypothesis = "Fewer, stronger features generalise better than the whole screen"
        else:
            families, l2, change, hypothesis = self._next(ctx, best, ranking, prefer, allowed, tried, thoughts)
        done, reason = self._done(ctx, families, l2, tried)
        if reason:
            thoughts.append(reason)
        spec = [{"name": f, "family": f.rpartition("_")[0] or f, **describe_family(f)} for f in families]
        code = render(challenge, families, l2=l2, header=f"Iteration {ctx.iteration}: {', '.join(families)}")
        learner = {"model": "l2 logistic regression (IRLS), class-balanced, standardised", "l2": l2,
                   "refit_every_minutes": 1440, "train_window_days": 30, "thin_every_minutes": 5,
                   "purge_minutes": max(challenge.horizon_minutes, 1), "families": families}
        inference = {
            "summary": f"{', '.join(families)} from the last {warmup_for(families, challenge)} minutes; "
                       "a logistic model refit daily on resolved labels",
            "data_requirements": [{"field": "ohlcv", "source": "1-minute bars", "granularity": "1m",
                                   "lookback": f"{warmup_for(families, challenge)} minutes",
                                   "description": "open, high, low, close, volume of every challenge asset"}],
            "update_frequency": "every minute", "latency_sensitivity": "low",
            "output_format": challenge.embedding_layout, "dependencies": ["numpy"]}
        state = self._state_md(ctx, best, families, l2)
        notes = f"Iteration {ctx.iteration}: {change}."
        return Proposal(hypothesis=hypothesis, what_changed=change, code=code, done=done, notes=notes,
                        state_md=state, feature_spec=spec, learner_spec=learner, inference_spec=inference,
                        usage=Usage(), model="builtin", thoughts=thoughts)

    # --- policy ------------------------------------------------------------------------------------

    @staticmethod
    def _ranking(ctx: ResearchContext, allowed: list[str]) -> list[str]:
        """Families by the strongest |predictive power| any report gave them (computed, development rows)."""
        power: dict[str, float] = {}
        for entry in ctx.history:
            for feature in entry.get("feature_report") or []:
                name = feature["name"]
                family = "tod" if name.startswith("tod_") else name
                value = (feature.get("predictive_power") or {}).get("value")
                if family in allowed and isinstance(value, int | float):
                    power[family] = max(power.get(family, 0.0), abs(float(value)))
        return sorted(power, key=lambda f: (-power[f], allowed.index(f)))

    @staticmethod
    def _best(ctx: ResearchContext) -> dict[str, Any] | None:
        best: dict[str, Any] | None = None
        for entry in ctx.history:
            value = _primary(ctx.challenge, entry)
            if value is None:
                continue
            if best is None or _better(ctx.challenge, value, float(_primary(ctx.challenge, best) or 0.0)):
                best = entry
        return best

    def _next(self, ctx: ResearchContext, best: dict[str, Any], ranking: list[str], prefer: list[str],
              allowed: list[str], tried: set[tuple[Any, ...]], thoughts: list[str]
              ) -> tuple[list[str], float, str, str]:
        challenge = ctx.challenge
        base = list(best.get("learner_spec", {}).get("families", []))
        base_l2 = float(best.get("learner_spec", {}).get("l2", 1.0))
        last = ctx.history[-1]
        noise = float((best.get("metrics") or {}).get("noise_sd") or 0.0)
        last_value, best_value = _primary(challenge, last), _primary(challenge, best)
        thoughts.append(f"best so far: iteration {best['iteration']} ({challenge.metric.primary} = {best_value})")
        queue = [f for f in dict.fromkeys([*prefer, *ranking, *allowed]) if f not in base]
        options: list[tuple[list[str], float, str, str]] = []
        for family in queue:
            options.append(([*base, family], base_l2, f"added {family} to the best set",
                            f"{family} carries information the best set lacks"))
        if len(base) > 2:
            report = {f["name"]: abs((f.get("predictive_power") or {}).get("value") or 0.0)
                      for f in best.get("feature_report") or []}
            weakest = min(base, key=lambda f: report.get(f, report.get(f + "_sin", 0.0)))
            drop = ([f for f in base if f != weakest], base_l2, f"dropped the weakest family {weakest}",
                    f"{weakest} adds noise rather than signal")
            failed = last is not best and last_value is not None and best_value is not None and not _better(
                challenge, last_value, best_value, 2 * noise)
            options.insert(0 if failed else len(options), drop)
        for l2 in L2_SCHEDULE:
            options.append((base, l2, f"set the L2 strength to {l2}", "the regularisation is mis-set"))
        for families, l2, change, hypothesis in options:
            if tuple(sorted(families)) + (l2,) not in tried:
                return families, l2, change, hypothesis
        return base, base_l2, "nothing untried is left; re-running the best set", "no further candidates"

    @staticmethod
    def _done(ctx: ResearchContext, families: list[str], l2: float, tried: set[tuple[Any, ...]]
              ) -> tuple[bool, str]:
        if ctx.iteration < ctx.min_iterations:
            return False, ""
        if tuple(sorted(families)) + (l2,) in tried:
            return True, "every candidate has been tried"
        values = [(_primary(ctx.challenge, h), float((h.get("metrics") or {}).get("noise_sd") or 0.0))
                  for h in ctx.history]
        if len(values) <= STALE_LIMIT:
            return False, ""
        best_before = None
        for value, _ in values[:-STALE_LIMIT]:
            if value is not None and (best_before is None or _better(ctx.challenge, value, best_before)):
                best_before = value
        if best_before is None:
            return False, ""
        improved = any(v is not None and _better(ctx.challenge, v, best_before, 2 * sd)
                       for v, sd in values[-STALE_LIMIT:])
        return (not improved, "no improvement beyond two noise SDs in the last three iterations"
                if not improved else "")

    @staticmethod
    def _state_md(ctx: ResearchContext, best: dict[str, Any] | None, families: list[str], l2: float) -> str:
        lines = ["# Current State", ""]
        if best is not None:
            lines.append(f"Best development {ctx.challenge.metric.primary}: {_primary(ctx.challenge, best)} "
                         f"(iteration {best['iteration']}, families {', '.join(best['learner_spec']['families'])})")
        lines.append(f"Next: {', '.join(families)} with L2 {l2}")
        return "\n".join(lines) + "\n"

    # --- questions -----------------------------------------------------------------------------------

    def answer(self, question: str, ctx: ResearchContext) -> tuple[str, Usage]:
        """A factual summary from the records (no language model): best iteration, trend, strongest features."""
        challenge = ctx.challenge
        metric = challenge.metric.primary
        done = [h for h in ctx.history if _primary(challenge, h) is not None]
        if not ctx.history:
            return "The agent has not finished an iteration yet.", Usage()
        parts = [f"{len(ctx.history)} iterations so far ({len(ctx.history) - len(done)} failed)."]
        best = self._best(ctx)
        if best is not None:
            parts.append(f"Best development {metric}: {_primary(challenge, best):.4f} at iteration "
                         f"{best['iteration']} with {', '.join(best['learner_spec'].get('families', []))}.")
        if len(done) >= 2:
            first, last = _primary(challenge, done[0]), _primary(challenge, done[-1])
            parts.append(f"Trend: {metric} went from {first:.4f} (iteration {done[0]['iteration']}) to {last:.4f} "
                         f"(iteration {done[-1]['iteration']}).")
        report = (best or ctx.history[-1]).get("feature_report") or []
        top = [f"{f['name']} (rho {f['predictive_power']['value']:+.3f})" for f in report[:3]
               if f.get("predictive_power", {}).get("value") is not None]
        if top:
            parts.append("Strongest computed features: " + ", ".join(top) + ".")
        failures = [h for h in ctx.history if h.get("has_error")]
        if failures and re.search(r"error|fail|crash|wrong", question, re.IGNORECASE):
            parts.append(f"Last failure (iteration {failures[-1]['iteration']}): {failures[-1].get('error')}.")
        parts.append("Holdout scores are not shown to the agent; they are computed once when it finishes.")
        return " ".join(parts), Usage()
