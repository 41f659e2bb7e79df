"""What the engine needs from its neighbours, as protocols: the journal, settings, hooks.

The engine depends on these shapes, not on the modules that implement them, so it can be
typed strictly and built while those modules evolve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from newstrader.domain import OrderRequest, OrderResult, Position, VenueOutcome

EventSink = Callable[[dict[str, Any]], None]


class CachedPositionLike(Protocol):
    """A cached position row, as the engine reads it (only its size)."""

    @property
    def size(self) -> Decimal: ...


class IntentLike(Protocol):
    """A journaled order intent, as the in-flight rule reads it."""

    @property
    def client_id(self) -> str: ...
    @property
    def signal_id(self) -> str: ...
    @property
    def venue(self) -> str: ...
    @property
    def coin(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


class ControlStore(Protocol):
    """The journal's small key → JSON store."""

    async def get_control(self, key: str, default: Any = None) -> Any: ...

    async def set_control(self, key: str, value: Any) -> None: ...


class ExecutionJournal(ControlStore, Protocol):
    """The part of `journal.Journal` the engine writes to and reads from (its control store too)."""

    async def record_intent(
        self, signal_id: str, venue: str, coin: str, leg: str, client_id: str, req: OrderRequest
    ) -> bool: ...  # False: that client id was journaled before (never send it again)

    async def update_intent(
        self, client_id: str, status: str, result: OrderResult | None = None, error: str | None = None
    ) -> bool: ...

    async def pending_intents(self) -> Sequence[IntentLike]: ...

    async def intent(self, client_id: str) -> IntentLike | None: ...

    async def record_outcome(self, signal_id: str, outcome: VenueOutcome) -> bool: ...  # False: one stands

    async def record_event(
        self,
        kind: str,
        venue: str,
        coin: str,
        exchange_size: Decimal | None,
        cached_size: Decimal | None,
        detail: str = "",
    ) -> None: ...

    async def cached_positions(
        self, venue: str | None = None
    ) -> Mapping[tuple[str, str], CachedPositionLike]: ...

    async def set_cached_position(
        self, venue: str, coin: str, size: Decimal, entry_price: Decimal = ...
    ) -> None: ...

    async def clear_cached_position(self, venue: str, coin: str) -> None: ...


class NotOwner(BaseException):  # a stop, like CancelledError, not an error
    """This instance no longer owns the venue account: another bot has taken it over.

    A BaseException, like `asyncio.CancelledError`: nothing may record it as this instance's
    outcome (an `except Exception` would, overwriting the new owner's record); the work just stops."""


class SendFence(Protocol):
    """Account ownership as the engine sees it (several bots sharing accounts; see cluster/).

    `owns` is the cheap local view used to pick the venues to act on; `ensure_owner` asks the
    lock's holder (the database) and raises `NotOwner` unless this instance still holds it. It is
    called right before every order is journaled and again right before it is sent."""

    def owns(self, venue: str) -> bool: ...

    async def ensure_owner(self, venue: str) -> None: ...


class NoFence:
    """One bot alone: it owns every configured account."""

    def owns(self, venue: str) -> bool:
        return True

    async def ensure_owner(self, venue: str) -> None:
        return None


class TradeHooks(Protocol):
    """Called after every change of a position (the auto trader replaces TP/SL here).

    `venue` is the venue's name; `position` is the position after the change (size 0 when
    closed); `fill_price` the average price of the last fill, when known; `op_id` the id of
    the operation that changed it (the hook's own orders derive their client ids from it).
    """

    async def after_position_change(
        self, venue: str, coin: str, position: Position, fill_price: Decimal | None, *, op_id: str = ""
    ) -> None: ...


class NoHooks:
    """The default: nothing happens after a position change."""

    async def after_position_change(
        self, venue: str, coin: str, position: Position, fill_price: Decimal | None, *, op_id: str = ""
    ) -> None:
        return None
