"""Per-(venue, coin) ordering and the bookkeeping that decides how fresh a read must be."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class VenueCoinState:
    """Locks that serialise work on one coin of one venue, and when we last changed it.

    The executor and the reconciler share one instance, so a reconciliation never reads
    between an order and the cache update that follows it.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._last_order_done: dict[tuple[str, str], float] = {}

    def lock_for(self, venue: str, coin: str) -> asyncio.Lock:
        key = (venue, coin)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    @asynccontextmanager
    async def hold(self, venue: str, coin: str) -> AsyncIterator[None]:
        """Hold the (venue, coin) lock for the duration of the block."""
        async with self.lock_for(venue, coin):
            yield

    def order_done(self, venue: str, coin: str, at: float | None = None) -> None:
        """Stamp the completion of a request that may have changed the position."""
        self._last_order_done[(venue, coin)] = time.monotonic() if at is None else at

    def last_order_done(self, venue: str, coin: str) -> float:
        """Monotonic time our last order on this coin completed (0.0 when never)."""
        return self._last_order_done.get((venue, coin), 0.0)
