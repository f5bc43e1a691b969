"""Shared manifests and the invariant checker of the market engine tests."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.schemas.manifest import SimulationManifest


@pytest.fixture
def busy_manifest() -> SimulationManifest:
    """15 simulated minutes that span four row-group units (1000 trades/s, 5 book levels)."""
    return SimulationManifest(duration_seconds=900, trade_rate_per_second=1000.0, num_levels=5, seed=7)


@pytest.fixture
def short_manifest() -> SimulationManifest:
    """Ten minutes of the default market."""
    return SimulationManifest(duration_seconds=600, seed=3)


def _on_grid(values: np.ndarray, step: float) -> bool:
    """Every value is the float of `count * step` written as a decimal string."""
    step_decimal = Decimal(repr(step))
    counts = np.rint(values / step)
    return all(float(Decimal(int(c)) * step_decimal) == v for c, v in zip(counts.tolist(), values.tolist(),
                                                                           strict=True))


def check_invariants(table: pa.Table, manifest: SimulationManifest) -> None:
    """Schema, order, book shape, grids, latency and trades consistent with the book in force."""
    assert table.schema.equals(EVENT_SCHEMA, check_metadata=True)
    kind = table.column("event_type").combine_chunks().indices.to_numpy()
    is_book = kind == 1
    ts = table.column("timestamp_ms").to_numpy()
    assert np.all(np.diff(ts) >= 0)
    same_ms = np.diff(ts) == 0
    assert not np.any(same_ms & ~is_book[:-1] & is_book[1:]), "a book follows a trade at the same ms"
    assert np.all(table.column("capture_time_ms").to_numpy() >= ts)
    for name in ("exchange",):
        assert pc.all(pc.equal(table.column(name).cast(pa.string()), "synthetic")).as_py()
    for name in ("symbol", "raw_symbol"):
        assert pc.all(pc.equal(table.column(name).cast(pa.string()), manifest.symbol)).as_py()

    books = table.filter(pa.array(is_book))
    levels = manifest.num_levels
    bid_price = pc.list_flatten(books.column("bids")).combine_chunks().field("price").to_numpy().reshape(-1, levels)
    ask_price = pc.list_flatten(books.column("asks")).combine_chunks().field("price").to_numpy().reshape(-1, levels)
    bid_size = pc.list_flatten(books.column("bids")).combine_chunks().field("size").to_numpy().reshape(-1, levels)
    ask_size = pc.list_flatten(books.column("asks")).combine_chunks().field("size").to_numpy().reshape(-1, levels)
    best_bid, best_ask = books.column("best_bid").to_numpy(), books.column("best_ask").to_numpy()
    assert np.all(best_bid < best_ask)
    assert np.all(best_ask - best_bid >= manifest.tick_size * (1 - 1e-9))
    assert np.array_equal(bid_price[:, 0], best_bid) and np.array_equal(ask_price[:, 0], best_ask)
    assert np.all(np.diff(bid_price, axis=1) < 0) and np.all(np.diff(ask_price, axis=1) > 0)
    assert np.all(bid_price > 0) and np.all(bid_size > 0) and np.all(ask_size > 0)
    sample = slice(None, None, max(1, books.num_rows // 200))
    for prices in (bid_price[sample], ask_price[sample]):
        assert _on_grid(prices.ravel(), manifest.tick_size)
    for sizes in (bid_size[sample], ask_size[sample]):
        assert _on_grid(sizes.ravel(), manifest.lot_size)
    mid = books.column("mid_price").to_numpy()
    assert np.allclose(mid, (best_bid + best_ask) / 2, rtol=0, atol=1e-9 * mid.max())
    assert np.allclose(books.column("spread_bps").to_numpy(), (best_ask - best_bid) / mid * 1e4)
    assert pc.all(books.column("is_snapshot")).as_py() and not pc.any(books.column("gap")).as_py()
    assert np.all(books.column("depth").to_numpy() == 2 * levels)

    trades = table.filter(pa.array(~is_book))
    price, size = trades.column("price").to_numpy(), trades.column("size").to_numpy()
    assert np.all(size >= manifest.lot_size * (1 - 1e-12))
    assert _on_grid(price[::max(1, price.size // 500)], manifest.tick_size)
    assert _on_grid(size[::max(1, size.size // 500)], manifest.lot_size)
    assert np.allclose(trades.column("notional_usd").to_numpy(), price * size)
    ids = trades.column("trade_id").to_pylist()
    assert len(set(ids)) == len(ids) and all(i.isdigit() for i in ids)
    # the book in force is the last book row before the trade
    book_index = np.cumsum(is_book) - 1
    in_force = book_index[~is_book]
    assert np.all(in_force >= 0), "a trade before any book"
    buy = pc.equal(trades.column("side").cast(pa.string()), "buy").to_numpy(zero_copy_only=False)
    assert np.all(price[buy] >= best_ask[in_force[buy]]) and np.all(price[buy] <= ask_price[in_force[buy], -1])
    assert np.all(price[~buy] <= best_bid[in_force[~buy]]) and np.all(price[~buy] >= bid_price[in_force[~buy], -1])
    on_level = np.where(buy[:, None], ask_price[in_force], bid_price[in_force]) == price[:, None]
    assert np.all(on_level.any(axis=1)), "a trade printed between the book's levels"


@pytest.fixture(scope="session")
def invariants() -> Callable[[pa.Table, SimulationManifest], None]:
    """The invariant checker, as a fixture (tests are not a package)."""
    return check_invariants
