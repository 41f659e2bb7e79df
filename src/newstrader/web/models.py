"""Request and response models of the bot's API. Amounts are Decimals, plain strings on the wire
(`3200`, never `3.2E+3`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from newstrader.domain import Signal, plain

PlainDecimal = Annotated[Decimal, PlainSerializer(plain, return_type=str, when_used="json")]


class Row(BaseModel):
    """One journal row; the known fields are typed, the rest pass through."""

    model_config = ConfigDict(extra="allow")


class SignalOut(BaseModel):
    id: str
    news_id: str
    coin: str
    side: str
    confidence: float = 1.0
    terms: list[str] = []
    why: list[str] = []  # the parser's rules behind the signal
    source: str = "unknown"
    created_at: datetime | None = None

    @classmethod
    def of(cls, signal: Signal | None) -> SignalOut | None:
        if signal is None:
            return None
        return cls(
            id=signal.id,
            news_id=signal.news_id,
            coin=signal.coin,
            side=str(signal.side),
            confidence=float(signal.confidence),
            terms=list(signal.terms),
            why=list(signal.why),
            source=signal.source,
            created_at=signal.created_at,
        )


class NewsAccepted(BaseModel):
    """The webhook's answer: the item is journaled and decided; a signal may still be executing."""

    news_id: str
    signal: SignalOut | None
    reason: str
    outcome: str = ""  # the pipeline's NewsOutcome: traded, ignored, skipped, duplicate, failed
    done: bool = Field(
        description="False while the signal executes: its per-venue outcomes then arrive on "
        "GET /api/signals/{id} and the stream (or in this answer, with ?wait)."
    )
    outcomes: list[Row] = Field(default=[], description="Per-venue outcomes, once done.")


class SignalView(BaseModel):
    """One signal with its per-venue outcomes; `done` once every venue has its outcome."""

    model_config = ConfigDict(extra="allow")
    id: str
    news_id: str
    coin: str
    side: str
    status: str
    reason: str = ""
    done: bool
    outcomes: list[Row]


class PositionRow(BaseModel):
    """One coin on one venue: what the exchange holds next to what we cached."""

    model_config = ConfigDict(extra="allow")
    venue: str
    coin: str
    exchange_size: PlainDecimal | None = None
    cached_size: PlainDecimal | None = None
    drift: bool = False
    entry_price: PlainDecimal | None = None
    mark_price: PlainDecimal | None = None
    unrealized_pnl: PlainDecimal | None = None
    take_profit: PlainDecimal | None = None
    stop_loss: PlainDecimal | None = None


class PositionsOut(BaseModel):
    paused: bool
    paused_reason: str | None = Field(default=None, description="Why: operator, flatten, the loss limit.")
    paused_since: str | None = Field(default=None, description="When it paused (ISO 8601, UTC).")
    positions: list[PositionRow]


class SignalsOut(BaseModel):
    signals: list[Row]


class NewsListOut(BaseModel):
    news: list[Row]


class OrdersOut(BaseModel):
    orders: list[Row]
    fills: list[Row]


class EventsOut(BaseModel):
    events: list[Row]


class PnlPoint(BaseModel):
    time: datetime
    venue: str
    realized_pnl: PlainDecimal = Field(description="Cumulative realized PnL net of fees, all venues.")


class StatsOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    paused: bool
    fills: int
    realized_pnl: PlainDecimal
    fees: PlainDecimal
    pnl_curve: list[PnlPoint]
    summary: dict[str, Any] = {}


class ControlOut(BaseModel):
    ok: bool
    action: str
    paused: bool
    detail: Any = None


class CloseIn(BaseModel):
    coin: str = Field(min_length=1, max_length=32)
    venue: str | None = None


class LoginIn(BaseModel):
    token: str = Field(min_length=1, max_length=512)


class Health(BaseModel):
    status: str
    time: datetime


class ErrorOut(BaseModel):
    detail: Any
