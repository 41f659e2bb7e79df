"""Per-(venue, coin) ordering and the bookkeeping that decides how fresh a read must be."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

# The (venue, coin) keys the current task holds: a hold inside a hold (the auto trader's TP/SL
# placed from the engine's hook, under the lock the engine took) re-enters instead of deadlocking.
_HELD: ContextVar[frozenset[tuple[str, str]]] = ContextVar("newstrader_held_locks", default=frozenset())


class VenueCoinState:
    """Locks that serialise work on one coin of one venue, and when we last changed it.

    The executor and the reconciler share one instance, so a reconciliation never reads
    between an order and the cache update that follows it.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._last_order_done: dict[tuple[str, str], float] = {}
        self._in_flight: dict[tuple[str, str], set[str]] = {}

    def lock_for(self, venue: str, coin: str) -> asyncio.Lock:
        key = (venue, coin)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    @asynccontextmanager
    async def hold(self, venue: str, coin: str, timeout: float | None = None) -> AsyncIterator[None]:
        """Hold the (venue, coin) lock for the block; re-entrant within one task.

        With `timeout`, waiting longer raises `TimeoutError` (a signal's age bounds its wait).
        """
        key = (venue, coin)
        held = _HELD.get()
        if key in held:
            yield
            return
        lock = self.lock_for(venue, coin)
        if timeout is None:
            await lock.acquire()
        else:
            async with asyncio.timeout(max(timeout, 0.0)):
                await lock.acquire()
        token = _HELD.set(held | {key})
        try:
            yield
        finally:
            _HELD.reset(token)
            lock.release()

    def holds(self, venue: str, coin: str) -> bool:
        """True when the current task holds the (venue, coin) lock."""
        return (venue, coin) in _HELD.get()

    def mark_in_flight(self, venue: str, coin: str, client_id: str) -> None:
        """An order on this coin has an unknown outcome and may still land."""
        self._in_flight.setdefault((venue, coin), set()).add(client_id)

    def settle(self, venue: str, coin: str, client_id: str) -> None:
        """The order's outcome is known (or it can no longer execute)."""
        ids = self._in_flight.get((venue, coin))
        if ids is not None:
            ids.discard(client_id)
            if not ids:
                del self._in_flight[(venue, coin)]

    def in_flight_coins(self, venue: str) -> set[str]:
        """The coins of `venue` with an order that may still land."""
        return {coin for (name, coin) in self._in_flight if name == venue}

    def in_flight(self, venue: str, coin: str) -> bool:
        """True while an order on this coin may still land."""
        return (venue, coin) in self._in_flight

    def order_done(self, venue: str, coin: str, at: float | None = None) -> None:
        """Stamp the completion of a request that may have changed the position."""
        self._last_order_done[(venue, coin)] = time.monotonic() if at is None else at

    def last_order_done(self, venue: str, coin: str) -> float:
        """Monotonic time our last order on this coin completed (0.0 when never)."""
        return self._last_order_done.get((venue, coin), 0.0)
