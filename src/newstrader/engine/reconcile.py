"""Exchange vs cache, without trading: drift is recorded, the cache follows the exchange.

Runs at start-up (after resolving intents a crash left pending) and every
`reconcile_interval_s`. It shares the executor's (venue, coin) locks, so it never reads
between an order and the cache update that follows it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from newstrader.domain import ZERO, OrderResult, OrderStatus, Position
from newstrader.engine.locks import VenueCoinState
from newstrader.engine.ports import EventSink, ExecutionJournal
from newstrader.engine.quarantine import Quarantine
from newstrader.venues.base import Venue, VenueError

PUSH_SETTLE_S = 2.0
log = structlog.get_logger("newstrader.reconcile")


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """One difference between what a venue holds and what the cache said."""

    kind: str  # stale_local_cleared | missing_local_adopted | size_mismatch
    venue: str
    coin: str
    exchange_size: Decimal
    cached_size: Decimal | None


@dataclass(frozen=True, slots=True)
class ResolvedIntent:
    """What start-up found out about an order a crash left pending."""

    client_id: str
    venue: str
    coin: str
    status: str  # filled | acked | rejected | failed (the venue never saw it)
    filled_size: Decimal


def classify(exchange: Decimal, cached: Decimal | None) -> str | None:
    """The drift kind between an exchange size and a cached one, or None when they agree."""
    local = cached if cached is not None else ZERO
    if exchange == local:
        return None
    if exchange == 0:
        return "stale_local_cleared"
    if local == 0:
        return "missing_local_adopted"
    return "size_mismatch"


class Reconciler:
    """Reads every venue, records drift, updates the cache; never sends an order."""

    def __init__(
        self,
        venues: Mapping[str, Venue],
        journal: ExecutionJournal,
        *,
        state: VenueCoinState | None = None,
        quarantine: Quarantine | None = None,
        publish: EventSink | None = None,
    ) -> None:
        self.venues = dict(venues)
        self.journal = journal
        self.state = state or VenueCoinState()
        self.quarantine = quarantine
        self.publish = publish

    async def run_once(self) -> list[DriftEvent]:
        """Reconcile every venue in parallel; a venue that cannot be read is skipped and logged."""
        results = await asyncio.gather(*(self._venue(name) for name in self.venues), return_exceptions=True)
        events: list[DriftEvent] = []
        for name, item in zip(self.venues, results, strict=True):
            if isinstance(item, BaseException):
                if isinstance(item, asyncio.CancelledError):
                    raise item
                log.warning("reconcile_read_failed", venue=name, error=repr(item))
                continue
            events.extend(item)
        return events

    async def reconcile_pushed(self, name: str, held: Mapping[str, Position]) -> list[DriftEvent]:
        """Reconcile one venue against the positions its account stream just pushed (no REST read):
        a liquidation or an outside trade becomes a drift event within a second, not at the next
        `reconcile_interval_s`. Coins we are trading, or traded within `PUSH_SETTLE_S` (a push
        from before our fill may still be on its way), are left to the periodic check."""
        return await self._venue(name, held)

    async def _venue(self, name: str, pushed: Mapping[str, Position] | None = None) -> list[DriftEvent]:
        started = time.monotonic() - (PUSH_SETTLE_S if pushed is not None else 0.0)
        held = dict(pushed) if pushed is not None else await self.venues[name].positions()
        if pushed is None and self.quarantine is not None and self.quarantine.release(name):
            log.warning("venue_released", venue=name, message="health read succeeded")
            await self.journal.record_event(
                "venue_released", name, "", None, None, detail="reconcile read succeeded"
            )
        cached_rows = await self.journal.cached_positions(name)
        coins = sorted(set(held) | {coin for (_, coin) in cached_rows})
        events: list[DriftEvent] = []
        for coin in coins:
            async with self.state.hold(name, coin):
                if self.state.last_order_done(name, coin) >= started:
                    # We traded this coin after our read began; the executor updated the cache.
                    continue
                cached_row = (await self.journal.cached_positions(name)).get((name, coin))
                source = "reconcile" if pushed is None else "stream"
                event = await self._coin(name, coin, held.get(coin), cached_row, source)
                if event is not None:
                    events.append(event)
        return events

    async def _coin(
        self, name: str, coin: str, position: Position | None, cached_row: Any, source: str = "reconcile"
    ) -> DriftEvent | None:
        exchange = position.size if position is not None else ZERO
        raw = getattr(cached_row, "size", None) if cached_row is not None else None
        cached = Decimal(str(raw)) if raw is not None else None
        kind = classify(exchange, cached)
        if kind is None:
            return None
        if exchange == 0:
            await self.journal.clear_cached_position(name, coin)
        else:
            entry = position.entry_price if position is not None else ZERO
            await self.journal.set_cached_position(name, coin, exchange, entry)
        await self.journal.record_event(kind, name, coin, exchange, cached, detail=source)
        log.warning(
            kind,
            venue=name,
            coin=coin,
            exchange_size=str(exchange),
            cached_size=None if cached is None else str(cached),
            source=source,
        )
        if self.publish is not None:
            self.publish(
                {
                    "type": "drift",
                    "kind": kind,
                    "venue": name,
                    "coin": coin,
                    "exchange_size": str(exchange),
                    "cached_size": None if cached is None else str(cached),
                }
            )
        return DriftEvent(kind, name, coin, exchange, cached)

    async def resolve_pending(self) -> list[ResolvedIntent]:
        """Ask each venue about every intent a crash left pending, by client id; then reconcile."""
        resolved: list[ResolvedIntent] = []
        for intent in await self.journal.pending_intents():
            cid = str(getattr(intent, "client_id", ""))
            venue_name = str(getattr(intent, "venue", ""))
            coin = str(getattr(intent, "coin", ""))
            venue = self.venues.get(venue_name)
            if venue is None:
                log.warning("pending_intent_unknown_venue", venue=venue_name, coin=coin, client_id=cid)
                continue
            try:
                found: OrderResult | None = await venue.order_status(cid)
            except VenueError as exc:
                log.warning(
                    "pending_intent_unresolved", venue=venue_name, coin=coin, client_id=cid, error=str(exc)
                )
                continue
            if found is None:
                status, filled = "failed", ZERO
                await self.journal.update_intent(cid, "failed", error="venue never saw the order")
            else:
                filled = found.filled_size
                if found.status is OrderStatus.REJECTED:
                    status = "rejected"
                elif filled > 0:
                    status = "filled"
                else:
                    status = "acked"
                await self.journal.update_intent(cid, status, result=found)
            log.warning(
                "pending_intent_resolved",
                venue=venue_name,
                coin=coin,
                client_id=cid,
                status=status,
                filled=str(filled),
                signal_id=getattr(intent, "signal_id", None),
            )
            resolved.append(ResolvedIntent(cid, venue_name, coin, status, filled))
        return resolved
