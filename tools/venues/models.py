"""The shape of `venues.json`: venue details where every figure carries its source, date and verification.

A figure is a `Sourced[T]`: the value plus where it comes from (`source`), when it was taken
(`as_of`), what kind of evidence backs it (`evidence`, the markers of shared/spec/marketdata.md)
and whether it counts as verified. The same models are the output of `get_venue_details`, whose
advertised schema is compacted by `schema.py` (provenance said once, nested detail in a line).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import DEFAULT_REF_TEMPLATE, GenerateJsonSchema, JsonSchemaMode

from quantdesk.tools.venues.schema import shared_figures

T = TypeVar("T")

Evidence = Literal["doc", "code", "2nd", "spec", "unverified", "proposal"]
VERIFYING_EVIDENCE: frozenset[str] = frozenset({"doc", "code", "2nd", "spec"})

FormulaKind = Literal[
    "premium_plus_clamped_interest",
    "premium_minus_interest",
    "premium_plus_interest",
    "basis_carry",
]
Averaging = Literal["linear_twap", "mean", "trimmed_mean"]
ReferencePrice = Literal["mark", "oracle", "index"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sourced(_Frozen, Generic[T]):
    """One figure with its provenance."""

    value: T = Field(description="The figure itself; null when the venue has none or it was not found.")
    source: str = Field(description="Where the figure comes from (venue doc, code path, secondary page, or the spec).")
    as_of: date = Field(description="Date the figure was recorded from its source into this data file.")
    evidence: Evidence = Field(
        description=(
            "doc = venue documentation; code = a public repository; 2nd = secondary page; spec = stated by the "
            "reference spec without a per-value marker; unverified = believed, not confirmed; proposal = our "
            "modelling choice, not a venue fact."
        )
    )
    verified: bool = Field(description="False for unverified figures and proposals: treat those as defaults only.")
    note: str | None = Field(default=None, description="Caveats, conflicts or how the figure was derived.")

    @model_validator(mode="after")
    def _verified_needs_evidence(self) -> Sourced[T]:
        if self.verified and self.evidence not in VERIFYING_EVIDENCE:
            raise ValueError(f"a figure marked '{self.evidence}' cannot be verified")
        return self


class SymbolFormat(_Frozen):
    """How one product type is spelled at the venue and in quantdesk's canonical form."""

    product: Literal["spot", "perpetual", "dated_future"]
    raw_pattern: str = Field(description="The venue's spelling, as a pattern.")
    raw_example: str
    canonical_example: str = Field(description="quantdesk form: BASE-QUOTE, BASE-QUOTE-PERP or BASE-QUOTE-YYMMDD.")


class Fees(_Frozen):
    """Base-tier maker/taker fees in basis points; null where the venue charges per contract or none is known."""

    perp_maker_bps: float | None
    perp_taker_bps: float | None
    spot_maker_bps: float | None
    spot_taker_bps: float | None


class Session(_Frozen):
    name: str
    opens: str = Field(description="Local time HH:MM in the venue's time zone.")
    closes: str = Field(description="Local time HH:MM; earlier than `opens` when the session runs past midnight.")
    days: str


class TradingHours(_Frozen):
    always_open: bool = Field(description="True for 24/7 venues.")
    timezone: str = Field(description="IANA time zone of the session times.")
    sessions: list[Session]


class BookSync(_Frozen):
    method: Literal[
        "rest_snapshot_plus_diffs",
        "snapshot_plus_deltas_with_checksum",
        "snapshot_plus_deltas",
        "full_snapshots",
        "level_indexed_incremental",
        "itch_order_book",
    ]
    continuity_rule: str = Field(description="How a gap is detected and what resynchronises the book.")


class Endpoints(_Frozen):
    websocket: list[str]
    rest: list[str]


class ContractProduct(_Frozen):
    code: str
    unit_base: float = Field(gt=0, description="Base units (BTC) per contract.")


class InverseContracts(_Frozen):
    """Coin-margined (inverse) contracts: each is worth a fixed USD amount, so base = contracts x usd / price."""

    default_usd: float = Field(gt=0, description="USD value of one contract unless the base is listed.")
    by_base_usd: dict[str, float] = Field(description="USD value of one contract by base currency (BTC: 100).")

    def usd_per_contract(self, base: str) -> float:
        return self.by_base_usd.get(base, self.default_usd)


class DatedContracts(_Frozen):
    """Expiring futures: products, month codes and the expiry rule the carry model uses."""

    products: list[ContractProduct]
    month_codes: str = Field(description="Futures month letters, January first.")
    expiry_rule: Literal["last_friday_16_00_london"]
    settlement: str


class RateCap(_Frozen):
    """A symmetric cap |rate| <= rate, stated for a rate quoted per `basis_hours`."""

    rate: float = Field(gt=0)
    basis_hours: float = Field(gt=0)


class MarginFractions(_Frozen):
    initial: float = Field(gt=0, lt=1)
    maintenance: float = Field(gt=0, lt=1)


