"""Exchange vs cache, without trading: drift is recorded, the cache follows the exchange.

Runs at start-up and every `reconcile_interval_s`; each run first settles the intents the
journal still has unresolved, by the one in-flight rule (`engine/inflight.py`). It shares the
executor's (venue, coin) locks, so it never reads between an order and the cache update that follows it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import structlog

from newstrader.domain import ZERO, OrderResult, Position
from newstrader.engine.inflight import InFlightRule, intent_status
from newstrader.engine.locks import VenueCoinState
from newstrader.engine.ports import CachedPositionLike, EventSink, ExecutionJournal, IntentLike
from newstrader.engine.quarantine import Quarantine
from newstrader.engine.settings import EngineSettings
from newstrader.venues.base import Streaming, Venue

PUSH_SETTLE_S = 2.0
# The slow REST check of the account stream: a push for a change the read already saw may still be
# on its way; the stream gets this long to catch up before a difference counts as a stream fault.
STREAM_CATCH_UP_S = 1.0
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
        config: EngineSettings | None = None,
    ) -> None:
        self.venues = dict(venues)
        self.journal = journal
        self.state = state or VenueCoinState()
        self.quarantine = quarantine
        self.publish = publish
        self.rule = InFlightRule(journal, self.state, (config or EngineSettings()).in_flight_grace_s)
        self._background: set[asyncio.Task[None]] = set()

    async def run_once(self) -> list[DriftEvent]:
        """Settle unresolved intents (the in-flight rule), then reconcile every venue in parallel;
        a venue that cannot be read is skipped and logged."""
        await self.resolve_pending(skip_held=True)
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
        if pushed is None:
            await self._check_stream(name, held, started)
        cached_rows = await self.journal.cached_positions(name)
        coins = sorted(set(held) | {coin for (_, coin) in cached_rows})
        events: list[DriftEvent] = []
        for coin in coins:
            if self.state.in_flight(name, coin):
                continue  # an order may still land: the exchange's size is not settled yet
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

    async def _check_stream(self, name: str, held: Mapping[str, Position], started: float) -> None:
        """Compare the venue's account stream with a REST read taken at `started`: a difference the
        stream does not make up within `STREAM_CATCH_UP_S` is a stream fault (a lost push). It is
        journaled as `stream_mismatch` and the stream resyncs (redial, fresh snapshot)."""
        venue = self.venues[name]
        if not isinstance(venue, Streaming):
            return
        account = venue.stream.state

        def differing() -> dict[str, tuple[Decimal, Decimal]]:
            out: dict[str, tuple[Decimal, Decimal]] = {}
            for coin in set(held) | set(account.positions):
                if (
                    not account.current_for(coin)
                    or self.state.in_flight(name, coin)
                    or self.state.last_order_done(name, coin) >= started
                ):
                    continue  # nothing claimed, or our own order may move it: not comparable
                pushed = account.position(coin)
                streamed = pushed.size if pushed is not None else ZERO
                exchange = held[coin].size if coin in held else ZERO
                if streamed != exchange:
                    out[coin] = (exchange, streamed)
            return out

        deadline = time.monotonic() + STREAM_CATCH_UP_S
        differ = differing()
        while differ and time.monotonic() < deadline:
            await account.wait_changed(max(0.0, min(0.1, deadline - time.monotonic())))
            differ = differing()
        if not differ:
            return
        for coin, (exchange, streamed) in sorted(differ.items()):
            detail = f"stream shows {streamed}, REST read {exchange}: stream resynced"
            await self.journal.record_event("stream_mismatch", name, coin, exchange, streamed, detail=detail)
            log.error(
                "stream_mismatch",
                venue=name,
                coin=coin,
                exchange_size=str(exchange),
                stream_size=str(streamed),
            )
        account.mark_gap("REST check disagrees")
        await venue.stream.reconnect()

    async def _coin(
        self,
        name: str,
        coin: str,
        position: Position | None,
        cached_row: CachedPositionLike | None,
        source: str = "reconcile",
    ) -> DriftEvent | None:
        exchange = position.size if position is not None else ZERO
        cached = cached_row.size if cached_row is not None else None
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

    async def resolve_pending(self, *, skip_held: bool = False) -> list[ResolvedIntent]:
        """Settle every intent the journal still has unresolved, by the in-flight rule.

        An intent whose validity window has passed is decided now (one status read). One
        still young may yet land: its (venue, coin) lock is taken here and held by a
        background resolution, so nothing new is decided on that coin until it is found or
        provably expired; start-up does not wait for it. With `skip_held` (the periodic run)
        coins whose lock is taken are left alone: their owner is resolving them.
        """
        resolved: list[ResolvedIntent] = []
        young: dict[tuple[str, str], list[IntentLike]] = {}
        for intent in await self.journal.pending_intents():
            venue = self.venues.get(intent.venue)
            if venue is None:
                log.warning(
                    "pending_intent_unknown_venue",
                    venue=intent.venue,
                    coin=intent.coin,
                    client_id=intent.client_id,
                )
                continue
            key = (intent.venue, intent.coin)
            if key in young or self.state.in_flight(*key):
                young.setdefault(key, []).append(intent)
                continue
            if skip_held and self.state.lock_for(*key).locked():
                continue
            if self.rule.in_flight(venue, intent.created_at):
                young.setdefault(key, []).append(intent)
                continue
            async with self.state.hold(*key):
                resolved.append(await self._resolve_one(venue, intent))
        for (venue_name, coin), intents in young.items():
            lock = self.state.lock_for(venue_name, coin)
            if lock.locked():
                continue  # already being resolved (or traded) by its owner
            await lock.acquire()
            for intent in intents:
                self.state.mark_in_flight(venue_name, coin, intent.client_id)
            log.warning(
                "intent_in_flight",
                venue=venue_name,
                coin=coin,
                client_ids=[i.client_id for i in intents],
                message="an order sent before the restart may still land; the coin waits for it",
            )
            task = asyncio.create_task(
                self._resolve_in_background(self.venues[venue_name], lock, intents),
                name=f"resolve-{venue_name}-{coin}",
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return resolved

    async def _resolve_in_background(
        self, venue: Venue, lock: asyncio.Lock, intents: list[IntentLike]
    ) -> None:
        try:
            for intent in intents:
                try:
                    await self._resolve_one(venue, intent)
                finally:
                    self.state.settle(intent.venue, intent.coin, intent.client_id)
            self.state.order_done(venue.name, intents[0].coin)
        except Exception as exc:  # the lock must be released whatever happens
            log.error("intent_resolution_failed", venue=venue.name, coin=intents[0].coin, error=repr(exc))
        finally:
            lock.release()

    async def _resolve_one(self, venue: Venue, intent: IntentLike) -> ResolvedIntent:
        found: OrderResult | None = await self.rule.resolve(
            venue, intent.coin, intent.client_id, intent.created_at, signal_id=intent.signal_id
        )
        status = "failed" if found is None else intent_status(found)
        filled = ZERO if found is None else found.filled_size
        log.warning(
            "pending_intent_resolved",
            venue=venue.name,
            coin=intent.coin,
            client_id=intent.client_id,
            status=status,
            filled=str(filled),
            signal_id=intent.signal_id,
        )
        return ResolvedIntent(intent.client_id, venue.name, intent.coin, status, filled)

    async def wait_resolved(self) -> None:
        """Wait for the background resolutions start-up left running (tests, a clean stop)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop background resolutions; what they did not settle stays pending for next time."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*list(self._background), return_exceptions=True)
