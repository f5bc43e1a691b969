"""Paper-trading desk tools: orders, fills, positions, balances, the market view and the simulated clock."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread

from quantdesk.server.errors import InvalidArgument, Problem, QuantdeskError
from quantdesk.server.registry import CallContext, ToolSet
from quantdesk.tools.bus.bus import EventBus
from quantdesk.tools.desk.config import DeskConfig
from quantdesk.tools.desk.model import IntentContext, OrderRequest, Vote
from quantdesk.tools.desk.models import (
    AccountSummaryOutput,
    AdvanceInput,
    AdvanceOutput,
    BalancesOutput,
    BookInput,
    BookOutput,
    DeskHealthOutput,
    DeskStatusOutput,
    EquityInput,
    EquityOutput,
    FillsOutput,
    FundingInput,
    FundingOutput,
    InstrumentsOutput,
    LeverageInput,
    ListFillsInput,
    ListOrdersInput,
    MarginModeInput,
    NoArguments,
    OrderOutput,
    OrderRef,
    OrdersOutput,
    PlaceOrderInput,
    PlaceOrderOutput,
    PlaceOrdersInput,
    PlaceOrdersOutput,
    PositionsInput,
    PositionsOutput,
    QuoteInput,
    QuoteOutput,
    SymbolSettingsOutput,
)
from quantdesk.tools.desk.service import DeskService

tools = ToolSet("desk")
logger = logging.getLogger("quantdesk.desk")


def _open_desk(services: Any) -> DeskService:
    from quantdesk.tools.caches.service import CacheService

    def cache_path(key: str) -> Any:
        return services.get(CacheService).store.get(key).path

    try:
        config = DeskConfig.from_env()
    except ValueError as exc:
        config = DeskConfig()
        desk = DeskService(services.state, services.get(EventBus), config, data_dir=services.data_dir,
                           resolve_cache=cache_path, start_runner=False)
        desk.error = f"the desk set-up is invalid: {exc}"
        return desk
    return DeskService(services.state, services.get(EventBus), config, data_dir=services.data_dir,
                       resolve_cache=cache_path, start_runner=bool(services.settings.get("background", True)))


tools.service(DeskService, _open_desk, at_start=True)
T = TypeVar("T")


async def on_desk(ctx: CallContext, work: Callable[[DeskService], T], *, settle: bool = True) -> T:
    """Run `work` under the engine's lock: on the event loop when the lock is free (the common, fast case),
    in a worker thread when something long (an advance, a catch-up) holds it, so the loop never blocks.
    With `settle` (every tool but the order placements) the pending group of orders is written first, so
    what the tool reads or does comes after it."""
    desk = ctx.services.get(DeskService)
    lock = desk.lock

    def run() -> T:
        if settle:
            desk.engine.commit_pending()
        return work(desk)

    if lock.acquire(blocking=False):
        try:
            return run()
        finally:
            lock.release()

    def locked() -> T:
        with lock:
            return run()

    return await anyio.to_thread.run_sync(locked)


async def committed(desk: DeskService, generation: int | None) -> None:
    """Group commit: wait until the orders of `generation` are written (raise the error if they could not be).

    The first caller of a group schedules its commit for the event loop's next turn, so the placements of
    the other requests the loop is handling now join the same transaction; each caller answers only after
    it (an answer never precedes its order's commit)."""
    if generation is None:
        return
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    future: asyncio.Future[None] = loop.create_future()

    def done(error: BaseException | None) -> None:
        if threading.get_ident() == loop_thread:
            _settle_future(future, error)  # committed by the loop itself: no wake-up needed
        else:
            loop.call_soon_threadsafe(_settle_future, future, error)

    if not desk.engine.on_commit(generation, done):
        return
    if not desk.commit_scheduled:
        desk.commit_scheduled = True
        loop.call_soon(_commit_group, desk, desk.engine.pending_steps, 0)
    await future


def _settle_future(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


GROUP_WAIT_TURNS = 2
"""A group commit waits at most this many more turns of the event loop while other requests' orders keep
joining it (bigger groups, fewer commits, a few hundred microseconds more for the first caller)."""


def _commit_group(desk: DeskService, steps: int, turns: int) -> None:
    if turns < GROUP_WAIT_TURNS and desk.engine.pending_steps > steps:
        asyncio.get_running_loop().call_soon(_commit_group, desk, desk.engine.pending_steps, turns + 1)
        return
    desk.commit_scheduled = False
    if desk.lock.acquire(blocking=False):
        try:
            _commit_quietly(desk)
        finally:
            desk.lock.release()
    else:  # an advance or a catch-up holds the engine: commit from a worker thread once it is free
        asyncio.get_running_loop().run_in_executor(None, _commit_quietly, desk)


def _commit_quietly(desk: DeskService) -> None:
    try:
        desk.engine.commit_pending()
    except Exception:  # the waiting callers got the error through their listeners
        logger.exception("the desk's group commit failed")


def _require_one(order_id: str | None, client_order_id: str | None) -> None:
    if (order_id is None) == (client_order_id is None):
        raise InvalidArgument.from_problems([Problem("$.order_id", "give exactly one of order_id and "
                                                                   "client_order_id")])


@tools.tool(scope="trade", title="Place an order")
async def place_order(args: PlaceOrderInput, ctx: CallContext) -> PlaceOrderOutput:
    """Place a paper order on the desk: market, limit, stop_market or stop_limit, with GTC/IOC/FOK, post-only
    and reduce-only. A market or marketable limit order walks the current book level by level at once (the
    fills come back with average price, fee and slippage); a resting limit fills later, only when the market
    trades through its price.

    Every order passes the risk checks and the control state first and leaves a decision-log entry; a refused
    order comes back with status `rejected` and reason codes (e.g. INSUFFICIENT_MARGIN, TRADING_PAUSED).
    Malformed orders (off-tick price, size off the lot, below the minimum notional) are errors naming the field.
    Repeat a client_order_id to get the first order back instead of a second one.
    """
    request = _request(args)
    context = _context(args, "tool:place_order")

    def work(desk: DeskService) -> tuple[PlaceOrderOutput | QuantdeskError, int | None]:
        engine = desk.engine
        try:
            result = engine.place_order(request, context, defer=True)
        except QuantdeskError as exc:  # a malformed order: its decision-log entry is in the group too
            return exc, engine.pending_generation
        return PlaceOrderOutput.model_validate({
            "order": result.order.to_dict(), "fills": [f.to_dict() for f in result.fills],
            "accepted": result.order.status != "rejected", "idempotent_replay": result.replayed,
            "data_source": engine.feed.data_source, "desk_time_ms": engine.now_ms}), engine.pending_generation

    output, generation = await on_desk(ctx, work, settle=False)
    await committed(ctx.services.get(DeskService), generation)
    if isinstance(output, QuantdeskError):
        raise output
    return output


def _request(args: PlaceOrderInput) -> OrderRequest:
    return OrderRequest(args.symbol, args.side, args.order_type, args.quantity, args.price, args.stop_price,
                        args.time_in_force, args.post_only, args.reduce_only, args.client_order_id)


def _context(args: PlaceOrderInput, source: str) -> IntentContext:
    return IntentContext(source=source, signal_id=args.signal_id,
                         agent_votes=tuple(Vote(v.agent_id, v.confidence, v.signal_id, v.direction)
                                           for v in args.agent_votes))


@tools.tool(scope="trade", title="Place several orders")
async def place_orders(args: PlaceOrdersInput, ctx: CallContext) -> PlaceOrdersOutput:
    """Place up to 100 paper orders in one call, in the order given, at one desk instant: each order is
    checked, logged and executed exactly as place_order would (a market order walks the book that the orders
    before it left), and each gets its own result. A malformed order is an error in its own result (with the
    field path, e.g. $.orders[2].price) and the others still go; a risk or control refusal is an order with
    status `rejected`. Use it for a ladder of limit orders or a rebalance: one call, one ledger transaction.
    client_order_id keeps every order idempotent, also against the same id earlier in the batch.
    """
    requests = [_request(order) for order in args.orders]
    contexts = [_context(order, "tool:place_orders") for order in args.orders]

    def work(desk: DeskService) -> tuple[PlaceOrdersOutput, int | None]:
        engine = desk.engine
        rows: list[dict[str, Any]] = []
        for index, result in enumerate(engine.place_orders(requests, contexts=contexts, defer=True)):
            if isinstance(result, QuantdeskError):
                problems = [{"path": f"$.orders[{index}]{p.path.removeprefix('$')}", "message": p.message}
                            for p in getattr(result, "problems", [])]
                rows.append({"index": index, "ok": False, "order": None, "fills": [], "accepted": False,
                             "idempotent_replay": False,
                             "error": {"kind": result.kind, "message": str(result), "problems": problems}})
            else:
                rows.append({"index": index, "ok": True, "order": result.order.to_dict(),
                             "fills": [f.to_dict() for f in result.fills],
                             "accepted": result.order.status != "rejected", "idempotent_replay": result.replayed,
                             "error": None})
        accepted = sum(1 for r in rows if r["accepted"])
        errors = sum(1 for r in rows if not r["ok"])
        return PlaceOrdersOutput.model_validate({
            "results": rows, "accepted": accepted, "rejected": len(rows) - accepted - errors, "errors": errors,
            "data_source": engine.feed.data_source, "desk_time_ms": engine.now_ms}), engine.pending_generation

    output, generation = await on_desk(ctx, work, settle=False)
    await committed(ctx.services.get(DeskService), generation)
    return output


@tools.tool(scope="trade", title="Cancel an order", destructive=True)
async def cancel_order(args: OrderRef, ctx: CallContext) -> OrderOutput:
    """Cancel one open order (or untriggered stop) by order_id or client_order_id and return it as cancelled.

    Cancels always go through, whatever the control state. Cancelling an order that is already filled,
    cancelled, rejected or expired is an error that says so; an unknown id is not found.
    """
    _require_one(args.order_id, args.client_order_id)
    order = await on_desk(ctx, lambda desk: desk.engine.cancel_order(args.order_id, args.client_order_id))
    return OrderOutput.model_validate({"order": order.to_dict()})


@tools.tool(scope="read", title="Get an order", read_only=True, idempotent=True)
async def get_order(args: OrderRef, ctx: CallContext) -> OrderOutput:
    """Return one order by order_id or client_order_id, with its status, fills so far, fees and reasons."""
    _require_one(args.order_id, args.client_order_id)
    order = await on_desk(ctx, lambda desk: desk.engine.find_order(args.order_id, args.client_order_id))
    return OrderOutput.model_validate({"order": order.to_dict()})


@tools.tool(scope="read", title="List orders", read_only=True, idempotent=True)
async def list_orders(args: ListOrdersInput, ctx: CallContext) -> OrdersOutput:
    """List the desk's orders, newest first: open ones by default, or all, filled, cancelled, rejected or
    expired, filtered by symbol and creation time."""
    statuses = {"open": ["pending_trigger", "open", "partially_filled"], "all": None}.get(args.status, [args.status])

    def work(desk: DeskService) -> OrdersOutput:
        engine = desk.engine
        if args.status == "open":
            orders = [o for o in reversed(engine.open_orders.values())
                      if (args.symbol is None or o.symbol == args.symbol)
                      and (args.since_ms is None or o.created_ms >= args.since_ms)
                      and (args.until_ms is None or o.created_ms <= args.until_ms)][:args.limit]
        else:
            orders = engine.ledger.list_orders(statuses=statuses, symbol=args.symbol, since_ms=args.since_ms,
                                               until_ms=args.until_ms, limit=args.limit)
        return OrdersOutput.model_validate({"orders": [o.to_dict() for o in orders], "count": len(orders)})

    return await on_desk(ctx, work)


@tools.tool(scope="read", title="List fills", read_only=True, idempotent=True)
async def list_fills(args: ListFillsInput, ctx: CallContext) -> FillsOutput:
    """List fills, newest first, with price, quantity, maker/taker/liquidation, fee in USDT, slippage in bps
    against the price the order met, and realized P&L; filter by symbol, order, liquidity and time."""
    fills = await on_desk(ctx, lambda desk: desk.engine.ledger.list_fills(
        symbol=args.symbol, order_id=args.order_id, since_ms=args.since_ms, until_ms=args.until_ms,
        liquidity=args.liquidity, limit=args.limit))
    return FillsOutput.model_validate({"fills": [f.to_dict() for f in fills], "count": len(fills)})


@tools.tool(scope="read", title="Positions", read_only=True, idempotent=True)
async def get_positions(args: PositionsInput, ctx: CallContext) -> PositionsOutput:
    """List perpetual positions with size, entry and mark price, unrealized and realized P&L, fees, funding,
    margin mode, leverage, margins and liquidation price. Spot holdings are in get_balances."""

    def work(desk: DeskService) -> PositionsOutput:
        engine = desk.engine
        engine.sync()
        rows = [engine.describe_position(p) for s, p in engine.positions.items()
                if (args.symbol is None or s == args.symbol) and (args.include_flat or p.size != 0.0)]
        return PositionsOutput.model_validate({"positions": rows, "desk_time_ms": engine.now_ms})

    return await on_desk(ctx, work)


@tools.tool(scope="read", title="Balances", read_only=True, idempotent=True)
async def get_balances(args: NoArguments, ctx: CallContext) -> BalancesOutput:
    """Balances per asset (USDT, BTC, ETH): total, locked by open orders and margin, and available."""
    from quantdesk.tools.desk.views import balances

    def work(desk: DeskService) -> BalancesOutput:
        desk.engine.sync()
        return BalancesOutput.model_validate({"balances": balances(desk.engine), "desk_time_ms": desk.engine.now_ms})

    return await on_desk(ctx, work)


@tools.tool(scope="read", title="Account summary", read_only=True, idempotent=True)
async def get_account_summary(args: NoArguments, ctx: CallContext) -> AccountSummaryOutput:
    """The account at a glance: equity, wallet, available margin, unrealized and realized P&L, fees, funding,
    gross and net exposure, leverage, margins, peak equity, drawdown and today's P&L."""
    from quantdesk.tools.desk.views import account_summary

    def work(desk: DeskService) -> AccountSummaryOutput:
        desk.engine.sync()
        return AccountSummaryOutput.model_validate(account_summary(desk.engine))

    return await on_desk(ctx, work)


def _settings_output(desk: DeskService, symbol: str) -> SymbolSettingsOutput:
    engine = desk.engine
    position = engine.peek_position(symbol)
    return SymbolSettingsOutput.model_validate({"symbol": symbol, "leverage": position.leverage,
                                                "margin_mode": position.margin_mode,
                                                "position": engine.describe_position(position)})


@tools.tool(scope="trade", title="Set leverage", idempotent=True)
async def set_leverage(args: LeverageInput, ctx: CallContext) -> SymbolSettingsOutput:
    """Set a perpetual's leverage (1 up to the instrument's maximum): it sets the initial margin of new orders
    and of a cross position. Refused when a cross position would then need more margin than is available."""

    def work(desk: DeskService) -> SymbolSettingsOutput:
        desk.engine.set_leverage(args.symbol, args.leverage)
        return _settings_output(desk, args.symbol)

    return await on_desk(ctx, work)


@tools.tool(scope="trade", title="Set margin mode", idempotent=True)
async def set_margin_mode(args: MarginModeInput, ctx: CallContext) -> SymbolSettingsOutput:
    """Set a perpetual's margin mode: cross (the USDT balance backs every cross position together) or isolated
    (each position risks only its own margin). Only while the symbol has no position and no open order."""

    def work(desk: DeskService) -> SymbolSettingsOutput:
        desk.engine.set_margin_mode(args.symbol, args.margin_mode)
        return _settings_output(desk, args.symbol)

    return await on_desk(ctx, work)


@tools.tool(scope="read", title="Quote", read_only=True, idempotent=True)
async def get_quote(args: QuoteInput, ctx: CallContext) -> QuoteOutput:
    """The market of one symbol now: last trade, mark and index price, best bid and ask, spread, and for
    perpetuals the last and predicted funding rate and the next funding time."""
    from quantdesk.tools.desk.views import quote

    def work(desk: DeskService) -> QuoteOutput:
        desk.engine.sync()
        return QuoteOutput.model_validate(quote(desk.engine, args.symbol))

    return await on_desk(ctx, work)


@tools.tool(scope="read", title="Order book", read_only=True, idempotent=True)
async def get_order_book(args: BookInput, ctx: CallContext) -> BookOutput:
    """The L2 book of one symbol as the desk's orders meet it: price and size per level, best first."""
    from quantdesk.tools.desk.views import order_book

    def work(desk: DeskService) -> BookOutput:
        desk.engine.sync()
        return BookOutput.model_validate(order_book(desk.engine, args.symbol, args.depth))

    return await on_desk(ctx, work)


@tools.tool(scope="read", title="Instruments", read_only=True, idempotent=True)
async def list_instruments(args: NoArguments, ctx: CallContext) -> InstrumentsOutput:
    """The desk's instruments with tick size, lot size, minimum notional, maker and taker fees, maximum
    leverage, maintenance margin rate and funding rules, each saying where its figures come from."""
    desk = ctx.services.get(DeskService)
    return InstrumentsOutput.model_validate({"instruments": [i.describe() for i in
                                                             desk.engine.instruments.instruments]})


@tools.tool(scope="trade", title="Advance the simulated clock")
async def advance_clock(args: AdvanceInput, ctx: CallContext) -> AdvanceOutput:
    """Move the desk's simulated clock forward (by `seconds` or to `until_ms`, at most 31 days a call),
    processing in order every book and trade, resting-order fill, stop trigger, funding payment,
    liquidation and equity sample in between. Only on a desk started with a simulated clock; the result
    counts what happened. Same seed and same calls give the same fills.
    """
    if (args.seconds is None) == (args.until_ms is None):
        raise InvalidArgument.from_problems([Problem("$.seconds", "give exactly one of seconds and until_ms")])

    def work(desk: DeskService) -> AdvanceOutput:
        engine = desk.engine
        target = args.until_ms if args.until_ms is not None else engine.now_ms + round((args.seconds or 0) * 1000)
        report = engine.advance(target)
        return AdvanceOutput(from_ms=report.from_ms, to_ms=report.to_ms, market_events=report.market_events,
                             fills=report.fills, liquidations=report.liquidations,
                             funding_settlements=report.funding_settlements, equity_samples=report.equity_samples,
                             interrupted=report.interrupted, equity_usd=engine.account().equity_usd)

    desk = ctx.services.get(DeskService)

    def locked() -> AdvanceOutput:
        with desk.lock:
            return work(desk)

    # an advance can process days of market: always off the event loop
    return await anyio.to_thread.run_sync(locked)


@tools.tool(scope="read", title="Desk status", read_only=True, idempotent=True)
async def get_desk_status(args: NoArguments, ctx: CallContext) -> DeskStatusOutput:
    """How the desk runs: real or simulated clock and its time, the market feed (synthetic from a seed, or a
    replayed file) with its details, the symbols, open orders and the equity sampling interval."""

    def work(desk: DeskService) -> DeskStatusOutput:
        engine = desk.engine
        engine.sync()
        feed = engine.feed
        return DeskStatusOutput.model_validate({
            "clock": engine.clock.mode, "desk_time_ms": engine.now_ms,
            "desk_time": datetime.fromtimestamp(engine.now_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"), "origin_ms": engine.origin_ms, "feed": feed.describe(),
            "data_source": feed.data_source, "symbols": list(engine.instruments.by_symbol),
            "open_orders": len(engine.open_orders), "equity_sample_seconds": engine.config.equity_sample_seconds})

    return await on_desk(ctx, work)


@tools.tool(scope="read", title="Equity series", read_only=True, idempotent=True)
async def get_equity_series(args: EquityInput, ctx: CallContext) -> EquityOutput:
    """The account's equity sampled on the desk clock (every equity_sample_seconds), oldest first, with
    wallet, unrealized P&L, spot value, exposure and drawdown: the series risk metrics are computed on."""
    samples = await on_desk(ctx, lambda desk: desk.engine.ledger.list_equity(
        since_ms=args.since_ms, until_ms=args.until_ms, limit=args.limit))
    interval = ctx.services.get(DeskService).engine.config.equity_sample_seconds
    return EquityOutput.model_validate({"samples": [s.to_dict() for s in samples], "count": len(samples),
                                        "sample_interval_seconds": interval})


@tools.tool(scope="read", title="Funding payments", read_only=True, idempotent=True)
async def list_funding_payments(args: FundingInput, ctx: CallContext) -> FundingOutput:
    """Funding settlements of the perpetuals, newest first: rate (positive: longs pay shorts), averaged
    premium, mark price, the position then and the payment (negative: paid)."""
    rows = await on_desk(ctx, lambda desk: desk.engine.ledger.list_funding(
        symbol=args.symbol, since_ms=args.since_ms, until_ms=args.until_ms, only_payments=args.only_payments,
        limit=args.limit))
    return FundingOutput.model_validate({"payments": [r.to_dict() for r in rows], "count": len(rows)})


@tools.tool(scope="read", title="Desk health", read_only=True, idempotent=True)
async def get_desk_health(args: NoArguments, ctx: CallContext) -> DeskHealthOutput:
    """Health of the desk's parts as booleans: engine, ledger store, market feed, control store, event bus and
    the real-clock runner; status is `ok` when all are, else `degraded`."""
    return DeskHealthOutput.model_validate(ctx.services.get(DeskService).health())


tools.metrics("quantdesk", lambda services: services.get(DeskService).metrics(),
              labels={"order_rejections_total": "code", "fills_by_liquidity_total": "liquidity",
                      "kill_switch_trips_by_actor_total": "actor"})
