"""The one protocol every venue speaks, and the error classes the engine acts on.

The engine never imports a concrete venue: it sees `Venue` and these errors only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from newstrader.domain import Fill, Market, OpenOrder, OrderRequest, OrderResult, Position

if TYPE_CHECKING:
    from newstrader.venues.account import AccountStream

# Called once an order's request bytes are on the socket (see `Venue.send_order`). Named here, in
# the engine-facing contract, so the engine and every venue spell it alike; venues/written.py
# builds the httpcore trace that calls it.
OnWritten = Callable[[], None]


class VenueError(Exception):
    """Base of every error a venue adapter raises."""

    def __init__(self, message: str, *, venue: str = "", code: str | int | None = None) -> None:
        super().__init__(message)
        self.venue = venue
        self.code = code


class Transient(VenueError):
    """Timeout, 5xx or 429: nothing happened (or it is safe to ask again); retry later."""

    def __init__(
        self,
        message: str,
        *,
        venue: str = "",
        code: str | int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, venue=venue, code=code)
        self.retry_after = retry_after


class RateLimited(Transient):
    """The venue said 429 (or its address budget is spent)."""


class Expired(Transient):
    """The request reached the venue after its validity window (Hyperliquid `expiresAfter`, Aster's
    nonce / timestamp window) and was refused unexecuted. An order is never re-sent under the same
    intent: a new send is a new leg, journaled anew after a fresh read (and a fresh fencing check)."""


class Rejected(VenueError):
    """The venue refused the request on its merits (margin, min notional, reduce-only): do not retry."""


class AuthError(VenueError):
    """Bad key, signature or signer: stop trading on this venue and alert."""


class Ambiguous(VenueError):
    """The request was sent and its outcome is unknown: re-read the exchange before anything else."""


@dataclass(frozen=True, slots=True)
class PreparedOrder:
    """An order its venue has built and signed but not sent: only that venue's `send_order` sends
    it. `size` is the request's size rounded to the venue's step; `payload` is the venue's own."""

    request: OrderRequest
    size: Decimal
    payload: object


@runtime_checkable
class Venue(Protocol):
    """A perpetual-futures exchange seen through the few calls the engine needs."""

    name: str
    # Seconds during which an order may still reach the venue; later it is refused (Hyperliquid
    # `expiresAfter`, Aster's recvWindow / nonce window). The window starts at the order's intent
    # time (`OrderRequest.not_after` = intent time + this), not at the send: an order whose reply
    # was lost, or whose send was held up, and that the venue has not seen by then never executes,
    # so sending the missing size is safe.
    order_validity_s: float

    async def markets(self) -> dict[str, Market]:
        """Coin → trading rules (size step, price tick, min notional, max leverage)."""
        ...

    async def positions(self) -> dict[str, Position]:
        """A fresh read of the exchange's positions, never a cache. Flat coins are absent."""
        ...

    async def mark_price(self, coin: str) -> Decimal:
        """The venue's current mark (or mid) price of `coin`."""
        ...

    async def place_order(self, req: OrderRequest) -> OrderResult:
        """Send one order; market orders go as IOC limits capped by `req.max_slippage`.

        The venue is told to refuse it after `req.not_after` (when set; never later than the send
        plus `order_validity_s`); a refusal for that reason raises `Expired`."""
        ...

    async def prepare_order(self, req: OrderRequest) -> PreparedOrder:
        """`place_order`'s first half: the order built and signed and its rate budget taken, nothing
        sent. Errors here
        (`Rejected` for a size that rounds to zero, `Transient` for a market table that could not
        be loaded) mean the venue never saw it. The engine prepares while the order's intent is
        being written, so signing is not on the way between a durable intent and its bytes."""
        ...

    async def send_order(
        self, prepared: PreparedOrder, *, on_written: OnWritten | None = None
    ) -> OrderResult:
        """`place_order`'s second half: send what `prepare_order` built, once; its errors are
        `place_order`'s. Nothing before the request's bytes waits: `prepare_order` took the rate
        budget. `on_written` is called when the bytes are on the socket (or the send must first
        open a connection), so the engine can let the next order write."""
        ...

    async def order_status(self, client_id: str, coin: str | None = None) -> OrderResult | None:
        """Look an order up by our client id (and its coin, when known); None when the venue never saw it."""
        ...

    async def place_triggers(
        self,
        coin: str,
        position_size: Decimal,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        client_ids: tuple[str, str],
        not_after: datetime | None = None,
    ) -> list[OrderResult]:
        """Place reduce-only TP/SL triggers that close `position_size` (signed) when hit; the
        venue refuses them after `not_after` (their intent time + `order_validity_s`), as orders."""
        ...

    async def cancel_triggers(self, coin: str) -> int:
        """Cancel every TP/SL trigger on `coin`; returns how many were cancelled."""
        ...

    async def open_orders(self, coin: str | None = None) -> list[OpenOrder]:
        """Orders resting on the venue, triggers included."""
        ...

    async def set_leverage(self, coin: str, leverage: int, cross: bool = True) -> None:
        """Set the leverage used for new positions in `coin`."""
        ...

    async def fills(self, since: datetime) -> list[Fill]:
        """Executions since `since`, with the venue's fee and realized PnL."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# Optional abilities: a venue declares one by having the method; callers test for the protocol
# (`isinstance(venue, ReportsEquity)`), never probe attribute names.


@runtime_checkable
class ReportsEquity(Protocol):
    """The venue reads the account's equity in USD (sizing by `equity_fraction` needs it)."""

    async def equity(self) -> Decimal:
        """The account's equity in USD."""
        ...


@runtime_checkable
class SchedulesCancel(Protocol):
    """The venue can cancel every open order at a time we keep pushing ahead (dead-man switch)."""

    async def schedule_cancel(self, at: datetime | None) -> None:
        """Cancel everything at `at`; None removes the schedule."""
        ...


@runtime_checkable
class Streaming(Protocol):
    """Optional capability: the venue keeps an account stream (venues/account.py).

    `stream.state` is the pushed `AccountState`; `stream.start()` dials it, `stream.stop()` ends it.
    """

    stream: AccountStream


@runtime_checkable
class CancelsByClientId(Protocol):
    """Optional capability: cancel one order by our client id, even one whose reply was lost."""

    async def cancel_by_client_id(self, coin: str, client_id: str) -> bool:
        """True when a resting order with that client id was cancelled; False when none rests."""
        ...
