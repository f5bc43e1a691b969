"""The OKX order-book checksum.

OKX v5 (and the v3 docs before it): take the best 25 bids and asks, interleave them as
`bid1px:bid1sz:ask1px:ask1sz:bid2px:...` (a side that runs out is skipped), CRC32 the string and read
the result as a signed 32-bit integer. Prices and sizes are the venue's own strings. The documented
example: bids 3366.1/7, 3366/6 and asks 3366.8/9, 3368/8 give -1881014294.
"""

from __future__ import annotations

import zlib

from quantdesk.tools.normalize.book import PriceBook

CHECKSUM_LEVELS = 25


def okx_checksum_of(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """Signed CRC32 of the interleaved best `CHECKSUM_LEVELS` levels (each a (price, size) string pair)."""
    parts: list[str] = []
    for i in range(min(max(len(bids), len(asks)), CHECKSUM_LEVELS)):
        if i < len(bids):
            parts.extend(bids[i])
        if i < len(asks):
            parts.extend(asks[i])
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


def okx_book_checksum(book: PriceBook) -> int:
    """The checksum of a maintained book whose levels were stored with their text."""
    bids = [book.bid_text[p] for p in book.top_bid_prices(CHECKSUM_LEVELS)]
    asks = [book.ask_text[p] for p in book.top_ask_prices(CHECKSUM_LEVELS)]
    return okx_checksum_of(bids, asks)
