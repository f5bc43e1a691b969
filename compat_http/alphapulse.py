"""AlphaPulse (seeds/001): the risk-and-hedging API on :18001, served by the desk's risk tools.

The document's routes under `/api/v1`, computed on the desk's real portfolio (AlphaPulse computed risk on
BTC candles and returned random metrics). Where the document left Alerts, System and Trades "to be
added", the routes are the natural ones over the same tools. Besides the documented fields, answers keep
what a client needs to trust a number: the method, periods per year, window and observations of a risk
metric, the factors of a position size, `data_source` (as a field, or the `X-Data-Source` header where the
legacy shape is a bare list or map). Regime detection, documented and never started, works here.

Auth: `X-API-Key`, or `POST /token` (OAuth2 password flow, form-encoded) and `Authorization: Bearer <jwt>`;
users are managed with `quantdesk users`. `/health` is public. Errors are `{"detail"}`. WebSockets expect
`{"type": "auth", "token": ...}` as their first frame. `quantdesk serve --compat alphapulse:18001`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quantdesk.server.errors import InvalidArgument, Problem
from quantdesk.server.registry import CallOutcome
from quantdesk.server.rest_rows import Profile, Row, WsRow, iso_to_ms, iso_utc

V1 = "/api/v1"
_OBJECT: dict[str, Any] = {"type": "object"}
_LIST: dict[str, Any] = {"type": "array", "items": _OBJECT}
# AlphaPulse's names for the recorded series; the desk's own names pass through.
METRIC_ALIASES = {"portfolio_value": "portfolio_value_usd", "performance": "pnl_usd", "risk": "var_95_pct"}
_METRIC_NAMES = ["portfolio_value", "performance", "risk", "portfolio_value_usd", "pnl_usd", "daily_pnl_usd",
                 "daily_loss_pct", "gross_exposure_usd", "net_exposure_usd", "leverage", "drawdown_pct",
                 "volatility_annual", "var_95_pct", "cvar_95_pct", "sharpe_ratio", "sortino_ratio"]
_ISO = {"type": "string", "format": "date-time", "description": "ISO 8601; without an offset, UTC."}


def _ms(args: dict[str, Any], legacy: str, argument: str) -> None:
    """Move an ISO time parameter onto the tool's millisecond argument."""
    if legacy not in args:
        return
    moment = iso_to_ms(args.pop(legacy), legacy)
    if argument in args:
        raise InvalidArgument.from_problems([Problem(f"$.{legacy}", f"given twice (also as {argument})")])
    args[argument] = moment


def _metric_request(args: dict[str, Any]) -> dict[str, Any]:
    args = dict(args)
    name = args.get("metric_type")
    if isinstance(name, str):
        args["metric_type"] = METRIC_ALIASES.get(name, name)
    _ms(args, "start_time", "start_ms")
    _ms(args, "end_time", "end_ms")
    return args


def _analyze_request(args: dict[str, Any]) -> dict[str, Any]:
    # The document nests the request in `market_data`; a flat body is accepted as it is.
    if "market_data" not in args:
        return args
    rest = {k: v for k, v in args.items() if k != "market_data"}
    market = args["market_data"]
    if not isinstance(market, dict):
        raise InvalidArgument.from_problems([Problem("$.market_data", "must be an object: {symbol, timeframe, "
                                                                     "lookback_hours}")])
    return {**rest, **market}


_LIMIT_KEYS = {("position_limits", "default"): "position_limit_usd", ("margin_limits", "total"): "margin_limit_usd",
               ("exposure_limits", "total"): "exposure_limit_usd", ("drawdown_limits", "max"): "drawdown_limit_usd"}


def _limits_request(args: dict[str, Any]) -> dict[str, Any]:
    """The `GET /risk/limits` shape written back: `{"position_limits": {"default": 20000}, ...}`."""
    out = {k: v for k, v in args.items() if k not in {group for group, _ in _LIMIT_KEYS}}
    for (group, key), argument in _LIMIT_KEYS.items():
        if group not in args:
            continue
        value = args[group]
        if not isinstance(value, dict) or set(value) - {key}:
            raise InvalidArgument.from_problems([Problem(f"$.{group}", f'must be {{"{key}": <USD>}}')])
        if key in value:
            if isinstance(value[key], bool) or not isinstance(value[key], int | float):
                raise InvalidArgument.from_problems([Problem(f"$.{group}.{key}", "must be a number of USD")])
            out[argument] = value[key]
    return out


