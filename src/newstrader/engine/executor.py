"""Signal → orders on every venue: the seed's fix, done properly.

For each venue in parallel, under the (venue, coin) lock: read what the exchange holds,
reconcile the cache with it, and reach the target with the fewest, safest orders. The
exchange's position is the truth; the journal's cached position is only a cache.

Test-only hook: with `NEWSTRADER_TEST_CRASH_AFTER_SEND=1` in the environment the process
exits (`os._exit(137)`) right after an order send returns and before its result is
journaled — the window a `kill -9` must not be able to turn into a duplicate order. Any
other value is an operation-id prefix (`close-`, `flatten-`, `texit:`, a news id + `:` for
its TP/SL): only a send of such an operation ends the process.
`NEWSTRADER_TEST_CRASH_BEFORE_SEND` (same values) ends it after the order's intent is journaled
and before the order is sent — the soak's kill between the intent's commit and the send.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from newstrader.domain import (
    ZERO,
    Market,
    OrderRequest,
    OrderResult,
    OrderStatus,
    OrderType,
    OutcomeStatus,
    Position,
    Side,
    Signal,
    TimeInForce,
    VenueOutcome,
    utcnow,
)
from newstrader.engine.client_ids import client_id as make_client_id
from newstrader.engine.inflight import UNRESOLVED, InFlightRule, intent_status
from newstrader.engine.locks import VenueCoinState
from newstrader.engine.operations import OperationLog, new_operation_id
from newstrader.engine.ports import (
    EventSink,
    ExecutionJournal,
    NoFence,
    NoHooks,
    NotOwner,
    SendFence,
    TradeHooks,
)
from newstrader.engine.quarantine import Quarantine
from newstrader.engine.risk import Sizer
from newstrader.engine.settings import EngineSettings
from newstrader.venues.base import (
    Ambiguous,
    AuthError,
    CancelsByClientId,
    PreparedOrder,
    RateLimited,
    Rejected,
    ReportsEquity,
    Streaming,
    Transient,
    Venue,
    VenueError,
)

if TYPE_CHECKING:
    from newstrader.venues.account import AccountState

log = structlog.get_logger("newstrader.engine")

CRASH_AFTER_SEND_ENV = "NEWSTRADER_TEST_CRASH_AFTER_SEND"
CRASH_BEFORE_SEND_ENV = "NEWSTRADER_TEST_CRASH_BEFORE_SEND"
TRIGGER_ATTEMPTS = 3  # TP/SL pairs tried per placement before the failure policy decides
EQUITY_TTL_S = 30.0  # sizing.equity_fraction: equity moves slowly; one read per venue per 30 s
# position_source = "stream": how long the check of a streamed decision waits for the stream to
# report our own order before it asks the exchange once more instead.
STREAM_CONFIRM_S = 0.5


class SkipVenue(Exception):
    """This venue has nothing to do for the operation, for a stated reason."""


class GiveUp(Exception):
    """This venue could not reach the target; the reason goes on the outcome."""


def _settled_quietly(future: asyncio.Future[Any]) -> None:
    """Retrieve a write's outcome nobody awaits any more (its caller was cancelled): no
    "exception was never retrieved" noise; the journal logs its own failures."""
    if not future.cancelled():
        future.exception()


def _fmt(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _side_name(size: Decimal | None) -> str | None:
    if size is None:
        return None
    side = Side.of_size(size)
    return side.value if side is not None else "flat"


@dataclass(frozen=True, slots=True)
class Operation:
    """One thing to do on one coin: reach the size `goal` returns, under id `op_id`."""

    op_id: str  # seeds the client ids: the news id for signals
    signal_id: str
    coin: str
    created_at: datetime
    goal: Callable[[Market, Decimal, str], Awaitable[Decimal]]  # (market, mark, venue) → signed size
    action_name: str
    signal: Signal | None = None
    cancel_triggers: bool = False  # a close: the coin's TP/SL go too, even when already flat


class PositionReader:
    """Fresh position reads for one venue; with a TTL, shares only reads that are fresh enough.

    A read may be shared only when it started after `not_before` (the signal's arrival and
    our last order on the coin) and, once finished, is younger than the TTL.
    """

    def __init__(self, venue: Venue, ttl_s: float) -> None:
        self.venue = venue
        self.ttl_s = ttl_s
        self._inflight: tuple[float, asyncio.Task[dict[str, Position]]] | None = None
        self._last: tuple[float, dict[str, Position]] | None = None
        self.reads = 0

    async def read(self, not_before: float) -> dict[str, Position]:
        """The venue's positions from a read that started no earlier than `not_before`."""
        if self.ttl_s <= 0:
            self.reads += 1
            return await self.venue.positions()
        now = time.monotonic()
        if self._last is not None and self._last[0] >= not_before and now - self._last[0] <= self.ttl_s:
            return self._last[1]
        if self._inflight is not None and self._inflight[0] >= not_before and not self._inflight[1].done():
            return await asyncio.shield(self._inflight[1])
        started = time.monotonic()
        self.reads += 1
        task = asyncio.ensure_future(self.venue.positions())
        self._inflight = (started, task)
        result = await asyncio.shield(task)
        if self._last is None or self._last[0] < started:
            self._last = (started, result)
        return result


async def _on_each_venue(
    names: Sequence[str],
    run: Callable[[str], Awaitable[list[VenueOutcome]]],
    failed: Callable[[str, BaseException], VenueOutcome],
) -> list[VenueOutcome]:
    """`run` on every venue in `names` at once, their outcomes in `names`' order. A venue whose
    run raised gets `failed`'s outcome, so one venue's bug never hides the others' results; a stop
    (`CancelledError`) or a lost account (`NotOwner`) is no outcome and propagates."""
    gathered = await asyncio.gather(*(run(name) for name in names), return_exceptions=True)
    outcomes: list[VenueOutcome] = []
    for name, item in zip(names, gathered, strict=True):
        if isinstance(item, BaseException):
            if isinstance(item, asyncio.CancelledError | NotOwner):
                raise item
            outcomes.append(failed(name, item))
        else:
            outcomes.extend(item)
    return outcomes


