"""Venue symbols to canonical symbols: `BASE-QUOTE` (spot), `BASE-QUOTE-PERP`, `BASE-QUOTE-YYMMDD` (dated).

Every function raises `MessageError("unknown_symbol", ...)` for a symbol it cannot map, rather
than guessing. Results are cached: a feed repeats a handful of symbols millions of times.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from functools import lru_cache
from typing import Literal

from quantdesk.tools.normalize.outcomes import MessageError

Kind = Literal["spot", "perp", "dated"]
BinanceMarket = Literal["spot", "usdm", "coinm"]

# Longest first, so that BTCUSDT is BTC/USDT and not BTCU/SDT.
_QUOTES = tuple(sorted(
    ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USDP", "DAI", "USD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY",
     "GBP", "AUD", "UAH", "RUB", "ZAR", "PLN", "RON", "ARS", "MXN", "COP", "CZK", "BIDR", "IDR", "XRP", "DOGE",
     "TRX", "DOT", "SOL"), key=len, reverse=True))
_ALNUM = re.compile(r"^[A-Z0-9]+$")
_CANONICAL = re.compile(r"^([A-Z0-9]+)-([A-Z0-9]+)(?:-(PERP|\d{6}))?$")
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
CME_MONTH_CODES = {c: i + 1 for i, c in enumerate("FGHJKMNQUVXZ")}


def unknown(symbol: str, why: str) -> MessageError:
    return MessageError("unknown_symbol", f"the symbol cannot be mapped to a canonical one: {why}")


def canonical(base: str, quote: str, kind: Kind, expiry: dt.date | None = None) -> str:
    if kind == "spot":
        return f"{base}-{quote}"
    if kind == "perp":
        return f"{base}-{quote}-PERP"
    assert expiry is not None
    return f"{base}-{quote}-{expiry:%y%m%d}"


def parse_canonical(symbol: str) -> tuple[str, str, Kind] | None:
    """(base, quote, kind) of a canonical symbol, or None if `symbol` is not canonical."""
    m = _CANONICAL.match(symbol)
    if m is None:
        return None
    suffix = m.group(3)
    kind: Kind = "spot" if suffix is None else "perp" if suffix == "PERP" else "dated"
    return m.group(1), m.group(2), kind


@lru_cache(maxsize=4096)
def split_pair(raw: str) -> tuple[str, str]:
    """BASE, QUOTE of a concatenated pair such as `BTCUSDT` or `1000PEPEUSDT`."""
    if not _ALNUM.match(raw):
        raise unknown(raw, "not an upper-case alphanumeric pair")
    for quote in _QUOTES:
        if raw.endswith(quote) and len(raw) > len(quote):
            return raw[: -len(quote)], quote
    raise unknown(raw, "no known quote currency suffix")


@lru_cache(maxsize=4096)
def binance_symbol_market(raw: str) -> BinanceMarket | None:
    """The market a binance symbol names by itself: COIN-M for `BASEUSD_PERP` / `BASEUSD_YYMMDD` (quoted in USD),
    USD-M for `BASEUSDT_YYMMDD`; None for plain pairs, which spot and USD-M share."""
    pair, sep, _ = raw.partition("_")
    if not sep:
        return None
    try:
        return "coinm" if split_pair(pair)[1] == "USD" else "usdm"
    except MessageError:
        return None  # binance_symbol says what is wrong with it


@lru_cache(maxsize=4096)
def binance_symbol(raw: str, market: BinanceMarket) -> str:
    """`BTCUSDT` → `BTC-USDT` (spot) or `BTC-USDT-PERP` (USD-M); `BTCUSDT_250627` → `BTC-USDT-250627`;
    COIN-M `BTCUSD_PERP` → `BTC-USD-PERP`, `ETHUSD_210924` → `ETH-USD-210924`."""
    pair, sep, suffix = raw.partition("_")
    if sep:
        if market == "spot":
            raise unknown(raw, "spot symbols have no suffix")
        base, quote = split_pair(pair)
        if (quote == "USD") != (market == "coinm"):
            raise unknown(raw, "COIN-M contracts are quoted in USD, USD-M contracts in USDT or USDC")
        if suffix == "PERP" and market == "coinm":
            return canonical(base, quote, "perp")
        if not (len(suffix) == 6 and suffix.isdigit()):
            raise unknown(raw, "unknown contract suffix (expected PERP on COIN-M or YYMMDD)")
        return f"{base}-{quote}-{suffix}"
    if market == "coinm":
        raise unknown(raw, "COIN-M symbols are BASEUSD_PERP or BASEUSD_YYMMDD")
    base, quote = split_pair(raw)
    return canonical(base, quote, "perp" if market == "usdm" else "spot")


def binance_raw(symbol: str) -> tuple[str, BinanceMarket] | None:
    """The venue symbol and market of a canonical binance symbol (None if `symbol` is not canonical).

    A USD-quoted derivative is COIN-M (`BTC-USD-PERP` → `BTCUSD_PERP`); others are USD-M.
    """
    parsed = parse_canonical(symbol)
    if parsed is None:
        return None
    base, quote, kind = parsed
    if kind == "spot":
        return base + quote, "spot"
    market: BinanceMarket = "coinm" if quote == "USD" else "usdm"
    if kind == "perp":
        return (f"{base}{quote}_PERP", market) if market == "coinm" else (base + quote, market)
    return f"{base}{quote}_{symbol.rsplit('-', 1)[1]}", market


@lru_cache(maxsize=4096)
def okx_instrument(inst_id: str) -> tuple[str, Kind, str, str]:
    """(canonical, kind, base, quote) of an OKX instId: `BTC-USDT`, `BTC-USDT-SWAP`, `BTC-USD-250627`."""
    parts = inst_id.split("-")
    if len(parts) < 2 or not all(_ALNUM.match(p) for p in parts):
        raise unknown(inst_id, "not an OKX instrument id")
    base, quote = parts[0], parts[1]
    if len(parts) == 2:
        return canonical(base, quote, "spot"), "spot", base, quote
    if len(parts) == 3 and parts[2] == "SWAP":
        return canonical(base, quote, "perp"), "perp", base, quote
    if len(parts) == 3 and len(parts[2]) == 6 and parts[2].isdigit():
        return f"{base}-{quote}-{parts[2]}", "dated", base, quote
    raise unknown(inst_id, "options and other instrument types are not supported")


_BYBIT_DATED = re.compile(r"^([A-Z0-9]+?)(USDT|USDC)?-(\d{2})([A-Z]{3})(\d{2})$")


@lru_cache(maxsize=4096)
def bybit_symbol(raw: str, market: Literal["spot", "linear", "inverse"]) -> tuple[str, bool]:
    """(canonical, inverse) of a bybit symbol in a category; inverse sizes are USD contracts."""
    dated = _BYBIT_DATED.match(raw)
    if dated is not None:
        base, quote, day, mon, yy = dated.groups()
        if market == "spot" or mon not in _MONTHS:
            raise unknown(raw, "not a dated bybit contract")
        try:
            expiry = dt.date(2000 + int(yy), _MONTHS[mon], int(day))
        except ValueError:
            raise unknown(raw, "invalid expiry date") from None
        return canonical(base, quote or "USDC", "dated", expiry), False
    if market != "spot" and raw.endswith("PERP") and len(raw) > 4 and _ALNUM.match(raw):
        return canonical(raw[:-4], "USDC", "perp"), False  # bybit names USDC perpetuals BTCPERP
    base, quote = split_pair(raw)
    if market == "spot":
        return canonical(base, quote, "spot"), False
    inverse = quote == "USD"
    if market == "inverse" and not inverse:
        raise unknown(raw, "inverse contracts are quoted in USD")
    return canonical(base, quote, "perp"), inverse


@lru_cache(maxsize=4096)
def hyperliquid_symbol(coin: str) -> str:
    """`BTC` → `BTC-USD-PERP`; `kPEPE` (1000 PEPE) → `1000PEPE-USD-PERP`; `PURR/USDC` → `PURR-USDC`."""
    if "/" in coin:
        base, _, quote = coin.partition("/")
        if _ALNUM.match(base) and _ALNUM.match(quote):
            return canonical(base, quote, "spot")
        raise unknown(coin, "not a spot pair")
    if coin.startswith("@"):
        raise unknown(coin, "spot index symbols need the spotMeta table; send the pair name")
    if ":" in coin:
        raise unknown(coin, "HIP-3 builder perpetuals are not supported")
    if len(coin) > 1 and coin[0] == "k" and _ALNUM.match(coin[1:]):
        return canonical("1000" + coin[1:], "USD", "perp")
    if _ALNUM.match(coin):
        return canonical(coin, "USD", "perp")
    raise unknown(coin, "not a hyperliquid coin")


def last_friday(year: int, month: int) -> dt.date:
    last = dt.date(year, month, calendar.monthrange(year, month)[1])
    return last - dt.timedelta(days=(last.weekday() - calendar.FRIDAY) % 7)


_CME = re.compile(r"^([A-Z]{2,3})([FGHJKMNQUVXZ])(\d{1,2})$")


@lru_cache(maxsize=4096)
def cme_contract(raw: str, reference_year: int) -> tuple[str, str, dt.date]:
    """(root, month code, expiry) of `BTCZ5`; a one-digit year is the first match from the year before `reference_year`.

    Expiry is the last Friday of the contract month (CME bitcoin and ether futures); exchange
    holidays that move it to the business day before are not modelled.
    """
    m = _CME.match(raw)
    if m is None:
        raise unknown(raw, "not a CME futures symbol like BTCZ5")
    root, code, digits = m.groups()
    if len(digits) == 2:
        year = 2000 + int(digits)
    else:
        year = next(y for y in range(reference_year - 1, reference_year + 9) if y % 10 == int(digits))
    return root, code, last_friday(year, CME_MONTH_CODES[code])


@lru_cache(maxsize=4096)
def sgx_symbol(raw: str) -> str:
    """`BTC-PERP` → `BTC-USD-PERP` (SGX perpetuals settle in USD); canonical symbols pass through."""
    parsed = parse_canonical(raw)
    if parsed is not None and parsed[2] != "spot":
        return raw
    base, sep, rest = raw.partition("-")
    if sep and rest == "PERP" and _ALNUM.match(base):
        return canonical(base, "USD", "perp")
    raise unknown(raw, "expected BASE-PERP or a canonical derivative symbol")
