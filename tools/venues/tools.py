"""Venue details: symbol formats, tick and lot, fees, funding, hours, book sync, from the dated data file."""

from __future__ import annotations

from pydantic import Field

from quantdesk.server.registry import CallContext, ToolInput, ToolOutput, ToolSet
from quantdesk.server.resources import Listing
from quantdesk.tools.normalize import SOURCES, accepted_messages
from quantdesk.tools.venues.catalog import get_venue, list_venues, load_venue_file
from quantdesk.tools.venues.models import VenueDetails

tools = ToolSet("venues")


class VenueInput(ToolInput):
    exchange: str = Field(min_length=1, max_length=32,
                          description="binance, okx, bybit, hyperliquid, cme, sgx or dydx (case-insensitive).")


class VenueListInput(ToolInput):
    pass


class VenueList(ToolOutput):
    venues: list[str]
    as_of: str = Field(description="Date of the newest figure in the venue data file.")


@tools.tool(scope="read", title="Venue details", read_only=True, idempotent=True)
async def get_venue_details(args: VenueInput, ctx: CallContext) -> VenueDetails:
    """Details of one trading venue: symbol formats and their canonical quantdesk forms, tick and lot size,
    fees, funding interval and caps, maximum leverage, trading hours and sessions, book sync method, endpoints,
    and which messages normalize_events accepts. Every figure carries its source, an as_of date and whether
    it is verified; unverified values say so."""
    venue = get_venue(args.exchange)
    messages = accepted_messages(venue.exchange) if venue.exchange in SOURCES else []
    return venue.model_copy(update={"normalize_messages": messages})


@tools.tool(scope="read", title="Known venues", read_only=True, idempotent=True)
async def list_venue_ids(args: VenueListInput, ctx: CallContext) -> VenueList:
    """List the venues get_venue_details knows, and the date of the venue data."""
    return VenueList(venues=list_venues(), as_of=load_venue_file().as_of.isoformat())


tools.resource("quantdesk://venues/{exchange}", tool="get_venue_details", name="venue", title="Venue details",
               description="One venue's dated figures: symbols, tick and lot, fees, funding rules, leverage, hours, "
                           "book sync and the messages normalize_events accepts, each with its source.",
               listing=Listing("list_venue_ids", lambda out: [{"exchange": v} for v in out["venues"]]))