class Executor:
    """Acts on signals: every venue in parallel, each coin in arrival order."""

    def __init__(
        self,
        venues: Mapping[str, Venue],
        journal: ExecutionJournal,
        settings: EngineSettings | None = None,
        sizing: Sizer | None = None,
        hooks: TradeHooks | None = None,
        *,
        state: VenueCoinState | None = None,
        quarantine: Quarantine | None = None,
        publish: EventSink | None = None,
        fence: SendFence | None = None,
    ) -> None:
        self.venues = dict(venues)
        self.fence: SendFence = fence or NoFence()
        self.journal = journal
        self.config = settings or EngineSettings()
        self.sizer = sizing or Sizer()
        self.hooks: TradeHooks = hooks or NoHooks()
        self.state = state or VenueCoinState()
        self.quarantine = quarantine or Quarantine(
            rate_limit_count=self.config.rate_limit_quarantine_count,
            rate_limit_window_s=self.config.rate_limit_window_s,
            probe_interval_s=self.config.quarantine_probe_s,
        )
        self.publish = publish
        self.intents = InFlightRule(journal, self.state, self.config.in_flight_grace_s)
        self.operations = OperationLog(journal)
        self._resumed: set[asyncio.Future[Any]] = set()
        self._readers = {
            name: PositionReader(v, self.config.position_cache_ttl_ms / 1000.0)
            for name, v in self.venues.items()
        }
        # The account streams of the venues that keep one (the declared `Streaming` capability).
        self._accounts: dict[str, AccountState] = {
            name: v.stream.state for name, v in self.venues.items() if isinstance(v, Streaming)
        }
        # Per venue: decisions taken from the stream or from a REST read first, and the extra reads
        # a streamed decision needed to settle what the exchange held (see `_settle_streamed`).
        self.decided_from: Counter[tuple[str, str]] = Counter()
        self.stream_confirm_reads: Counter[str] = Counter()
        # Per (venue, coin): re-reads of the exchange after one of our sends (`_fresh_size`).
        self._rereads: Counter[tuple[str, str]] = Counter()
        self._markets: dict[str, dict[str, Market]] = {}
        self._market_loads: dict[str, asyncio.Lock] = {}
        self._leverage_done: dict[tuple[str, str], int] = {}
        self._equity_seen: dict[str, tuple[float, Decimal]] = {}
        self._crash_after_send = os.environ.get(CRASH_AFTER_SEND_ENV, "")
        self._crash_before_send = os.environ.get(CRASH_BEFORE_SEND_ENV, "")
        self._wire_turn = asyncio.Lock()  # one order writing its request at a time (see `_send`)

    # ------------------------------------------------------------------ public API

    async def execute(
        self, signal: Signal, *, received_at: float | None = None, venues: Sequence[str] | None = None
    ) -> list[VenueOutcome]:
        """Reach `signal`'s target on every venue this instance owns (or on `venues`) in
        parallel; one outcome per venue.

        The latency ledger starts with the signal's own stamps (published, received at the
        edge, parsed), so news-to-fill counts from receipt, not from here."""
        stamps = dict(signal.stamps)
        received = stamps.get("received", time.monotonic() if received_at is None else received_at)

        async def goal(market: Market, mark: Decimal, venue: str) -> Decimal:
            equity = await self._equity(venue) if self.sizer.needs_equity(signal) else None
            plan = self.sizer.plan(signal, market, mark, equity)
            if plan.skip_reason is not None:
                raise SkipVenue(plan.skip_reason)
            await self._ensure_leverage(venue, signal.coin, plan.leverage)
            return plan.target_size

        op = Operation(
            op_id=signal.news_id,
            signal_id=signal.id,
            coin=signal.coin,
            created_at=signal.created_at,
            goal=goal,
            action_name=f"{signal.side.value} {signal.coin}",
            signal=signal,
        )
        names = [n for n in (self.venues if venues is None else venues) if self.fence.owns(n)]
        return await self._run_everywhere(op, names, received)

    async def close(
        self,
        coin: str,
        venue: str | None = None,
        *,
        op_id: str | None = None,
        reason: str = "operator",
    ) -> list[VenueOutcome]:
        """Close `coin` on one venue (or all) from what the exchange holds, reduce-only, and
        cancel its TP/SL triggers. `op_id` names the operation (its client ids derive from it);
        a new one is drawn when absent. The operation is journaled until it finishes, so a
        restart finishes it (`resume_operations`)."""
        names = [venue] if venue is not None else list(self.venues)
        unknown = [n for n in names if n not in self.venues]
        if unknown:
            raise ValueError(f"unknown venue {unknown[0]!r}; configured: {', '.join(self.venues)}")
        names = [n for n in names if self.fence.owns(n)]  # another bot trades the others
        operation_id = op_id or new_operation_id("close")
        async with self.operations.running(
            operation_id, {"kind": "close", "coin": coin, "venue": venue, "reason": reason}
        ):
            return await self._close(coin, names, operation_id)

    async def _close(self, coin: str, names: list[str], operation_id: str) -> list[VenueOutcome]:
        async def goal(market: Market, mark: Decimal, venue_name: str) -> Decimal:
            return ZERO

        op = Operation(
            op_id=operation_id,
            signal_id=operation_id,
            coin=coin,
            created_at=utcnow(),
            goal=goal,
            action_name=f"close {coin}",
            cancel_triggers=True,
        )
        return await self._run_everywhere(op, names, time.monotonic())

    async def flatten(self, *, op_id: str | None = None, reason: str = "flatten") -> list[VenueOutcome]:
        """Close every position on every venue and cancel every resting order.

        The coins come from the exchange (positions and resting orders), the cache, and the
        orders still in flight: a coin whose order may yet land is waited for, then closed."""
        operation_id = op_id or new_operation_id("flatten")
        async with self.operations.running(operation_id, {"kind": "flatten", "reason": reason}):
            owned = [n for n in self.venues if self.fence.owns(n)]  # another bot trades the others
            return await _on_each_venue(
                owned,
                lambda name: self._flatten_venue(name, operation_id),
                lambda name, error: VenueOutcome(
                    name, "*", OutcomeStatus.FAILED, reason=f"flatten read failed: {error}"
                ),
            )

    async def _flatten_venue(self, name: str, operation_id: str) -> list[VenueOutcome]:
        venue = self.venues[name]
        held, resting = await asyncio.gather(venue.positions(), venue.open_orders())
        cached = {coin for (_, coin) in await self.journal.cached_positions(name)}
        coins = sorted(
            {c for c, p in held.items() if not p.is_flat}
            | {o.coin for o in resting}
            | cached
            | self.state.in_flight_coins(name)
        )
        results: list[VenueOutcome] = []
        for coin in coins:
            results.extend(await self._close(coin, [name], f"{operation_id}-{coin}"))
        return results

    async def place_triggers(
        self,
        venue_name: str,
        coin: str,
        position_size: Decimal,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        *,
        op_id: str,
    ) -> list[OrderResult]:
        """Place reduce-only TP/SL triggers for `position_size` (signed), as an operation.

        Under the (venue, coin) lock (re-entered when the engine's own hook calls it); each
        pair is journaled before it is sent with client ids derived from `op_id`. A pair an
        earlier run sent is resolved by the in-flight rule, never resent blindly; a pair that
        did not (wholly) rest is cancelled before the next pair. Raises `GiveUp` when no pair rests.
        """
        venue = self.venues[venue_name]
        async with self.state.hold(venue_name, coin):
            last_error = "no trigger placed"
            for attempt in range(TRIGGER_ATTEMPTS):
                ids = (
                    make_client_id(op_id, venue_name, f"tp{attempt}"),
                    make_client_id(op_id, venue_name, f"sl{attempt}"),
                )
                legs = [
                    (leg, cid, price)
                    for leg, cid, price in (("tp", ids[0], take_profit), ("sl", ids[1], stop_loss))
                    if price is not None
                ]
                await self.fence.ensure_owner(venue_name)  # a bot that lost the account journals nothing
                intent_at = utcnow()
                fresh = [
                    await self.journal.record_intent(
                        op_id,
                        venue_name,
                        coin,
                        f"{leg}{attempt}",
                        cid,
                        OrderRequest(
                            coin=coin,
                            is_buy=position_size < 0,
                            size=abs(position_size),
                            client_id=cid,
                            order_type=OrderType.TRIGGER,
                            limit_price=price,
                            reduce_only=True,
                            tif=TimeInForce.GTC,
                        ),
                    )
                    for leg, cid, price in legs
                ]
                if not all(fresh):
                    log.warning("triggers_already_sent", venue=venue_name, coin=coin, client_ids=ids)
                    found = [await self._resolve_earlier(venue, coin, op_id, cid) for _, cid, _ in legs]
                    results = [f for f in found if f is not None]
                    if len(results) == len(legs) and all(r.ok for r in results):
                        return results
                    await self.cancel_triggers(venue_name, coin, op_id=op_id)
                    continue
                try:
                    await self.fence.ensure_owner(venue_name)  # fencing: still ours at the moment of sending
                except NotOwner:
                    for _, cid, _ in legs:
                        await self.journal.update_intent(
                            cid, "failed", error="fenced: never sent, the account moved"
                        )
                    raise
                try:
                    until = self.intents.valid_until(venue, intent_at)  # the pair's window, as an order's
                    results = await venue.place_triggers(
                        coin, position_size, take_profit, stop_loss, ids, until
                    )
                except Ambiguous as exc:
                    last_error = f"ambiguous: {exc}"
                    found = [
                        await self.intents.resolve(venue, coin, cid, intent_at, signal_id=op_id)
                        for _, cid, _ in legs
                    ]
                    results = [f for f in found if f is not None]
                    if len(results) == len(legs) and all(r.ok for r in results):
                        return results
                    await self.cancel_triggers(venue_name, coin, op_id=op_id)
                    continue
                except Transient as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
                    for _, cid, _ in legs:
                        await self.journal.update_intent(cid, "failed", error=last_error)
                    await self.cancel_triggers(venue_name, coin, op_id=op_id)  # half a pair may rest
                    await asyncio.sleep(exc.retry_after or self.config.backoff_base_s * 2**attempt)
                    continue
                except VenueError as exc:
                    for _, cid, _ in legs:
                        await self.journal.update_intent(cid, "rejected", error=str(exc))
                    await self.cancel_triggers(venue_name, coin, op_id=op_id)
                    raise GiveUp(f"{type(exc).__name__}: {exc}") from exc
                self._crash_point(op_id)
                by_id = {r.client_id: r for r in results}
                for _, cid, _ in legs:
                    placed = by_id.get(cid)
                    if placed is None:
                        await self.journal.update_intent(cid, "failed", error="no answer for this trigger")
                    else:
                        await self.journal.update_intent(cid, intent_status(placed), result=placed)
                bad = [r for r in results if not r.ok]
                if bad or not results:
                    await self.cancel_triggers(venue_name, coin, op_id=op_id)
                    raise GiveUp("; ".join(r.error or str(r.status) for r in bad) or "no trigger placed")
                return results
            raise GiveUp(f"triggers not placed after {TRIGGER_ATTEMPTS} pairs: {last_error}")

    async def cancel_triggers(self, venue_name: str, coin: str, *, op_id: str) -> int:
        """Cancel every TP/SL trigger on `coin`, under the coin's lock.

        A cancel can neither open nor grow a position and asking twice is harmless, so it is
        logged with its operation, not journaled as an intent; a transient failure is asked
        again, with backoff."""
        venue = self.venues[venue_name]
        async with self.state.hold(venue_name, coin):
            log.info("cancel_triggers", venue=venue_name, coin=coin, signal_id=op_id)
            for attempt in range(TRIGGER_ATTEMPTS):
                await self.fence.ensure_owner(venue_name)  # only the owner touches its orders
                try:
                    return await venue.cancel_triggers(coin)
                except Transient as exc:
                    if attempt == TRIGGER_ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(exc.retry_after or self.config.backoff_base_s * 2**attempt)
                except Ambiguous:
                    if attempt == TRIGGER_ATTEMPTS - 1:
                        raise
            raise AssertionError("unreachable")

    async def place_resting(self, venue_name: str, order: OrderRequest, *, op_id: str) -> OrderResult:
        """Send one post-only order (it rests or is refused, never fills: `check --trade-test`'s
        probe) as an operation: under the coin's lock, journaled before the send.

        Errors are journaled on the intent and raised; after a lost reply (`Ambiguous`) the
        caller cancels by client id until the order's validity window has passed."""
        if order.tif is not TimeInForce.POST_ONLY or order.order_type is not OrderType.LIMIT:
            raise ValueError("place_resting sends post-only limit orders only")
        venue = self.venues[venue_name]
        cid = order.client_id
        async with self.state.hold(venue_name, order.coin):
            await self.fence.ensure_owner(venue_name)
            order = replace(order, not_after=self.intents.valid_until(venue, utcnow()))  # as in `_drive`
            if not await self.journal.record_intent(op_id, venue_name, order.coin, "probe", cid, order):
                raise GiveUp(f"order {cid} was sent before: not sent again")
            try:
                result = await venue.place_order(order)
            except Ambiguous as exc:
                await self.journal.update_intent(cid, "ambiguous", error=str(exc))
                raise
            except VenueError as exc:
                status = "rejected" if isinstance(exc, Rejected | AuthError) else "failed"
                await self.journal.update_intent(cid, status, error=str(exc))
                raise
            await self.journal.update_intent(cid, intent_status(result), result=result)
            return result

    async def cancel_order(self, venue_name: str, coin: str, client_id: str, *, op_id: str) -> bool:
        """Cancel one order by client id under the coin's lock; True when one was cancelled.

        Logged with its operation, not journaled (a cancel can neither open nor grow a position).
        The venue must declare `CancelsByClientId`."""
        venue = self.venues[venue_name]
        if not isinstance(venue, CancelsByClientId):
            raise VenueError(f"{venue_name} cannot cancel by client id")
        async with self.state.hold(venue_name, coin):
            await self.fence.ensure_owner(venue_name)
            log.info("cancel_order", venue=venue_name, coin=coin, signal_id=op_id, client_id=client_id)
            return await venue.cancel_by_client_id(coin, client_id)

    async def resume_operations(self) -> list[str]:
        """Finish the operator operations (close, flatten) a crash interrupted, in the background.

        Each runs again under its own id: legs it already sent are resolved by the in-flight
        rule, the exchange is re-read, and only what is still missing is sent."""
        unfinished = await self.operations.unfinished()
        for op_id, record in unfinished.items():
            log.warning("operation_resumed", operation=op_id, kind=record.get("kind"))
            if record.get("kind") == "close":
                work: Awaitable[Any] = self.close(
                    str(record["coin"]), record.get("venue"), op_id=op_id, reason=str(record.get("reason"))
                )
            elif record.get("kind") == "flatten":
                work = self.flatten(op_id=op_id, reason=str(record.get("reason")))
            else:
                await self.operations.finish(op_id)
                continue
            task = asyncio.ensure_future(work)
            self._resumed.add(task)
            task.add_done_callback(self._resumed.discard)
        return list(unfinished)

    async def aclose(self) -> None:
        """Stop resumed operations; what they did not finish stays journaled for the next start."""
        for task in list(self._resumed):
            task.cancel()
        await asyncio.gather(*list(self._resumed), return_exceptions=True)

    def _crash_point(self, op_id: str, armed: str | None = None) -> None:
        """The test-only crash hooks (module docstring): by default a send returned, its result
        not journaled; `armed` names another point's setting (before the send)."""
        crash = self._crash_after_send if armed is None else armed
        if crash and (crash == "1" or op_id.startswith(crash)):
            os._exit(137)

    def reader_for(self, venue: str) -> PositionReader:
        return self._readers[venue]

    # ------------------------------------------------------------------ per venue

    async def _run_everywhere(self, op: Operation, names: list[str], received: float) -> list[VenueOutcome]:
        async def run(name: str) -> list[VenueOutcome]:
            return [await self._run_on_venue(name, op, received)]

        def failed(name: str, error: BaseException) -> VenueOutcome:
            log.error(
                "engine_internal_error", venue=name, coin=op.coin, signal_id=op.signal_id, error=repr(error)
            )
            return VenueOutcome(name, op.coin, OutcomeStatus.FAILED, reason=f"internal error: {error!r}")

        return await _on_each_venue(names, run, failed)

    async def _run_on_venue(self, name: str, op: Operation, received: float) -> VenueOutcome:
        # The outcome is journaled before the lock is released, so the journal's order of
        # outcomes on one (venue, coin) is the order in which they were executed.
        try:
            async with self.state.hold(name, op.coin, timeout=self.config.max_signal_age_s - self._age_s(op)):
                outcome, action = await self._attempt(name, op, received)
                # An owner paused mid-order and woken after a takeover must not journal an outcome
                # beside the new owner's: the item is the new owner's to finish.
                await self.fence.ensure_owner(name)
                await self._finish(name, op, outcome, action)
        except TimeoutError:
            # An order on this coin was still in flight (or another operation ran) for longer than
            # this one may wait: it is dropped, nothing is sent.
            outcome = VenueOutcome(
                venue=name,
                coin=op.coin,
                status=OutcomeStatus.FAILED,
                reason=(
                    f"signal older than max_signal_age_s={self.config.max_signal_age_s:g}"
                    f" while waiting for {op.coin} on {name} (an order in flight)"
                ),
            )
            outcome.latency.mark("received", received)
            await self._finish(name, op, outcome, "failed")
        return outcome

    async def _attempt(self, name: str, op: Operation, received: float) -> tuple[VenueOutcome, str]:
        """Run `op` on one venue (lock held); the outcome and the action taken, errors included."""
        outcome = VenueOutcome(venue=name, coin=op.coin, status=OutcomeStatus.OK)
        if op.signal is not None:
            for stage, at in op.signal.stamps:
                outcome.latency.mark(stage, at)
        outcome.latency.mark("received", received)
        venue = self.venues[name]
        action = "none"
        try:
            await self._admit(name, op)
            action = await self._reach_goal(name, venue, op, received, outcome)
        except SkipVenue as skip:
            outcome.status = OutcomeStatus.SKIPPED
            outcome.reason = str(skip)
            action = "skipped"
        except GiveUp as failure:
            outcome.status = OutcomeStatus.FAILED
            outcome.reason = str(failure)
            action = "failed"
        except AuthError as exc:
            await self._quarantine(name, op.coin, f"auth error: {exc}")
            outcome.status = OutcomeStatus.FAILED
            outcome.reason = f"auth error: {exc}"
            action = "failed"
        except RateLimited as exc:
            outcome.status = OutcomeStatus.FAILED
            outcome.reason = f"rate limited: {exc}"
            if self.quarantine.note_rate_limited(name):
                await self._announce_quarantine(name, op.coin, self.quarantine.reason(name) or "rate limited")
                outcome.reason = f"venue quarantined: {self.quarantine.reason(name)}"
            action = "failed"
        except VenueError as exc:
            outcome.status = OutcomeStatus.FAILED
            outcome.reason = f"{type(exc).__name__}: {exc}"
            action = "failed"
        if outcome.status is not OutcomeStatus.OK and not outcome.reason:
            outcome.reason = action
        return outcome, action

    async def _admit(self, name: str, op: Operation) -> None:
        """Refuse quarantined venues unless a health probe now shows them healthy."""
        reason = self.quarantine.reason(name)
        if reason is None:
            return
        if self.quarantine.probe_due(name):
            try:
                await self.venues[name].positions()
            except VenueError as exc:
                log.warning(
                    "venue_probe_failed", venue=name, coin=op.coin, signal_id=op.signal_id, error=str(exc)
                )
            else:
                await self._release(name, op.coin)
                return
        raise SkipVenue(f"venue quarantined: {reason}")

    async def _reach_goal(
        self, name: str, venue: Venue, op: Operation, received: float, outcome: VenueOutcome
    ) -> str:
        # Reads are retried by the venue's transport (venues/retry.py), never here as well.
        market = await self._market(name, venue, op.coin)
        account = self._decides_from_stream(name, op.coin)
        if account is not None:
            self.decided_from[(name, "stream")] += 1
            return await self._reach_goal_streamed(name, venue, market, op, received, outcome, account)
        self.decided_from[(name, "rest")] += 1
        not_before = max(received, self.state.last_order_done(name, op.coin))
        # The cached size is a journal query: it overlaps the venue reads instead of following
        # them (under the (venue, coin) lock nothing else changes it meanwhile).
        positions, mark, cached = await asyncio.gather(
            self._readers[name].read(not_before),
            venue.mark_price(op.coin),
            self._cached_size(name, op.coin),
        )
        held = positions.get(op.coin)
        exchange_size = held.size if held is not None else ZERO
        outcome.exchange_size_before = exchange_size
        outcome.cached_size_before = cached
        await self._reconcile_cache(name, op, held, cached)

        target = await op.goal(market, mark, name)
        outcome.target_size = target
        outcome.latency.mark("decided", time.monotonic())

        before = exchange_size
        current = exchange_size
        entry = held.entry_price if held is not None else None
        if (
            self.config.mode == "close_then_open"
            and current != 0
            and not self._within_step(current, target, market)
        ):
            current, price = await self._drive(name, venue, market, mark, op, outcome, current, ZERO, "c")
            if current != before:
                await self._after_change(name, op, current, price, entry)
            if target != 0:
                opened_from = current
                current, price = await self._drive(
                    name, venue, market, mark, op, outcome, current, target, "o"
                )
                if current != opened_from:
                    entry = price if opened_from == 0 else entry
                    await self._after_change(name, op, current, price, entry)
        else:
            current, price = await self._drive(name, venue, market, mark, op, outcome, current, target, "t")
            if current != before:
                if Side.of_size(current) != Side.of_size(before):
                    entry = price
                await self._after_change(name, op, current, price, entry)
        outcome.exchange_size_after = current
        if op.cancel_triggers:
            await self.cancel_triggers(name, op.coin, op_id=op.op_id)
        return self._describe_action(before, current, target)

    def _decides_from_stream(self, name: str, coin: str) -> AccountState | None:
        """The venue's account state when this decision may be taken from it: `position_source =
        "stream"`, mode "target", the stream current for the coin (connected without a gap since
        its snapshot, heard from lately, every order of ours on the coin reported), and no intent
        of ours on the coin in flight. Otherwise None: read the exchange first."""
        if self.config.position_source != "stream" or self.config.mode != "target":
            return None
        account = self._accounts.get(name)
        if account is None or self.state.in_flight(name, coin) or not account.current_for(coin):
            return None
        return account

    async def _reach_goal_streamed(
        self,
        name: str,
        venue: Venue,
        market: Market,
        op: Operation,
        received: float,
        outcome: VenueOutcome,
        account: AccountState,
    ) -> str:
        """Decide from the account stream and order at once. The REST read the seed demands for
        every message starts once the order is answered, so nothing but the order's own intent
        write stands between the decision and its bytes, and the read shows the exchange after
        our fill. When the exchange holds something else, the stream's position as of its report
        of our fill says why: it was behind (a push still in flight) and one more order reaches
        the target (`stream_lag`), or something changed the position after our fill (a manual
        close, a liquidation), which stands (`outside_change_after_fill`)."""
        held = account.position(op.coin)
        assumed = held.size if held is not None else ZERO
        mark = account.marks.get(op.coin)
        if mark is None:
            mark = await venue.mark_price(op.coin)
        outcome.exchange_size_before = assumed
        target = await op.goal(market, mark, name)
        outcome.target_size = target
        outcome.latency.mark("decided", time.monotonic())
        rereads = self._rereads[(name, op.coin)]
        sent_before = len(outcome.orders)
        refusal: GiveUp | None = None
        try:
            current, price = await self._drive(
                name, venue, market, mark, op, outcome, assumed, target, "t", reference=mark
            )
        except GiveUp as exc:
            # Refused with nothing filled (a reduce-only order against a position the stream had
            # not shown yet, say): the read that follows says whether the stream was behind.
            moved = any(o.filled_size > 0 for o in outcome.orders)
            if moved or self._rereads[(name, op.coin)] != rereads:
                raise
            refusal, current, price = exc, assumed, None
        # A partial fill, an ambiguous send or a transient refusal made `_drive` re-read the
        # exchange after our own order: `current` is then the exchange's word already.
        settled = self._rereads[(name, op.coin)] != rereads
        # The cache is bookkeeping here, not an input: read once the order is out.
        cached = await self._cached_size(name, op.coin)
        outcome.cached_size_before = cached
        await self._reconcile_cache(name, op, held, cached)  # drift as the stream showed it
        lagged = outside = False
        ours = current  # what our order made of the stream's position
        if not settled:
            not_before = max(received, self.state.last_order_done(name, op.coin))
            truth, read = await self._settle_streamed(name, venue, op, account, current, not_before)
            lagged = truth != current
            if refusal is not None and not lagged:
                raise refusal
            if lagged:
                behind, why = await self._stream_behind(
                    account, outcome.orders[sent_before:], assumed, current
                )
                if behind:
                    await self._stream_lag(name, op, assumed, current - assumed, read, truth, why)
                    current, corrected = await self._drive(
                        name, venue, market, mark, op, outcome, truth, target, "s", reference=mark
                    )
                    price = corrected or price
                else:
                    await self._outside_change_after_fill(name, op, assumed, current - assumed, read, truth)
                    current, outside = truth, True
        outcome.exchange_size_after = current
        if current != assumed or lagged:
            entry = held.entry_price if held is not None else None
            if Side.of_size(current) != Side.of_size(assumed):
                entry = price
            await self._after_change(name, op, current, price, entry)
        if op.cancel_triggers:
            await self.cancel_triggers(name, op.coin, op_id=op.op_id)
        if outside:
            return f"{self._describe_action(assumed, ours, target)}, then {current} outside the bot"
        return self._describe_action(assumed, current, target)

    @staticmethod
    async def _stream_behind(
        account: AccountState, sent: Sequence[OrderResult], assumed: Decimal, ours: Decimal
    ) -> tuple[bool, str]:
        """Whether the stream was behind the exchange when we decided, told from its position as
        of its report of our fill (pushes carry absolute positions): (behind, why). Not behind
        when it showed `assumed` plus our fill: the exchange then holds something else because
        of a change after our fill. When it cannot tell (no fill of ours, no report of it within
        the wait, its fill push lost) it is taken as behind, as before: one more order reaches
        the target, and `why` says so in the journal."""
        filled = [o for o in sent if o.filled_size > 0 and o.client_id is not None]
        if len(filled) != 1 or ours == assumed:
            return True, "no fill of ours to check the stream against"
        assert filled[0].client_id is not None
        said = await account.wait_position_at_report(filled[0].client_id, assumed, ours, STREAM_CONFIRM_S)
        if said == "ours":
            return False, "the stream showed our fill on the position we decided from"
        if said == "behind":
            return True, "the stream's position as of our fill was not the one we decided from plus our fill"
        if said == "unknown":
            return True, "cannot tell: the stream reported our fill at the old position, then another"
        return (
            True,
            f"cannot tell: the stream did not show its position as of our fill within {STREAM_CONFIRM_S} s",
        )

    async def _settle_streamed(
        self,
        name: str,
        venue: Venue,
        op: Operation,
        account: AccountState,
        expected: Decimal,
        not_before: float,
    ) -> tuple[Decimal, Decimal | None]:
        """What the exchange holds after our order of a streamed decision, never guessed; and
        what the first read said.

        The read starts after our order was answered (an IOC's answer carries its fill on both
        venues), so it is served after the fill: when it shows `expected` (the stream's position
        plus our fill), that is the truth. When it shows something else, either the stream was
        behind (an outside trade, a liquidation) or the venue served a stale read (an account
        service may lag its matching engine): the stream is waited for until it has reported our
        order, and if it agrees with the read, that is the truth. Anything else (they disagree,
        the read failed) is settled by one more read.
        """
        try:
            positions = await self._readers[name].read(not_before)
        except VenueError as exc:
            log.warning(
                "stream_check_read_failed", venue=name, coin=op.coin, signal_id=op.signal_id, error=str(exc)
            )
            read = None
        else:
            held = positions.get(op.coin)
            read = held.size if held is not None else ZERO
        streamed: Decimal | None = None
        if read == expected:
            truth, how = read, "read after our answer"
        else:
            if read is not None and await account.wait_current_for(op.coin, STREAM_CONFIRM_S):
                pushed = account.position(op.coin)
                streamed = pushed.size if pushed is not None else ZERO
            if read is not None and streamed == read:
                truth, how = read, "stream and read agree"
            else:
                self.stream_confirm_reads[name] += 1
                truth, how = await self._fresh_size(name, venue, op), "read once more"
        log.info(
            "stream_decision_checked",
            venue=name,
            coin=op.coin,
            signal_id=op.signal_id,
            expected_size=str(expected),
            read_size=_fmt(read),
            streamed_after=_fmt(streamed),
            exchange_size=str(truth),
            settled_by=how,
        )
        return truth, read

    async def _stream_lag(
        self,
        name: str,
        op: Operation,
        assumed: Decimal,
        filled: Decimal,
        read: Decimal | None,
        truth: Decimal,
        why: str,
    ) -> None:
        """The stream's position was behind the exchange's when we decided: journal it."""
        detail = (
            f"signal {op.signal_id}: decided from the stream's {assumed}, our order filled {filled},"
            f" the exchange holds {truth} (alongside read {read}); {why}; correcting"
        )
        await self.journal.record_event("stream_lag", name, op.coin, truth, assumed + filled, detail=detail)
        log.warning(
            "stream_lag",
            venue=name,
            coin=op.coin,
            signal_id=op.signal_id,
            stream_size=str(assumed),
            filled=str(filled),
            exchange_size=str(truth),
            read_size=_fmt(read),
            why=why,
        )
        self._publish(
            "drift",
            kind="stream_lag",
            venue=name,
            coin=op.coin,
            exchange_size=str(truth),
            cached_size=str(assumed + filled),
            signal_id=op.signal_id,
        )

    async def _outside_change_after_fill(
        self,
        name: str,
        op: Operation,
        assumed: Decimal,
        filled: Decimal,
        read: Decimal | None,
        truth: Decimal,
    ) -> None:
        """The stream was current when we decided and showed our fill, yet the exchange holds
        something else: a change after our fill (a manual close, a liquidation). The exchange
        is the truth and the change stands; journal it, never trade it back."""
        detail = (
            f"signal {op.signal_id}: decided from the stream's {assumed}, our order filled {filled},"
            f" the stream showed {assumed + filled} as of our fill, the exchange holds {truth}"
            f" (alongside read {read}): changed outside the bot after our fill; accepted"
        )
        await self.journal.record_event(
            "outside_change_after_fill", name, op.coin, truth, assumed + filled, detail=detail
        )
        log.warning(
            "outside_change_after_fill",
            venue=name,
            coin=op.coin,
            signal_id=op.signal_id,
            stream_size=str(assumed),
            filled=str(filled),
            exchange_size=str(truth),
            read_size=_fmt(read),
        )
        self._publish(
            "drift",
            kind="outside_change_after_fill",
            venue=name,
            coin=op.coin,
            exchange_size=str(truth),
            cached_size=str(assumed + filled),
            signal_id=op.signal_id,
        )

    @staticmethod
    def _describe_action(before: Decimal, after: Decimal, target: Decimal) -> str:
        if after == before:
            return "none (already at target)" if after == target else "none"
        if before == 0:
            return "opened"
        if after == 0:
            return "closed"
        if Side.of_size(before) != Side.of_size(after):
            return "flipped"
        return "increased" if abs(after) > abs(before) else "reduced"

    @staticmethod
    def _within_step(current: Decimal, target: Decimal, market: Market) -> bool:
        return Side.of_size(current) == Side.of_size(target) and abs(target - current) < market.size_step

    async def _drive(
        self,
        name: str,
        venue: Venue,
        market: Market,
        mark: Decimal,
        op: Operation,
        outcome: VenueOutcome,
        current: Decimal,
        goal: Decimal,
        leg_prefix: str,
        reference: Decimal | None = None,
    ) -> tuple[Decimal, Decimal | None]:
        """Send orders until the exchange holds `goal`; each send has its own leg id.

        Ambiguous sends are looked up by client id and the position re-read before anything
        else is sent; transient errors and partial fills re-read and send only what is missing.
        `reference` (the stream's mark) is the price a market order's slippage cap is measured
        from, so the adapter need not read one first. The venue's account stream (if any) is told
        of every send, so it is not current for the coin until it has reported the order.
        """
        account = self._accounts.get(name)
        attempt = 0
        last_price: Decimal | None = None
        while True:
            delta = goal - current
            size = market.round_size(delta)
            if size == 0:
                return current, last_price
            reduce_only = goal == 0 or (
                Side.of_size(goal) == Side.of_size(current) and abs(goal) < abs(current)
            )
            if not reduce_only and market.min_notional and size * mark < market.min_notional:
                if attempt == 0 and current == 0:
                    raise SkipVenue(
                        f"order of {size} is below the venue's min notional {market.min_notional}"
                    )
                log.info(
                    "remainder_below_min_notional",
                    venue=name,
                    coin=op.coin,
                    signal_id=op.signal_id,
                    remainder=str(size),
                )
                return current, last_price
            if attempt >= self.config.max_attempts:
                raise GiveUp(f"gave up after {attempt} orders; exchange holds {current}, target {goal}")
            if attempt > 0:
                self._check_age(op, f"exchange holds {current}, target {goal}")
            leg = f"{leg_prefix}{attempt}"
            attempt += 1
            cid = make_client_id(op.op_id, name, leg)
            req = OrderRequest(
                coin=op.coin,
                is_buy=delta > 0,
                size=size,
                client_id=cid,
                reduce_only=reduce_only,
                limit_price=reference,
            )
            await self.fence.ensure_owner(name)  # a bot that lost the account journals nothing
            intent_at = utcnow()
            # The venue refuses this order after the in-flight window from its intent time: a send
            # held up past it (a paused owner woken after a takeover) can never land late.
            req = replace(req, not_after=self.intents.valid_until(venue, intent_at))
            # The venue builds and signs the order while its intent is being written, so signing is
            # not on the way from a durable intent to the order's bytes; nothing is sent before both.
            recording = asyncio.ensure_future(
                self.journal.record_intent(op.signal_id, name, op.coin, leg, cid, req)
            )
            prepared: PreparedOrder | None = None
            unprepared: VenueError | None = None
            try:
                prepared = await venue.prepare_order(req)
            except VenueError as exc:
                unprepared = exc  # the venue never saw it: handled below as a refusal before sending
            except BaseException:
                recording.add_done_callback(_settled_quietly)
                raise
            fresh_intent = await recording
            if fresh_intent is False:
                # This leg was sent before (a redelivery, or a run that crashed): never resend it
                # blindly; ask the venue what became of it, re-read, and go on with a new leg.
                log.warning(
                    "leg_already_sent", venue=name, coin=op.coin, signal_id=op.signal_id, client_id=cid
                )
                found = await self._resolve_earlier(venue, op.coin, op.signal_id, cid)
                if found is not None and found.avg_price is not None:
                    last_price = found.avg_price
                current = await self._fresh_size(name, venue, op)
                continue
            try:
                if unprepared is not None:
                    raise unprepared
                assert prepared is not None
                try:
                    await self.fence.ensure_owner(name)  # fencing: still ours at the moment of sending
                except NotOwner:
                    await self.journal.update_intent(
                        cid, "failed", error="fenced: never sent, the account moved"
                    )
                    raise
                self._crash_point(op.op_id, self._crash_before_send)  # test-only: intent durable, unsent
                if account is not None:
                    account.expect_order(cid, op.coin)
                outcome.latency.mark("sent", time.monotonic())
                result = await self._send(venue, prepared)
            except Ambiguous as exc:
                self.state.order_done(name, op.coin)
                await self.journal.update_intent(cid, "ambiguous", error=str(exc))
                log.warning(
                    "order_ambiguous", venue=name, coin=op.coin, signal_id=op.signal_id, client_id=cid
                )
                found = await self.intents.resolve(venue, op.coin, cid, intent_at, signal_id=op.signal_id)
                if found is not None:
                    outcome.orders.append(found)
                    if found.avg_price is not None:
                        last_price = found.avg_price
                current = await self._fresh_size(name, venue, op)
                continue
            except RateLimited as exc:
                self.state.order_done(name, op.coin)
                if account is not None:
                    account.forget_order(cid)  # refused before it reached the book
                await self.journal.update_intent(cid, "failed", error=f"rate limited: {exc}")
                if self.quarantine.note_rate_limited(name):
                    await self._announce_quarantine(
                        name, op.coin, self.quarantine.reason(name) or "rate limited"
                    )
                    raise GiveUp(f"venue quarantined: {self.quarantine.reason(name)}") from exc
                await self._backoff(op, attempt, exc.retry_after)
                current = await self._fresh_size(name, venue, op)
                continue
            except Transient as exc:
                self.state.order_done(name, op.coin)
                if account is not None:
                    account.order_answered(cid)  # the next snapshot settles it, pushed or not
                await self.journal.update_intent(cid, "failed", error=f"transient: {exc}")
                await self._backoff(op, attempt, exc.retry_after)
                current = await self._fresh_size(name, venue, op)
                continue
            except Rejected as exc:
                self.state.order_done(name, op.coin)
                if account is not None:
                    account.forget_order(cid)  # it did not move the position, pushed or not
                await self.journal.update_intent(cid, "rejected", error=str(exc))
                raise GiveUp(f"rejected: {exc}") from exc
            except VenueError as exc:
                self.state.order_done(name, op.coin)
                if account is not None:
                    account.order_answered(cid)
                await self.journal.update_intent(cid, "failed", error=str(exc))
                raise
            answered = time.monotonic()  # an IOC's answer carries its fill: one stamp for both
            self._crash_point(op.op_id)
            self.state.order_done(name, op.coin, answered)
            if account is not None:
                if result.status is OrderStatus.REJECTED:
                    account.forget_order(cid)  # never on the book: nothing will be pushed
                else:
                    account.order_answered(cid)
            outcome.latency.mark("acked", answered)
            await self.journal.update_intent(cid, intent_status(result), result=result)
            outcome.orders.append(result)
            self._publish(
                "order",
                venue=name,
                coin=op.coin,
                signal_id=op.signal_id,
                client_id=cid,
                side="buy" if req.is_buy else "sell",
                size=str(size),
                status=result.status.value,
                filled=str(result.filled_size),
                price=_fmt(result.avg_price),
            )
            if result.status is OrderStatus.REJECTED:
                raise GiveUp(f"rejected: {result.error or 'no reason given'}")
            if result.filled_size > 0:
                outcome.latency.stamps["filled"] = answered  # the last fill: when the target was reached
                last_price = result.avg_price or last_price
                self._publish(
                    "fill",
                    venue=name,
                    coin=op.coin,
                    signal_id=op.signal_id,
                    client_id=cid,
                    size=str(result.filled_size),
                    price=_fmt(result.avg_price),
                )
            if result.filled_size >= size:
                current = current + (result.filled_size if req.is_buy else -result.filled_size)
                continue
            # A partial (or empty) fill: the exchange, not our arithmetic, says what is missing.
            log.info(
                "partial_fill",
                venue=name,
                coin=op.coin,
                signal_id=op.signal_id,
                client_id=cid,
                asked=str(size),
                filled=str(result.filled_size),
            )
            current = await self._fresh_size(name, venue, op)

    async def _send(self, venue: Venue, prepared: PreparedOrder) -> OrderResult:
        """Send a prepared order, its bytes written before any other order's: sends interleaved on
        one event loop only delay each other (and the first order out is the race news trading
        runs). The turn passes on once the bytes are written, or at once when the send must first
        open a connection, or when it fails."""
        await self._wire_turn.acquire()
        holding = True

        def written() -> None:
            nonlocal holding
            if holding:
                holding = False
                self._wire_turn.release()

        try:
            return await venue.send_order(prepared, on_written=written)
        finally:
            written()

    async def _resolve_earlier(self, venue: Venue, coin: str, signal_id: str, cid: str) -> OrderResult | None:
        """What became of a leg an earlier run journaled, by the in-flight rule from its journal time."""
        earlier = await self.journal.intent(cid)
        if earlier is None or earlier.status not in UNRESOLVED:
            return None  # already resolved: the fresh read that follows shows what it did
        return await self.intents.resolve(venue, coin, cid, earlier.created_at, signal_id=signal_id)

    async def _fresh_size(self, name: str, venue: Venue, op: Operation) -> Decimal:
        self._rereads[(name, op.coin)] += 1
        started = time.monotonic()
        positions = await self._readers[name].read(started)
        held = positions.get(op.coin)
        return held.size if held is not None else ZERO

    async def _backoff(self, op: Operation, attempt: int, retry_after: float | None) -> None:
        delay = min(self.config.backoff_base_s * (2 ** (attempt - 1)), self.config.backoff_max_s)
        if retry_after is not None:
            delay = max(delay, retry_after)
        remaining = self.config.max_signal_age_s - self._age_s(op)
        if delay >= remaining:
            raise GiveUp(
                f"signal older than max_signal_age_s={self.config.max_signal_age_s:g} before a retry"
            )
        await asyncio.sleep(delay)

    def _age_s(self, op: Operation) -> float:
        return (utcnow() - op.created_at).total_seconds()

    def _check_age(self, op: Operation, state: str) -> None:
        if self._age_s(op) > self.config.max_signal_age_s:
            raise GiveUp(f"signal older than max_signal_age_s={self.config.max_signal_age_s:g}; {state}")

    async def resolve_coin(self, coin: str) -> str | None:
        """The venues' own spelling of `coin` (kPEPE, not KPEPE), or None when no venue lists it."""
        wanted = coin.strip().upper()
        for name, venue in self.venues.items():
            markets = self._markets.get(name)
            if markets is None:
                try:
                    markets = self._markets[name] = await venue.markets()
                except VenueError:
                    continue
            for listed in markets:
                if listed.upper() == wanted:
                    return listed
        return None

    async def _market(self, name: str, venue: Venue, coin: str) -> Market:
        markets = self._markets.get(name)
        if markets is None or coin not in markets:
            # One load per venue at a time: signals arriving together share it instead of each
            # reading the market table (Hyperliquid's `meta` costs 20 of 1200 weight a minute).
            async with self._market_loads.setdefault(name, asyncio.Lock()):
                markets = self._markets.get(name)
                if markets is None or coin not in markets:
                    markets = self._markets[name] = await venue.markets()
        market = markets.get(coin)
        if market is None:
            raise SkipVenue(f"{coin} is not listed on {name}")
        return market

    async def _equity(self, name: str) -> Decimal | None:
        """The venue account's equity for `sizing.equity_fraction`, re-read at most every 30 s."""
        cached = self._equity_seen.get(name)
        if cached is not None and time.monotonic() - cached[0] < EQUITY_TTL_S:
            return cached[1]
        venue = self.venues[name]
        if not isinstance(venue, ReportsEquity):
            return None  # the sizer skips with the reason
        value = await venue.equity()
        self._equity_seen[name] = (time.monotonic(), value)
        return value

    async def _ensure_leverage(self, name: str, coin: str, leverage: int) -> None:
        """Set leverage on the venue before the first order on a coin (and when it changes)."""
        if self._leverage_done.get((name, coin)) == leverage:
            return
        try:
            await self.venues[name].set_leverage(coin, leverage)
        except Rejected as exc:
            raise GiveUp(f"leverage {leverage} refused: {exc}") from exc
        self._leverage_done[(name, coin)] = leverage

    async def _cached_size(self, name: str, coin: str) -> Decimal | None:
        cached = (await self.journal.cached_positions(name)).get((name, coin))
        return None if cached is None else cached.size

    async def _reconcile_cache(
        self, name: str, op: Operation, held: Position | None, cached: Decimal | None
    ) -> None:
        """Bring the cache in line with the exchange and record what differed."""
        exchange = held.size if held is not None else ZERO
        local = cached if cached is not None else ZERO
        if exchange == local:
            return
        if exchange == 0:
            kind, message = (
                "stale_local_cleared",
                "cache had a position the exchange does not hold; cleared stale local record",
            )
            await self.journal.clear_cached_position(name, op.coin)
        elif local == 0:
            kind, message = (
                "missing_local_adopted",
                "no local record but the exchange holds a position: adopted, closed/flipped and synced",
            )
            await self.journal.set_cached_position(
                name, op.coin, exchange, held.entry_price if held else ZERO
            )
        else:
            kind, message = (
                "size_mismatch",
                "exchange and cache disagree on the size; cache set to the exchange's",
            )
            await self.journal.set_cached_position(
                name, op.coin, exchange, held.entry_price if held else ZERO
            )
        await self.journal.record_event(
            kind, name, op.coin, exchange, cached, detail=f"signal {op.signal_id}"
        )
        log.warning(
            kind,
            venue=name,
            coin=op.coin,
            signal_id=op.signal_id,
            exchange_size=str(exchange),
            cached_size=_fmt(cached),
            message=message,
        )
        self._publish(
            "drift",
            kind=kind,
            venue=name,
            coin=op.coin,
            exchange_size=str(exchange),
            cached_size=_fmt(cached),
            signal_id=op.signal_id,
        )

    async def _after_change(
        self, name: str, op: Operation, size: Decimal, fill_price: Decimal | None, entry: Decimal | None
    ) -> None:
        if size == 0:
            await self.journal.clear_cached_position(name, op.coin)
        else:
            await self.journal.set_cached_position(name, op.coin, size, entry or ZERO)
        position = Position(venue=name, coin=op.coin, size=size, entry_price=entry or ZERO)
        try:
            await self.hooks.after_position_change(
                name, op.coin, position, fill_price, op_id=f"{op.op_id}:{name}:{op.coin}:{size}"
            )
        except Exception as exc:  # a hook's failure must not undo or hide the trade
            log.error(
                "after_position_change_failed",
                venue=name,
                coin=op.coin,
                signal_id=op.signal_id,
                error=repr(exc),
            )

    async def _quarantine(self, name: str, coin: str, reason: str) -> None:
        if self.quarantine.quarantine(name, reason):
            await self._announce_quarantine(name, coin, reason)

    async def _announce_quarantine(self, name: str, coin: str, reason: str) -> None:
        log.error("venue_quarantined", venue=name, coin=coin, reason=reason, alert=True)
        await self.journal.record_event("venue_quarantined", name, coin, None, None, detail=reason)
        self._publish("alert", kind="venue_quarantined", venue=name, reason=reason)

    async def _release(self, name: str, coin: str) -> None:
        if self.quarantine.release(name):
            log.warning("venue_released", venue=name, coin=coin, message="health read succeeded")
            await self.journal.record_event(
                "venue_released", name, coin, None, None, detail="health read succeeded"
            )
            self._publish("alert", kind="venue_released", venue=name)

    async def release_if_healthy(self, name: str) -> bool:
        """Probe a quarantined venue with a read; lift the quarantine when it succeeds."""
        if not self.quarantine.is_quarantined(name):
            return True
        try:
            await self.venues[name].positions()
        except VenueError:
            return False
        await self._release(name, "")
        return True

    async def _finish(self, name: str, op: Operation, outcome: VenueOutcome, action: str) -> None:
        """Journal the outcome with its latency ledger and write the one line the seed asked for."""
        ledger = outcome.latency
        try:
            if not await self.journal.record_outcome(op.signal_id, outcome):
                # Another run (a woken owner after a takeover, a resumed operation) journaled this
                # (signal, venue) first; its record stands, this run's is only logged.
                log.warning("outcome_already_journaled", venue=name, coin=op.coin, signal_id=op.signal_id)
        except Exception as exc:
            log.error(
                "outcome_not_journaled", venue=name, coin=op.coin, signal_id=op.signal_id, error=repr(exc)
            )
        before = outcome.exchange_size_before
        event = log.info if outcome.status is not OutcomeStatus.FAILED else log.error
        event(
            "venue_outcome",
            venue=name,
            coin=op.coin,
            signal_id=op.signal_id,
            operation=op.action_name,
            exchange_size=_fmt(before),
            exchange_side=_side_name(before),
            cached_size=_fmt(outcome.cached_size_before),
            target_size=_fmt(outcome.target_size),
            exchange_size_after=_fmt(outcome.exchange_size_after),
            action=action,
            status=outcome.status.value,
            reason=outcome.reason or None,
            orders=len(outcome.orders),
            decide_ms=ledger.ms_between("received", "decided"),
            ack_ms=ledger.ms_between("received", "acked"),
            fill_ms=ledger.ms_between("received", "filled"),
        )
        self._publish(
            "outcome",
            venue=name,
            coin=op.coin,
            signal_id=op.signal_id,
            status=outcome.status.value,
            reason=outcome.reason,
            action=action,
            exchange_size_after=_fmt(outcome.exchange_size_after),
            ack_ms=ledger.ms_between("received", "acked"),
            fill_ms=ledger.ms_between("received", "filled"),
        )

    def _publish(self, event_type: str, **fields: Any) -> None:
        if self.publish is None:
            return
        try:
            self.publish({"type": event_type, **fields})
        except Exception as exc:  # the dashboard must never break trading
            log.warning("publish_failed", event_type=event_type, error=repr(exc))