def _exposure_rows(pick: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Callable[[CallOutcome], Any]:
    def reshape(outcome: CallOutcome) -> Any:
        return [row for row in (pick(a) for a in outcome.structured["assets"]) if row is not None]

    return reshape


def _spot(a: dict[str, Any]) -> dict[str, Any] | None:
    if not a["spot_quantity"]:
        return None
    return {"symbol": a["asset"], "quantity": a["spot_quantity"], "value_usd": a["spot_value_usd"],
            "avg_entry_price": a["spot_avg_entry_price_usd"]}


def _futures(a: dict[str, Any]) -> dict[str, Any] | None:
    if not a["futures_quantity"]:
        return None
    return {"symbol": a["perpetual_symbol"], "quantity": a["futures_quantity"], "value_usd": a["futures_value_usd"],
            "avg_entry_price": a["futures_entry_price_usd"], "leverage": a["futures_leverage"]}


def _position_metrics(a: dict[str, Any]) -> dict[str, Any]:
    return {"symbol": a["asset"], "spot_value": a["spot_value_usd"], "spot_qty": a["spot_quantity"],
            "futures_value": a["futures_value_usd"], "futures_qty": a["futures_quantity"],
            "net_exposure": a["net_exposure_usd"], "hedge_ratio": a["hedge_ratio"]}


def _exposure(outcome: CallOutcome) -> dict[str, Any]:
    s = outcome.structured
    return {**{a["asset"]: a["net_exposure_fraction"] for a in s["assets"]}, "total": s["total_net_exposure_fraction"]}


def _risk_metrics(outcome: CallOutcome) -> dict[str, Any]:
    s = outcome.structured
    return {"volatility": s["volatility_annual"], "var_95": s["var_95_pct"], "cvar_95": s["cvar_95_pct"],
            "max_drawdown": s["max_drawdown_pct"], "sharpe_ratio": s["sharpe_ratio"],
            "sortino_ratio": s["sortino_ratio"], "calmar_ratio": s["calmar_ratio"], "cagr": s["cagr"],
            "method": s["var_method_used"], "bar": s["bar"], "periods_per_year": s["periods_per_year"],
            "observations": s["observations"], "window_start": s["window_start"], "window_end": s["window_end"],
            "null_reasons": s["null_reasons"], "data_source": s["data_source"]}


def _position_size(outcome: CallOutcome) -> dict[str, Any]:
    s = outcome.structured
    return {"asset": s["asset"], "recommended_size": s["quantity"], "max_size": s["max_quantity"],
            "risk_per_trade": s["risk_usd"], "stop_loss": s["stop_loss_price_usd"],
            "take_profit": s["take_profit_price_usd"], "symbol": s["symbol"], "side": s["side"],
            "entry_price": s["entry_price_usd"], "binding_constraint": s["binding_constraint"],
            "factors": s["factors"], "data_source": s["data_source"]}


def _hedge_analysis(outcome: CallOutcome) -> dict[str, Any]:
    s = outcome.structured
    return {"commentary": s["commentary"],
            "adjustments": [{"asset": a["asset"], "action": a["action"], "priority": a["priority"],
                             "symbol": a["symbol"], "side": a["side"], "quantity": a["quantity"]}
                            for a in s["adjustments"]],
            "current_net_exposure": s["current_net_exposure_fraction"],
            "target_net_exposure": s["target_net_exposure_fraction"],
            "risk_metrics": {"hedge_ratio": s["hedge_ratio"], "correlation": s["correlation"]},
            "data_source": s["data_source"]}


def _hedge_trades(outcome: CallOutcome) -> dict[str, Any]:
    s = outcome.structured
    # AlphaPulse sent amounts and prices as strings; `asset` is the traded instrument, as in its example.
    trades = [{"asset": t["symbol"], "side": t["side"], "amount": str(t["amount"]), "price": str(t["price"]),
               "fee_usd": t["fee_usd"], "fill_id": t["fill_id"], "order_id": t["order_id"],
               "timestamp": t["timestamp"]} for t in s["executed_trades"]]
    return {"status": s["status"], "executed_trades": trades, "message": s["message"], "skipped": s["skipped"],
            "data_source": s["data_source"]}


def _portfolio(outcome: CallOutcome) -> dict[str, Any]:
    s = outcome.structured
    body: dict[str, Any] = {
        "total_value": s["total_value_usd"], "cash": s["cash_usd"],
        "positions": [{"symbol": p["symbol"], "asset": p["asset"], "kind": p["kind"], "quantity": p["quantity"],
                       "value": p["value_usd"], "allocation": p["allocation"]} for p in s["positions"]],
        "timestamp": s["timestamp"], "data_source": s["data_source"]}
    if s.get("history") is not None:
        body["history"] = [{"timestamp": h["timestamp"], "total_value": h["total_value_usd"]} for h in s["history"]]
    return body


def _reload(outcome: CallOutcome) -> dict[str, Any]:
    s = outcome.structured
    return {"status": s["status"], "message": s["message"], "timestamp": s["timestamp"],
            "data_source": s["data_source"]}


def _series(outcome: CallOutcome) -> Any:
    return [{"timestamp": p["timestamp"], "value": p["value"]} for p in outcome.structured["points"]]


def _latest(outcome: CallOutcome) -> dict[str, Any]:
    s = outcome.structured
    return {"timestamp": s["timestamp"], "value": s["value"], "change_24h": s["change_24h"],
            "metric_type": s["metric_type"], "unit": s["unit"], "data_source": s["data_source"]}


def _alert(a: dict[str, Any]) -> dict[str, Any]:
    return {"id": a["alert_id"], "severity": a["severity"], "message": a["message"], "timestamp": a["timestamp"],
            "acknowledged": a["acknowledged"], "metric": a["metric"], "value": a["value"],
            "threshold": a["threshold"], "rule_id": a["rule_id"]}


def _alerts(outcome: CallOutcome) -> Any:
    return [_alert(a) for a in outcome.structured["alerts"]]


def _acknowledged(outcome: CallOutcome) -> dict[str, Any]:
    s = outcome.structured
    return {"success": True, "alert": _alert(s["alert"]), "already_acknowledged": s["already_acknowledged"]}


def _trades(outcome: CallOutcome) -> Any:
    return [{"id": t["trade_id"], "symbol": t["symbol"], "side": t["side"], "quantity": t["quantity"],
             "price": t["price_usd"], "fee": t["fee_usd"], "liquidity": t["liquidity"], "order_id": t["order_id"],
             "timestamp": t["timestamp"]} for t in outcome.structured["trades"]]


def _regime(outcome: CallOutcome) -> dict[str, Any]:
    s = outcome.structured
    return {"regime": s["regime"], "confidence": s["confidence"], "parameters": s["parameters"],
            "timestamp": s["timestamp"], "symbol": s["symbol"], "timeframe": s["timeframe"],
            "probabilities": s["probabilities"], "warming_up": s["warming_up"],
            "bars_available": s["bars_available"], "bars_needed": s["bars_needed"], "data_source": s["data_source"]}


def _regime_history(outcome: CallOutcome) -> dict[str, Any]:
    s = outcome.structured
    return {"regimes": [{"regime": r["regime"], "confidence": r["confidence"], "start_time": r["start_time"],
                         "end_time": r["end_time"]} for r in s["regimes"]],
            "symbol": s["symbol"], "timeframe": s["timeframe"], "data_source": s["data_source"]}


def _regime_analysis(outcome: CallOutcome) -> dict[str, Any]:
    s = outcome.structured
    f = s["features"]
    return {"regime": s["regime"], "confidence": s["confidence"],
            "features": {"volatility": f["volatility_annual"], "trend_strength": f["trend_strength"],
                         "volume_ratio": f["volume_ratio"]},
            "probabilities": s["probabilities"], "bars_analyzed": s["bars_analyzed"], "causal": s["causal"],
            "symbol": s["symbol"], "data_source": s["data_source"]}


def _health(outcome: CallOutcome) -> dict[str, Any]:
    return {"status": outcome.structured["status"], "version": outcome.structured["version"]}


ROWS: tuple[Row, ...] = (
    Row("GET", "/health", "get_health", public=True, response=_health, response_schema=_OBJECT,
        summary="Service status and version"),
    Row("GET", f"{V1}/positions/spot", "get_exposure", response=_exposure_rows(_spot), response_schema=_LIST,
        summary="Spot positions"),
    Row("GET", f"{V1}/positions/futures", "get_exposure", response=_exposure_rows(_futures), response_schema=_LIST,
        summary="Futures (perpetual) positions"),
    Row("GET", f"{V1}/positions/metrics", "get_exposure", response=_exposure_rows(_position_metrics),
        response_schema=_LIST, summary="Spot, futures, net exposure and hedge ratio per asset"),
    Row("GET", f"{V1}/risk/exposure", "get_exposure", response=_exposure, response_schema=_OBJECT,
        summary="Net exposure per asset and in total, as fractions of equity"),
    # Hourly bars by default, so a desk answers after a day rather than after three (AlphaPulse named no bar).
    Row("GET", f"{V1}/risk/metrics", "get_risk_metrics", defaults={"bar": "1h"}, response=_risk_metrics,
        response_schema=_OBJECT, summary="Volatility, VaR, CVaR, drawdown and ratios of the desk's equity"),
    Row("GET", f"{V1}/risk/limits", "get_risk_limit_usage", summary="The limits the risk engine enforces"),
    Row("PUT", f"{V1}/risk/limits", "set_risk_limits_usd", request=_limits_request,
        params={"position_limits": {"type": "object", "properties": {"default": {"type": "number"}}},
                "margin_limits": {"type": "object", "properties": {"total": {"type": "number"}}},
                "exposure_limits": {"type": "object", "properties": {"total": {"type": "number"}}},
                "drawdown_limits": {"type": "object", "properties": {"max": {"type": "number"}}}},
        summary="Set limits in the GET shape (or the tool's *_usd fields); the engine enforces them at once"),
    Row("GET", f"{V1}/risk/position-size/{{asset}}", "get_position_size", response=_position_size,
        response_schema=_OBJECT, summary="Position size from equity, an ATR stop, Kelly and a volatility target"),
    Row("GET", f"{V1}/hedging/analysis", "analyze_hedge", response=_hedge_analysis, response_schema=_OBJECT,
        summary="Hedge ratio per asset and the adjustments toward the target"),
    Row("POST", f"{V1}/hedging/execute", "execute_hedge", response=_hedge_trades, response_schema=_OBJECT,
        summary="Place the adjustments as desk orders; the executed trades with their fills"),
    Row("POST", f"{V1}/hedging/close", "close_all_hedges", response=_hedge_trades, response_schema=_OBJECT,
        summary="Close every hedge with reduce-only orders"),
    Row("GET", f"{V1}/portfolio", "get_portfolio", response=_portfolio, response_schema=_OBJECT,
        summary="Portfolio value, cash, positions and (include_history) the equity history"),
    Row("POST", f"{V1}/portfolio/reload", "reload_portfolio", response=_reload, response_schema=_OBJECT,
        summary="Re-read the desk and record an equity sample"),
    Row("GET", f"{V1}/metrics/{{metric_type}}", "get_metric_series", request=_metric_request, response=_series,
        response_schema=_LIST,
        params={"metric_type": {"type": "string", "enum": _METRIC_NAMES}, "start_time": _ISO, "end_time": _ISO,
                "start_ms": None, "end_ms": None},
        summary="A recorded metric over time, aggregated per bucket"),
    Row("GET", f"{V1}/metrics/{{metric_type}}/latest", "get_latest_metric", request=_metric_request,
        response=_latest, response_schema=_OBJECT,
        params={"metric_type": {"type": "string", "enum": _METRIC_NAMES}},
        summary="The newest value of a metric and its 24-hour change"),
    Row("GET", f"{V1}/alerts", "list_alerts", response=_alerts, response_schema=_LIST, summary="Alert history"),
    Row("POST", f"{V1}/alerts/{{alert_id}}/acknowledge", "acknowledge_alert", response=_acknowledged,
        response_schema=_OBJECT, summary="Acknowledge an alert"),
    Row("GET", f"{V1}/alerts/rules", "list_alert_rules", summary="Alert rules"),
    Row("POST", f"{V1}/alerts/rules", "create_alert_rule", status_code=201, summary="Add an alert rule"),
    Row("DELETE", f"{V1}/alerts/rules/{{rule_id}}", "delete_alert_rule", summary="Delete an alert rule"),
    Row("GET", f"{V1}/system", "get_desk_health", summary="The desk's components and their health"),
    Row("GET", f"{V1}/trades", "list_trades", response=_trades, response_schema=_LIST,
        summary="The desk's fills, newest first"),
    Row("GET", f"{V1}/regime/current", "get_market_regime", response=_regime, response_schema=_OBJECT,
        summary="The current market regime (causal HMM) with its risk parameters"),
    Row("GET", f"{V1}/regime/history", "get_regime_history", response=_regime_history, response_schema=_OBJECT,
        summary="Regimes over the last `hours`"),
    Row("POST", f"{V1}/regime/analyze", "analyze_market_regime", request=_analyze_request, response=_regime_analysis,
        response_schema=_OBJECT,
        params={"market_data": {"type": "object", "required": ["symbol"],
                                "properties": {"symbol": {"type": "string", "minLength": 1, "maxLength": 32,
                                                          "pattern": "^[A-Za-z0-9._:/-]+$"},
                                               "timeframe": {"type": "string",
                                                             "enum": ["1m", "5m", "15m", "1h", "4h", "1d"]},
                                               "lookback_hours": {"type": "number", "exclusiveMinimum": 0}}},
                "symbol": None, "timeframe": None, "lookback_hours": None},
        params_required=("market_data",), summary="Fit the regime model on the desk market's bars"),
)


def _stream(topics: tuple[str, ...]) -> dict[str, Any]:
    # A WebSocket follows the bus until the client leaves (a month is the tool's longest duration), with room to
    # queue a burst (a hedge, a batch of orders) for a slow reader before its oldest events are dropped.
    return {"topics": list(topics), "max_events": 10**9, "duration_seconds": 30 * 86_400, "max_queue": 20_000}


def _metrics_message(event: dict[str, Any]) -> dict[str, Any]:
    values = event["data"]["values"]
    return {"type": "metrics_update",
            "data": {"portfolio_value": values.get("portfolio_value_usd"), **values,
                     "timestamp": iso_utc(event["data"]["timestamp_ms"])}}


def _alert_message(event: dict[str, Any]) -> dict[str, Any] | None:
    if event["data"]["change"] != "raised":
        return None
    alert = event["data"]["alert"]
    return {"type": "new_alert", "data": {"id": alert["alert_id"], "severity": alert["severity"],
                                          "message": alert["message"], "timestamp": alert["timestamp"]}}


def _portfolio_message(event: dict[str, Any]) -> dict[str, Any]:
    p = event["data"]["portfolio"]
    return {"type": "portfolio_update",
            "data": {"total_value": p["total_value_usd"], "cash": p["cash_usd"],
                     "positions": [{"symbol": q["symbol"], "asset": q["asset"], "quantity": q["quantity"],
                                    "value": q["value_usd"]} for q in p["positions"]],
                     "timestamp": iso_utc(event["data"]["timestamp_ms"])}}


def _trade_message(event: dict[str, Any]) -> dict[str, Any]:
    fill = event["data"]["fill"]
    return {"type": "new_trade", "data": {"id": fill["fill_id"], "symbol": fill["symbol"], "side": fill["side"],
                                          "quantity": fill["quantity"], "price": fill["price"],
                                          "timestamp": iso_utc(fill["timestamp_ms"])}}


WEBSOCKETS: tuple[WsRow, ...] = (
    WsRow("/ws/metrics", "stream_events", _stream(("metrics",)), _metrics_message, auth="first_frame"),
    WsRow("/ws/alerts", "stream_events", _stream(("alert",)), _alert_message, auth="first_frame"),
    WsRow("/ws/portfolio", "stream_events", _stream(("portfolio",)), _portfolio_message, auth="first_frame"),
    WsRow("/ws/trades", "stream_events", _stream(("fill",)), _trade_message, auth="first_frame"),
)

PROFILE = Profile("alphapulse", "AlphaPulse", ROWS, token_path="/token", websockets=WEBSOCKETS)
