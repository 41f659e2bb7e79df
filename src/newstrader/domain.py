"""Venue-neutral value types. Every amount is a `Decimal`; a position's size is signed.

These types cross every border in the system (news → engine → venues → journal → web),
so they are small, immutable and free of venue knowledge.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)


def plain(value: Decimal) -> str:
    """A decimal as a person writes it: `3200`, `0.00000001`, never `3.2E+3` or `1E-8`."""
    return format(value, "f")


def utcnow() -> datetime:
    """Timezone-aware now; every timestamp in the system is UTC."""
    return datetime.now(UTC)


class Side(enum.StrEnum):
    """Direction of a signal or a position."""

    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is Side.LONG else -1

    @property
    def opposite(self) -> Side:
        return Side.SHORT if self is Side.LONG else Side.LONG

    @classmethod
    def of_size(cls, size: Decimal) -> Side | None:
        """The side a signed size stands for, or None when flat."""
        if size > 0:
            return cls.LONG
        if size < 0:
            return cls.SHORT
        return None


class OrderType(enum.StrEnum):
    MARKET = "market"  # sent as IOC with a slippage cap from the mark
    LIMIT = "limit"
    TRIGGER = "trigger"  # a reduce-only TP/SL resting on the venue (`Venue.place_triggers`)


class TimeInForce(enum.StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    POST_ONLY = "post_only"


class OrderStatus(enum.StrEnum):
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    RESTING = "resting"  # accepted, on the book or waiting for its trigger
    CANCELED = "canceled"
    REJECTED = "rejected"


class TriggerKind(enum.StrEnum):
    TAKE_PROFIT = "tp"
    STOP_LOSS = "sl"


class OutcomeStatus(enum.StrEnum):
    OK = "ok"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class NewsItem:
    """One message as it arrived, before any interpretation."""

    id: str
    title: str
    source: str = "unknown"
    body: str = ""
    url: str | None = None
    published_at: datetime | None = None  # the source's publication time, when it gives one
    received_at: datetime = field(default_factory=utcnow)
    # `time.monotonic()` when the edge (webhook handler, feed reader) got the bytes: where
    # the latency ledger starts. None: the pipeline stamps it on arrival.
    received_mono: float | None = None
    coin: str | None = None  # given directly by TradingView-style alerts
    side: Side | None = None

    @staticmethod
    def make_id(source: str, title: str, url: str | None = None) -> str:
        """A stable id for items that carry none, so a redelivery maps to the same orders."""
        digest = hashlib.sha256(f"{source}\n{url or ''}\n{title.strip()}".encode()).hexdigest()
        return f"n-{digest[:24]}"


@dataclass(slots=True)
class Signal:
    """A decision to hold `side` in `coin`, derived from one news item.

    Treated as immutable (nothing assigns to a signal's fields), but not `frozen=True`: a frozen
    dataclass sets each field through `object.__setattr__`, which made constructing one cost
    about 5 µs, a fifth of parsing a headline (bench/parser.py)."""

    id: str
    news_id: str
    coin: str
    side: Side
    confidence: float = 1.0
    terms: tuple[str, ...] = ()
    why: tuple[str, ...] = ()  # the parser's rules that made this signal (shown wherever it is)
    notional_usd: Decimal | None = None  # overrides the configured sizing when set
    leverage: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    source: str = "unknown"
    # The latency ledger's first stamps (stage, monotonic seconds): published, received, parsed.
    # Timing of this process only (not journaled), so not part of what the signal is.
    stamps: tuple[tuple[str, float], ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class Position:
    """What one venue holds in one coin. `size` > 0 long, < 0 short."""

    venue: str
    coin: str
    size: Decimal
    entry_price: Decimal = ZERO
    mark_price: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    leverage: int | None = None
    liquidation_price: Decimal | None = None

    @property
    def side(self) -> Side | None:
        return Side.of_size(self.size)

    @property
    def is_flat(self) -> bool:
        return self.size == 0


@dataclass(frozen=True, slots=True)
class Market:
    """Trading rules of one coin on one venue: the only place precision is decided."""

    coin: str
    symbol: str
    size_step: Decimal
    price_tick: Decimal
    min_notional: Decimal = ZERO
    max_leverage: int = 1
    max_price_sig_figs: int | None = None  # Hyperliquid: 5 significant figures
    asset_id: int | None = None
    min_size: Decimal = ZERO

    def round_size(self, size: Decimal) -> Decimal:
        """Round an absolute size down to the step: never trade more than asked."""
        steps = (abs(size) / self.size_step).to_integral_value(rounding=ROUND_DOWN)
        return (steps * self.size_step).quantize(self.size_step)

    def round_price(self, price: Decimal, *, up: bool | None = None) -> Decimal:
        """Round a price to the venue's rules; `up` True/False rounds away from/into the book."""
        rounding = ROUND_HALF_EVEN if up is None else (ROUND_CEILING if up else ROUND_FLOOR)
        if self.max_price_sig_figs is not None and price != price.to_integral_value():
            # Integers are always valid; otherwise keep at most N significant figures.
            exponent = min(price.adjusted() - self.max_price_sig_figs + 1, 0)
            price = price.quantize(Decimal(1).scaleb(exponent), rounding=rounding)
        ticks = (price / self.price_tick).to_integral_value(rounding=rounding)
        rounded = (ticks * self.price_tick).quantize(self.price_tick)
        # An integer as "10", never "1E+1" (normalize() would give the exponent form to str()).
        return rounded.quantize(Decimal(1)) if rounded == rounded.to_integral_value() else rounded

    def sell_price_floor(self, size: Decimal, price: Decimal) -> Decimal:
        """`price`, raised if need be so that `size` at it is worth `min_notional`.

        Aster values a limit order at its limit price (MIN_NOTIONAL: price × quantity), so a
        market sell capped below the mark can fall under the minimum that the mark clears;
        raising the cap only narrows the slippage allowed, never widens it."""
        if not self.min_notional or size <= 0 or price * size >= self.min_notional:
            return price
        return max(price, self.round_price(self.min_notional / size, up=True))


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order to send. `size` is positive; the direction is `is_buy`.

    `not_after` is the last instant the venue may accept the order (UTC). The engine sets it from
    the intent's journal time plus the venue's validity window, so an order whose send was held
    up (a paused process, a stalled limiter) is refused by the venue itself once the in-flight
    rule may have declared it never sent. None: the adapter's window starts at the send.
    """

    coin: str
    is_buy: bool
    size: Decimal
    client_id: str
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    reduce_only: bool = False
    tif: TimeInForce = TimeInForce.IOC
    max_slippage: Decimal = Decimal("0.05")
    not_after: datetime | None = None

    @property
    def signed_size(self) -> Decimal:
        return self.size if self.is_buy else -self.size


@dataclass(frozen=True, slots=True)
class OrderResult:
    """What the venue said about one order."""

    client_id: str | None
    status: OrderStatus
    venue_order_id: str | None = None
    filled_size: Decimal = ZERO  # absolute
    avg_price: Decimal | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not OrderStatus.REJECTED


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order resting on the venue, including trigger (TP/SL) orders."""

    coin: str
    venue_order_id: str
    is_buy: bool
    size: Decimal
    price: Decimal
    client_id: str | None = None
    reduce_only: bool = False
    trigger_price: Decimal | None = None
    trigger_kind: TriggerKind | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution reported by the venue, with the venue's own fee and realized PnL."""

    venue: str
    coin: str
    is_buy: bool
    size: Decimal
    price: Decimal
    fee: Decimal
    realized_pnl: Decimal
    time: datetime
    fill_id: str
    venue_order_id: str | None = None
    client_id: str | None = None


@dataclass(slots=True)
class LatencyLedger:
    """Monotonic-clock stamps (seconds) for each stage of one signal on one venue."""

    stamps: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str, at: float) -> None:
        self.stamps.setdefault(stage, at)

    def ms_between(self, start: str, end: str) -> float | None:
        if start in self.stamps and end in self.stamps:
            return (self.stamps[end] - self.stamps[start]) * 1000.0
        return None


@dataclass(slots=True)
class VenueOutcome:
    """The result of acting on one signal on one venue."""

    venue: str
    coin: str
    status: OutcomeStatus
    reason: str = ""
    exchange_size_before: Decimal | None = None
    cached_size_before: Decimal | None = None
    target_size: Decimal | None = None
    exchange_size_after: Decimal | None = None
    orders: list[OrderResult] = field(default_factory=list)
    latency: LatencyLedger = field(default_factory=LatencyLedger)