class FundingSpec(_Frozen):
    """Everything the funding engine needs about one venue, each figure sourced."""

    model: Literal["perpetual_funding", "basis_carry"]
    formula_text: str = Field(description="The formula in words, for people and language models.")
    interval_hours: Sourced[float] = Field(description="Hours between funding payments (carry accrual period for cme).")
    schedule_anchor_utc_hour: Sourced[int] = Field(description="UTC hour of the day's first funding time.")
    formula: Sourced[FormulaKind]
    rate_basis_hours: Sourced[float] = Field(description="Horizon the formula's rate is quoted for (8 h on most).")
    interest_rate: Sourced[float] = Field(description="Interest component I per rate_basis_hours.")
    interest_band: Sourced[float | None] = Field(description="Half-width d of clamp(I - P, -d, d); null if none.")
    cap: Sourced[RateCap | None]
    premium_sample_seconds: Sourced[float]
    premium_averaging: Sourced[Averaging]
    premium_trim_ratio: Sourced[float] | None = Field(
        default=None, description="Share of sorted samples removed from each tail before the mean (trimmed_mean)."
    )
    premium_sample_clamp: Sourced[float] | None = Field(default=None, description="|sample| clamp before averaging.")
    margin_fractions: Sourced[MarginFractions] | None = None
    reference_price: Sourced[ReferencePrice] = Field(description="Price the payment is computed on.")
    impact_notional_usd: Sourced[float | None]

    @model_validator(mode="after")
    def _consistent(self) -> FundingSpec:
        interval = self.interval_hours.value
        samples = interval * 3600.0 / self.premium_sample_seconds.value
        if interval <= 0 or samples < 1 or abs(samples - round(samples)) > 1e-9:
            raise ValueError("interval_hours must be a positive whole number of premium samples")
        if 24.0 % interval != 0:
            raise ValueError("interval_hours must divide the day so that the schedule repeats daily")
        if not 0 <= self.schedule_anchor_utc_hour.value < 24:
            raise ValueError("schedule_anchor_utc_hour must be within 0..23")
        if (self.model == "basis_carry") != (self.formula.value == "basis_carry"):
            raise ValueError("model basis_carry goes with formula basis_carry and only with it")
        if self.premium_averaging.value == "trimmed_mean" and self.premium_trim_ratio is None:
            raise ValueError("trimmed_mean needs premium_trim_ratio")
        if self.premium_trim_ratio is not None and not 0 <= self.premium_trim_ratio.value < 0.5:
            raise ValueError("premium_trim_ratio must be within [0, 0.5)")
        return self


class VenueDetails(_Frozen):
    """One venue's details as `get_venue_details` returns them."""

    exchange: str = Field(description="quantdesk's venue id, lowercase.")
    name: str
    venue_type: Literal["centralized_exchange", "decentralized_exchange", "regulated_futures_exchange"]
    products: list[Literal["spot", "perpetual", "dated_future"]]
    symbols: list[Sourced[SymbolFormat]] = Field(description="Venue symbol formats with canonical equivalents.")
    tick_size_usd: Sourced[float | None] = Field(description="BTC price increment in USD (or USDT/USDC).")
    lot_size_base: Sourced[float | None] = Field(description="Smallest BTC quantity step, in BTC.")
    contract_size_base: Sourced[float | None] = Field(
        description="BTC per contract where orders are in contracts; null where quantities are in BTC."
    )
    min_notional_usd: Sourced[float | None]
    fees: Sourced[Fees]
    max_leverage: Sourced[float | None]
    trading_hours: Sourced[TradingHours]
    book_sync: Sourced[BookSync | None] = Field(description="How a local L2 book is kept in sync with the feed.")
    endpoints: Sourced[Endpoints]
    dated_contracts: Sourced[DatedContracts] | None = None
    inverse_contracts: Sourced[InverseContracts] | None = Field(
        default=None, description="Coin-margined contracts (Binance COIN-M): USD per contract, by base.")
    funding: FundingSpec
    normalize_messages: list[str] = Field(
        default_factory=list,
        description="Message types normalize_events accepts for this venue (filled in by the tool, not the file).",
    )


    @classmethod
    def model_json_schema(cls, by_alias: bool | None = None, ref_template: str = DEFAULT_REF_TEMPLATE,
                          schema_generator: type[GenerateJsonSchema] = GenerateJsonSchema,
                          mode: JsonSchemaMode = "validation", *,
                          union_format: Literal["any_of", "primitive_type_array"] = "any_of") -> dict[str, Any]:
        # `["number", "null"]` rather than an anyOf of two schemas: the same meaning, a third of the bytes
        schema = super().model_json_schema(by_alias, ref_template, schema_generator, mode,
                                           union_format="primitive_type_array")
        return shared_figures(schema)


class VenueFile(_Frozen):
    """The root of `venues.json`."""

    schema_version: Literal[1]
    about: str
    as_of: date = Field(description="Date of the newest figure in the file.")
    venues: dict[str, VenueDetails]

    @model_validator(mode="after")
    def _keys_match(self) -> VenueFile:
        for key, venue in self.venues.items():
            if key != venue.exchange:
                raise ValueError(f"venue key {key!r} differs from its exchange {venue.exchange!r}")
        return self
