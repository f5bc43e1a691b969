"""Alert rules on recorded metrics, the stored alerts, and their acknowledgement.

A rule compares one recorded metric with a threshold: a fixed number, or a fraction of one of the control
plane's limits read when the point is evaluated (drawdown at 80 % of max_drawdown_pct). Rules are
edge-triggered: an alert is raised when a point meets the condition after one that did not (or as the
first point seen), and the rule re-arms once a point no longer meets it, so a metric that stays beyond
its threshold raises one alert, not one per sample. Rules, their armed state and every alert are stored.
A fresh store starts with two rules: drawdown and daily loss at 80 % of their limits (warning).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from quantdesk.server.errors import Conflict, InvalidArgument, NotFound, Problem
from quantdesk.tools.risk.series import METRICS, iso
from quantdesk.tools.risk.store import RiskSql, RiskStoreDamaged, get_meta

Operator = Literal[">=", ">", "<=", "<"]
Severity = Literal["info", "warning", "critical"]
LIMIT_NAMES = ("max_order_notional_usd", "max_position_notional_usd", "max_gross_exposure_usd",
               "max_net_exposure_usd", "max_leverage", "max_daily_loss_pct", "max_drawdown_pct")
MAX_RULES = 200


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    name: str
    metric: str
    operator: Operator
    threshold: float | None
    of_limit: str | None
    limit_fraction: float | None
    severity: Severity
    message: str | None
    enabled: bool
    created_ms: int

    def threshold_now(self, limits: Any) -> float | None:
        if self.threshold is not None:
            return self.threshold
        value = getattr(limits, self.of_limit or "", None) if limits is not None else None
        return None if value is None else float(value) * (self.limit_fraction or 1.0)

    def describe(self, limits: Any) -> str:
        if self.threshold is not None:
            return f"{self.metric} {self.operator} {self.threshold:g}"
        fraction = self.limit_fraction or 1.0
        return f"{self.metric} {self.operator} {fraction:.0%} of {self.of_limit}"


def _met(value: float, operator: str, threshold: float) -> bool:
    return {">=": value >= threshold, ">": value > threshold, "<=": value <= threshold,
            "<": value < threshold}[operator]


def alert_dict(r: sqlite3.Row) -> dict[str, Any]:
    return {"alert_id": r["alert_id"], "rule_id": r["rule_id"], "timestamp_ms": r["timestamp_ms"],
            "timestamp": iso(r["timestamp_ms"]), "severity": r["severity"], "metric": r["metric"],
            "value": r["value"], "threshold": r["threshold"], "operator": r["operator"], "message": r["message"],
            "acknowledged": r["acknowledged_ms"] is not None, "acknowledged_ms": r["acknowledged_ms"],
            "acknowledged_at": iso(r["acknowledged_ms"]), "acknowledged_by": r["acknowledged_by"],
            "acknowledged_note": r["acknowledged_note"]}


class AlertBook:
    def __init__(self, sql: RiskSql, now_ms: int) -> None:
        self.sql = sql
        if get_meta(sql, "rules_seeded") is None:
            with sql.transaction() as conn:
                for n, (metric, limit, name) in enumerate((
                        ("drawdown_pct", "max_drawdown_pct", "drawdown near its limit"),
                        ("daily_loss_pct", "max_daily_loss_pct", "daily loss near its limit")), start=1):
                    rule = Rule(f"rule-{n:04d}", name, metric, ">=", None, limit, 0.8, "warning", None, True, now_ms)
                    self._put(conn, rule, n, False)
                conn.execute("INSERT OR REPLACE INTO risk_meta (key, value) VALUES ('rules_seeded', '1')")
        self._rules: list[tuple[Rule, bool]] = []
        self.damaged: str | None = None
        self.reload()
        seq = sql.query("SELECT COALESCE(MAX(seq), 0) FROM risk_alerts")
        self._alert_seq = int(seq[0][0])
        self.raised_by_severity: dict[str, int] = {}

    def check(self) -> None:
        """Refuse to work on rules that could not be read back (fail closed until the store is repaired)."""
        if self.damaged is not None:
            raise RiskStoreDamaged(self.damaged)

    def reload(self) -> None:
        rules = []
        for r in self.sql.query("SELECT rule_id, body, firing FROM risk_alert_rules ORDER BY seq"):
            try:
                data = json.loads(r["body"])
                names = {f.name for f in fields(Rule)}
                if not isinstance(data, dict) or set(data) != names:
                    raise ValueError("fields differ")
                rules.append((Rule(**data), bool(r["firing"])))
            except (ValueError, TypeError):
                self.damaged = (f"the alert rule {r['rule_id']} cannot be read back (damaged store): alerts and metric "
                                "recording wait until it is repaired or deleted")
                return
        self.damaged = None
        self._rules = rules

    @staticmethod
    def _put(conn: sqlite3.Connection, rule: Rule, seq: int, firing: bool) -> None:
        conn.execute("INSERT OR REPLACE INTO risk_alert_rules (rule_id, seq, body, firing, created_ms) "
                     "VALUES (?, ?, ?, ?, ?)", (rule.rule_id, seq, json.dumps(asdict(rule), sort_keys=True),
                                                int(firing), rule.created_ms))

    def rules(self) -> list[tuple[Rule, bool]]:
        self.check()
        return list(self._rules)

    def create(self, *, name: str, metric: str, operator: Operator, threshold: float | None, of_limit: str | None,
               limit_fraction: float | None, severity: Severity, message: str | None, now_ms: int) -> Rule:
        self.check()
        problems = []
        if metric not in METRICS:
            problems.append(Problem("$.metric", f"unknown metric {metric!r}; known: {', '.join(METRICS)}"))
        if (threshold is None) == (of_limit is None):
            problems.append(Problem("$.threshold", "give exactly one of threshold and of_limit"))
        if of_limit is None and limit_fraction is not None:
            problems.append(Problem("$.limit_fraction", "applies only with of_limit"))
        if problems:
            raise InvalidArgument.from_problems(problems)
        if len(self._rules) >= MAX_RULES:
            raise Conflict(f"there are already {MAX_RULES} alert rules; delete one first")
        seq = int(self.sql.query("SELECT COALESCE(MAX(seq), 0) FROM risk_alert_rules")[0][0]) + 1
        rule = Rule(f"rule-{seq:04d}", name, metric, operator, threshold, of_limit,
                    (limit_fraction if limit_fraction is not None else 1.0) if of_limit else None, severity, message,
                    True, now_ms)
        with self.sql.transaction() as conn:
            self._put(conn, rule, seq, False)
        self.reload()
        return rule

    def delete(self, rule_id: str) -> bool:
        with self.sql.transaction() as conn:
            deleted = conn.execute("DELETE FROM risk_alert_rules WHERE rule_id = ?", (rule_id,)).rowcount
        self.reload()
        return bool(deleted)

    def evaluate(self, conn: sqlite3.Connection, points: list[tuple[str, int, float]], limits: Any
                 ) -> list[dict[str, Any]]:
        """Run the rules over new points (time order) in the caller's transaction; the alerts raised."""
        self.check()
        raised: list[dict[str, Any]] = []
        if not self._rules or not points:
            return raised
        by_metric: dict[str, list[int]] = {}
        for i, (rule, _) in enumerate(self._rules):
            if rule.enabled:
                by_metric.setdefault(rule.metric, []).append(i)
        changed: set[int] = set()
        for metric, t, value in points:
            for i in by_metric.get(metric, ()):
                rule, firing = self._rules[i]
                threshold = rule.threshold_now(limits)
                if threshold is None:
                    continue  # the limit it refers to is switched off
                met = _met(value, rule.operator, threshold)
                if met and not firing:
                    self._alert_seq += 1
                    alert_id = f"alert-{self._alert_seq:08d}"
                    message = rule.message or (f"{rule.name}: {metric} {value:.6g} {rule.operator} {threshold:.6g} "
                                               f"({rule.describe(limits)})")
                    row = (self._alert_seq, alert_id, rule.rule_id, t, rule.severity, metric, value, threshold,
                           rule.operator, message)
                    conn.execute("INSERT INTO risk_alerts (seq, alert_id, rule_id, timestamp_ms, severity, metric, "
                                 "value, threshold, operator, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
                    raised.append({"alert_id": alert_id, "rule_id": rule.rule_id, "timestamp_ms": t,
                                   "timestamp": iso(t), "severity": rule.severity, "metric": metric, "value": value,
                                   "threshold": threshold, "operator": rule.operator, "message": message,
                                   "acknowledged": False, "acknowledged_ms": None, "acknowledged_at": None,
                                   "acknowledged_by": None, "acknowledged_note": None})
                if met != firing:
                    self._rules[i] = (rule, met)
                    changed.add(i)
        for i in changed:
            rule, firing = self._rules[i]
            conn.execute("UPDATE risk_alert_rules SET firing = ? WHERE rule_id = ?", (int(firing), rule.rule_id))
        for alert in raised:
            self.raised_by_severity[alert["severity"]] = self.raised_by_severity.get(alert["severity"], 0) + 1
        return raised

    def resync(self) -> None:
        """After a rolled-back transaction: the stored rule states and alert numbers are the truth."""
        self.reload()
        self._alert_seq = int(self.sql.query("SELECT COALESCE(MAX(seq), 0) FROM risk_alerts")[0][0])

    def history(self, *, severity: str | None, acknowledged: bool | None, rule_id: str | None, since_ms: int | None,
             until_ms: int | None, limit: int) -> list[dict[str, Any]]:
        where, params = [], []
        for clause, value in (("severity = ?", severity), ("rule_id = ?", rule_id), ("timestamp_ms >= ?", since_ms),
                              ("timestamp_ms <= ?", until_ms)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if acknowledged is not None:
            where.append("acknowledged_ms IS NOT NULL" if acknowledged else "acknowledged_ms IS NULL")
        sql = f"SELECT * FROM risk_alerts {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY seq DESC LIMIT ?"
        return [alert_dict(r) for r in self.sql.query(sql, [*params, limit])]

    def unacknowledged(self) -> int:
        return int(self.sql.query("SELECT COUNT(*) FROM risk_alerts WHERE acknowledged_ms IS NULL")[0][0])

    def acknowledge(self, alert_id: str, actor: str, note: str | None, now_ms: int) -> tuple[dict[str, Any], bool]:
        """(the alert, whether it was already acknowledged); the first acknowledgement is kept."""
        with self.sql.transaction() as conn:
            row = conn.execute("SELECT * FROM risk_alerts WHERE alert_id = ?", (alert_id,)).fetchone()
            if row is None:
                raise NotFound(f"no alert {alert_id!r}")
            already = row["acknowledged_ms"] is not None
            if not already:
                conn.execute("UPDATE risk_alerts SET acknowledged_ms = ?, acknowledged_by = ?, acknowledged_note = ? "
                             "WHERE alert_id = ?", (now_ms, actor, note, alert_id))
                row = conn.execute("SELECT * FROM risk_alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        return alert_dict(row), already
