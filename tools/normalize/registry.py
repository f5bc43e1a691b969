"""The sources `normalize_events` accepts: each one's parser, exchanges and accepted messages."""

from __future__ import annotations

from dataclasses import dataclass

from quantdesk.tools.normalize import binance, bybit, cme, hyperliquid, okx, sgx, synthetic
from quantdesk.tools.normalize.parser import VenueParser


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One source: its parser, the `exchange` values its events carry, its messages and markets."""

    name: str
    parser: type[VenueParser]
    exchanges: tuple[str, ...]
    messages: tuple[str, ...]
    markets: tuple[str, ...] = ()


SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        SourceSpec("binance", binance.BinanceParser, ("binance", "binance_futures"), binance.MESSAGES,
                   binance.BinanceParser.markets),
        SourceSpec("okx", okx.OkxParser, ("okx",), okx.MESSAGES),
        SourceSpec("bybit", bybit.BybitParser, ("bybit",), bybit.MESSAGES, bybit.BybitParser.markets),
        SourceSpec("hyperliquid", hyperliquid.HyperliquidParser, ("hyperliquid",), hyperliquid.MESSAGES),
        SourceSpec("cme", cme.CmeParser, ("cme",), cme.MESSAGES),
        SourceSpec("sgx", sgx.SgxParser, ("sgx",), sgx.MESSAGES),
        SourceSpec("synthetic", synthetic.SyntheticParser, (), synthetic.MESSAGES),
    )
}


class UnknownSourceError(ValueError):
    """The source is not one of `SOURCES`."""


def get_source(name: str) -> SourceSpec:
    try:
        return SOURCES[name]
    except KeyError:
        raise UnknownSourceError(f"unknown source {name!r}; known: {', '.join(SOURCES)}") from None


def accepted_messages(source: str) -> list[str]:
    """The venue messages `normalize_events` accepts for `source` (for the venue-details tool)."""
    return list(get_source(source).messages)
