"""`AccountState`: one venue account as its websocket pushes it, and the loop that keeps it fed.

The exchange is the truth; this is a view of it that the venue keeps current by pushing. It holds
positions, open orders and triggers (ours and others'), recent fills and mark prices. It is
*current* only while all of these hold:

- a REST snapshot was applied since the socket last (re)connected, with no gap since then (a
  disconnect, a failed keepalive or an expired listenKey each open a gap until the next snapshot);
- the last message or pong is younger than `max_silence_s` (`[engine] stream_max_silence_ms`);
- every order we sent has been reported by the stream (`expect_order` / `order_reported`).

For each of our orders it also keeps the position the stream showed for the order's coin when it
reported the order (`position_at_report`): what tells the engine a stream that was behind before
our order from an outside change that landed after our fill.

`AccountStream` runs one connection per adapter: connect, subscribe, REST snapshot, then deltas;
a heartbeat; reconnect with capped exponential backoff. The venue modules (`hyperliquid/stream.py`,
`aster/stream.py`) say how to subscribe, snapshot and read their messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from newstrader.domain import Fill, OpenOrder, Position
from newstrader.venues.limits import Priority, request_priority

if TYPE_CHECKING:
    from newstrader.venues.base import Venue

log = structlog.get_logger(__name__)

DEFAULT_MAX_SILENCE_S = 5.0
RECENT_FILLS = 500
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 10.0
# Orders we sent that the stream has not reported after this long open a gap: a push was lost.
ORDER_REPORT_GRACE_S = 5.0
# Our orders whose report (the stream's position as of it) is kept for the engine's check.
REPORTS_KEPT = 256

# read_triggers: how long a stream that cannot vouch for the triggers (resyncing, silent) is
# waited for before the venue is read instead.
TRIGGERS_WAIT_S = 1.0
UNKNOWN_KIND = "order of unknown kind"

PositionSource = Literal["push", "snapshot"]
AtReport = Literal["ours", "behind", "unknown"]  # see AccountState.position_at_report
PositionListener = Callable[[str, Position | None, Position | None, PositionSource], None]


@dataclass(slots=True)
class _Expected:
    """One of our orders the stream has not reported yet."""

    coin: str | None
    sent_at: float
    answered_at: float | None = None


@dataclass(slots=True)
class _Report:
    """The stream's position for one of our orders' coin as of its first report of that order, and
    at the first position message for the coin after it (a venue may push the order first)."""

    coin: str
    size: Decimal
    next_size: Decimal | None = None


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """What a page or the engine needs to know about a venue's stream."""

    venue: str
    connected: bool
    current: bool
    reason: str  # why it is not current ("" when it is)
    snapshot_age_s: float | None  # since the last REST snapshot
    silence_s: float | None  # since the last message or pong

    def describe(self) -> str:
        """One line for a page: current, or what is shown instead."""
        if self.current:
            return "stream current"
        age = (
            "no snapshot yet"
            if self.snapshot_age_s is None
            else f"REST snapshot from {self.snapshot_age_s:.0f} s ago"
        )
        return f"stream down ({self.reason}), showing {age}"


class AccountState:
    """One account on one venue, kept by its stream (and REST snapshots); read by everyone else."""

    def __init__(
        self,
        venue: str,
        max_silence_s: float = DEFAULT_MAX_SILENCE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.venue = venue
        self.max_silence_s = max_silence_s
        self._clock = clock
        self.positions: dict[str, Position] = {}
        self.open_orders: dict[str, OpenOrder] = {}  # venue order id → order
        self.fills: deque[Fill] = deque(maxlen=RECENT_FILLS)
        self._fill_ids: set[str] = set()
        self.fills_seen = 0  # fills ever added (the deque keeps the newest RECENT_FILLS)
        # The venue replays recent fills on every (re)subscribe (Hyperliquid's `userFills`
        # snapshot): a reconnect then loses no fill, and needs no REST fills read.
        self.fills_replayed_on_connect = False
        self.marks: dict[str, Decimal] = {}
        self.connected = False
        self.snapshot_at: float | None = None
        self.heard_at: float | None = None
        self._gap: str | None = "not connected"
        self._expected: dict[str, _Expected] = {}  # client id → our order the stream has yet to report
        self._reports: dict[str, _Report] = {}  # client id → position as of its report (newest kept)
        self._awaiting_next: dict[str, list[_Report]] = {}  # coin → reports with no position message since
        self._snapshot_began: float | None = None
        self._final_orders: set[str] = set()  # venue order ids that reached a final status
        # Our own TP/SL triggers by client id, as we sent them: a push may not name the kind
        # (Hyperliquid's orderUpdates do not), our send and its ack do.
        self._own_triggers: dict[str, OpenOrder] = {}
        # Resting orders pushed without a kind we could tell (e.g. an outside order on Hyperliquid):
        # until they are gone or a snapshot names them, their coin's triggers are not known.
        self._unknown_kind: set[str] = set()
        self._listeners: list[PositionListener] = []
        # Pushed while a snapshot read is in flight: newer than (or as new as) what it returns.
        self._pushed_coins: set[str] = set()
        self._pushed_orders: dict[str, OpenOrder | None] = {}
        self._changed = asyncio.Event()
        self.version = 0

    # ----- reading ----------------------------------------------------------------------------

    def status(self) -> StreamStatus:
        now = self._clock()
        silence = None if self.heard_at is None else now - self.heard_at
        return StreamStatus(
            venue=self.venue,
            connected=self.connected,
            current=self._reason(now) == "",
            reason=self._reason(now),
            snapshot_age_s=None if self.snapshot_at is None else now - self.snapshot_at,
            silence_s=silence,
        )

    def now(self) -> float:
        """This state's clock (monotonic seconds), for callers that time themselves against it."""
        return self._clock()

    def is_current(self) -> bool:
        return self._reason(self._clock()) == ""

    def _reason(self, now: float, *, orders: bool = True) -> str:
        if self._gap is not None:
            return self._gap
        if self.heard_at is None or now - self.heard_at > self.max_silence_s:
            return "silent"
        return self._unreported(now, self._expected.values()) if orders else ""

    @staticmethod
    def _unreported(now: float, expected: Iterable[_Expected]) -> str:
        """Why our orders keep the state from being current ("" when none does).

        "order never reported" (the session redials and resyncs) only for an order the venue
        answered more than `ORDER_REPORT_GRACE_S` ago: its push was lost, and a snapshot begun
        after the answer settles it. An order without an answer yet (its reply lost: in flight)
        cannot be settled by a snapshot, so redialing would only spend the budget; it keeps the
        state not current until it is pushed, answered or forgotten by the in-flight rule."""
        waiting = list(expected)
        if not waiting:
            return ""
        if any(e.answered_at is not None and now - e.answered_at > ORDER_REPORT_GRACE_S for e in waiting):
            return "order never reported"
        return "order not reported yet"

    def current_for(self, coin: str) -> bool:
        """Current as far as `coin` goes: no gap, not silent, and every order we sent on `coin`
        (or on no stated coin) reported. Our orders on other coins cannot move this position."""
        now = self._clock()
        if self._gap is not None or self.heard_at is None or now - self.heard_at > self.max_silence_s:
            return False
        return not self._unreported(now, (e for e in self._expected.values() if e.coin in (None, coin)))

    async def wait_current_for(self, coin: str, timeout_s: float) -> bool:
        """Wait (bounded) until `current_for(coin)`; False on timeout."""
        deadline = self._clock() + timeout_s
        while not self.current_for(coin):
            left = deadline - self._clock()
            if left <= 0:
                return False
            await self.wait_changed(min(left, 0.05))
        return True

    def position(self, coin: str) -> Position | None:
        return self.positions.get(coin)

    def position_at_report(self, client_id: str, before: Decimal, after: Decimal) -> AtReport | None:
        """What the stream showed for the coin as of its report of our order `client_id`, taken
        on `before` (the position we decided from) and `after` (`before` plus our fill). Pushes
        carry absolute positions, so a stream that was behind (an outside trade before our
        order whose push had not arrived) shows that trade on top of ours here.

        "ours": `after` at the report, or `before` there and `after` at the next position
        message (a venue may push the order before the position it moved): the stream was not
        behind. "behind": neither `before` nor `after` at the report. "unknown": `before` at the
        report and something else next (the fill's push lost, then another change). None while
        it cannot say yet: the order unreported, or reported at `before` with no position since."""
        report = self._reports.get(client_id)
        if report is None:
            return None
        if report.size == after:
            return "ours"
        if report.size != before:
            return "behind"
        if report.next_size is None:
            return None
        return "ours" if report.next_size == after else "unknown"

    async def wait_position_at_report(
        self, client_id: str, before: Decimal, after: Decimal, timeout_s: float
    ) -> AtReport | None:
        """`position_at_report`, waited for (bounded) while it cannot say yet; None on timeout."""
        deadline = self._clock() + timeout_s
        while (said := self.position_at_report(client_id, before, after)) is None:
            left = deadline - self._clock()
            if left <= 0:
                return None
            await self.wait_changed(min(left, 0.05))
        return said

    def triggers(self, coin: str | None = None) -> list[OpenOrder]:
        """Resting TP/SL triggers (ours and others'), optionally of one coin."""
        return [
            o
            for o in self.open_orders.values()
            if o.trigger_kind is not None and (coin is None or o.coin == coin)
        ]

    def known_triggers(self, coin: str | None = None) -> list[OpenOrder] | None:
        """The resting TP/SL triggers of `coin` (of every coin for None) when the state can vouch
        for them, else None: then read the venue.

        It can when there is no gap and no silence, every trigger we sent is acked or reported,
        and every resting order there is of a known kind. Orders of ours still unreported do not
        matter here: a plain order is no trigger, and our triggers are known from their acks.
        """
        return None if self.triggers_unknown(coin) else self.triggers(coin)

    def triggers_unknown(self, coin: str | None = None) -> str:
        """Why the state cannot vouch for the triggers of `coin` (every coin for None); "" when it can."""
        reason = self._reason(self._clock(), orders=False)
        if reason:
            return reason
        resting = {o.client_id for o in self.open_orders.values()}
        if any(
            cid in self._expected and cid not in resting and (coin is None or sent.coin == coin)
            for cid, sent in self._own_triggers.items()
        ):
            return "trigger sent, not answered"  # it may rest where we cannot see it
        unknown = (self.open_orders[oid] for oid in self._unknown_kind if oid in self.open_orders)
        if any(coin is None or o.coin == coin for o in unknown):
            return UNKNOWN_KIND
        return ""

    def fills_since_read(self, read_started: float, seen_then: int) -> list[Fill] | None:
        """Every fill since a REST fills read that began at `read_started` (this state's clock,
        `fills_seen` then), or None when the pushes cannot vouch for that: a gap since, a
        connection newer than the read (a push may have been missed between, unless the venue
        replays recent fills on connect), or more fills than the state keeps."""
        if self._gap is not None or self.snapshot_at is None:
            return None
        if self.snapshot_at > read_started and not self.fills_replayed_on_connect:
            return None
        if self.fills_seen - seen_then > RECENT_FILLS:
            return None
        return list(self.fills)

    def on_position(self, listener: PositionListener) -> None:
        """Hear every position change: (coin, before, after, 'push' | 'snapshot')."""
        self._listeners.append(listener)

    async def wait_changed(self, timeout_s: float) -> bool:
        """Wait for the next change; False on timeout."""
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # ----- our own orders ---------------------------------------------------------------------

    def expect_order(self, client_id: str, coin: str | None = None) -> None:
        """We are sending this order: the state (for `coin`; all coins when None) is not current
        until the stream reports it."""
        self._expected[client_id] = _Expected(coin, self._clock())

    def order_answered(self, client_id: str) -> None:
        """The venue answered us about this order (its reply, or a status read): a REST snapshot
        that starts after now shows what it did, so the next one settles it even if the push was lost."""
        expected = self._expected.get(client_id)
        if expected is not None and expected.answered_at is None:
            expected.answered_at = self._clock()

    def forget_order(self, client_id: str) -> None:
        """The order never executed (refused before it reached the book): nothing will be pushed."""
        self.order_reported(client_id)

    def order_reported(self, client_id: str | None) -> None:
        if client_id is None:
            return
        expected = self._expected.pop(client_id, None)
        if expected is not None:
            self._note_report(client_id, expected)
            self._bump()

    def _note_report(self, client_id: str, expected: _Expected) -> None:
        """Keep the position the stream shows for the order's coin now, as it reports the order."""
        if expected.coin is None:
            return
        held = self.positions.get(expected.coin)
        report = _Report(expected.coin, held.size if held is not None else Decimal(0))
        self._reports[client_id] = report
        waiting = self._awaiting_next.setdefault(expected.coin, [])
        waiting.append(report)
        del waiting[:-REPORTS_KEPT]
        while len(self._reports) > REPORTS_KEPT:
            del self._reports[next(iter(self._reports))]

    def sending_trigger(self, order: OpenOrder) -> None:
        """We are sending this TP/SL trigger (`client_id` as the stream will name it; the venue order
        id is not known yet): remember its kind and price, and expect the stream to report it."""
        assert order.client_id is not None
        self._own_triggers[order.client_id] = order
        self.expect_order(order.client_id, order.coin)

    def trigger_acked(self, client_id: str, venue_order_id: str | None, resting: bool) -> None:
        """The venue answered our trigger: resting under `venue_order_id`, or not placed. Known at
        once, before (or after) its push; a refused trigger is never reported, so not expected."""
        sent = self._own_triggers.get(client_id)
        if sent is None:
            return
        if not resting or venue_order_id is None:
            self._own_triggers.pop(client_id, None)
            self.order_reported(client_id)
            return
        self.order_answered(client_id)  # a snapshot begun after now shows it, should its push be lost
        if venue_order_id in self._final_orders:
            return  # its push (fired, cancelled) came first
        self._unknown_kind.discard(venue_order_id)
        self.open_orders[venue_order_id] = replace(
            sent, venue_order_id=venue_order_id, size=self._resting_size(venue_order_id, sent.size)
        )
        self._bump()

    def trigger_cancelled(self, venue_order_id: str, client_id: str | None = None) -> None:
        """Our cancel of a trigger was confirmed (or the venue says it was already gone)."""
        self.order_update(venue_order_id, None, client_id)

    def _resting_size(self, venue_order_id: str, default: Decimal) -> Decimal:
        pushed = self.open_orders.get(venue_order_id)
        return pushed.size if pushed is not None else default

    # ----- feeding ----------------------------------------------------------------------------

    def heard(self) -> None:
        """A message or a pong arrived."""
        self.heard_at = self._clock()

    def mark_gap(self, reason: str) -> None:
        """Something may have been missed: not current until the next snapshot."""
        if self._gap is None:
            log.warning("stream_gap", venue=self.venue, reason=reason)
        self._gap = reason
        self._bump()

    def set_connected(self, connected: bool) -> None:
        self.connected = connected
        if not connected:
            self.mark_gap("disconnected")

    def begin_snapshot(self) -> None:
        """A REST read is about to go out: pushes from now on win over what it returns."""
        self._pushed_coins = set()
        self._pushed_orders = {}
        self._snapshot_began = self._clock()

    def apply_snapshot(
        self,
        positions: dict[str, Position],
        open_orders: Iterable[OpenOrder],
        fills: Iterable[Fill] = (),
        marks: dict[str, Decimal] | None = None,
    ) -> None:
        """A fresh REST read (started at `begin_snapshot`): replace positions and orders, except
        what was pushed meanwhile; the gap (if any) is closed."""
        for coin in (set(self.positions) | set(positions)) - self._pushed_coins:
            self._set_position(coin, positions.get(coin), "snapshot")
        orders = {o.venue_order_id: o for o in open_orders if o.venue_order_id not in self._final_orders}
        for oid, pushed in self._pushed_orders.items():
            if pushed is None:
                orders.pop(oid, None)
            else:
                orders[oid] = pushed
        self.open_orders = orders
        # The snapshot names every kind; only orders pushed meanwhile may still lack one.
        self._unknown_kind &= {oid for oid, o in self._pushed_orders.items() if o is not None}
        live = {o.client_id for o in orders.values()}
        self._own_triggers = {c: o for c, o in self._own_triggers.items() if c in live or c in self._expected}
        for order in self.open_orders.values():
            self.order_reported(order.client_id)
        # Our orders answered before this read began are in it (an IOC that filled is not in the
        # open orders, but its position is): their pushes, if lost in a gap, are not needed.
        began = self._snapshot_began
        for cid, expected in list(self._expected.items()):
            if began is not None and expected.answered_at is not None and expected.answered_at <= began:
                del self._expected[cid]
                self._note_report(cid, expected)
        for fill in fills:
            self.add_fill(fill)
        if marks:
            self.marks.update(marks)
        self.snapshot_at = self._clock()
        self.heard()
        if self._gap is not None:
            log.info("stream_resynced", venue=self.venue, after=self._gap)
        self._gap = None
        self._bump()

    def set_position(self, coin: str, position: Position | None) -> None:
        """A pushed position (None or size 0: flat)."""
        self._pushed_coins.add(coin)
        self._set_position(coin, position, "push")
        self._bump()

    def _set_position(self, coin: str, position: Position | None, source: PositionSource) -> None:
        if position is not None and position.size == 0:
            position = None
        before = self.positions.get(coin)
        if position is None:
            self.positions.pop(coin, None)
        else:
            self.positions[coin] = position
        for report in self._awaiting_next.pop(coin, ()):
            report.next_size = position.size if position is not None else Decimal(0)
        if (before.size if before else Decimal(0)) != (position.size if position else Decimal(0)):
            for listener in self._listeners:
                listener(coin, before, position, source)

    def order_update(
        self,
        venue_order_id: str,
        order: OpenOrder | None,
        client_id: str | None,
        *,
        kind_known: bool = True,
    ) -> None:
        """An order's new state: resting (`order`) or gone (None: filled, cancelled, rejected).

        `kind_known=False`: the push could not say whether it is a trigger (Hyperliquid's
        orderUpdates); one of our own triggers is then completed from what we sent."""
        if venue_order_id in self._final_orders:
            return  # never move an order out of a final status
        sent = self._own_triggers.get(client_id) if client_id is not None else None
        if order is not None and sent is not None and order.trigger_kind is None:
            order = replace(
                order,
                trigger_kind=sent.trigger_kind,
                trigger_price=sent.trigger_price,
                reduce_only=sent.reduce_only,
                is_buy=sent.is_buy,
            )
            kind_known = True
        # An order the snapshot or our ack already named keeps its kind whatever the push says.
        kind_known = kind_known or (
            venue_order_id in self.open_orders and venue_order_id not in self._unknown_kind
        )
        self._pushed_orders[venue_order_id] = order
        if order is None:
            self._final_orders.add(venue_order_id)
            self.open_orders.pop(venue_order_id, None)
            self._unknown_kind.discard(venue_order_id)
            if client_id is not None:
                self._own_triggers.pop(client_id, None)
        else:
            self.open_orders[venue_order_id] = order
            if kind_known:
                self._unknown_kind.discard(venue_order_id)
            else:
                self._unknown_kind.add(venue_order_id)
        self.order_reported(client_id)
        self._bump()

    def add_fill(self, fill: Fill) -> bool:
        """Record a fill once (deduplicated by id); True when it was new."""
        if fill.fill_id in self._fill_ids:
            return False
        if len(self.fills) == self.fills.maxlen:
            self._fill_ids.discard(self.fills[0].fill_id)
        self.fills.append(fill)
        self._fill_ids.add(fill.fill_id)
        self.fills_seen += 1
        self.order_reported(fill.client_id)
        self._bump()
        return True

    def set_marks(self, marks: dict[str, Decimal]) -> None:
        self.marks.update(marks)

    def _bump(self) -> None:
        self.version += 1
        self._changed.set()


class AccountStream:
    """One websocket connection feeding an `AccountState`: connect, subscribe, snapshot, deltas.

    Subclasses give `url()`, `subscribe(ws)`, `snapshot()`, `handle(message)` and optionally
    `heartbeat(ws)` and `keepalive()`; this class runs the loop, the reconnects and the silence
    watch. `start()` returns at once; `wait_current()` waits for the first snapshot.
    """

    def __init__(self, state: AccountState, ping_interval_s: float | None = None) -> None:
        self.state = state
        self.ping_interval_s = ping_interval_s or max(0.5, state.max_silence_s / 3)
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self.connects = 0
        self._rng = random.Random()

    # ----- what a venue provides ------------------------------------------------------------------

    async def url(self) -> str:
        raise NotImplementedError

    async def subscribe(self, ws: ClientConnection) -> None:
        """Send the subscriptions (before the snapshot, so nothing after it is missed)."""

    async def snapshot(self) -> None:
        """Read the account over REST and `state.apply_snapshot(...)` it."""
        raise NotImplementedError

    def handle(self, message: Any) -> None:
        """Apply one decoded message to the state."""
        raise NotImplementedError

    async def heartbeat(self, ws: ClientConnection) -> None:
        """Prove the connection alive once per `ping_interval_s` (default: a protocol ping).

        A protocol pong comes from the server's socket layer, not from the feed, so it does not
        count as heard: a venue using this default must push something at least as often as
        `max_silence_s` (Aster: the 1 s mark-price stream).
        """
        pong = await ws.ping()
        await asyncio.wait_for(pong, self.state.max_silence_s)

    async def keepalive(self) -> None:
        """Called once per `ping_interval_s` beside the heartbeat (Aster: the listenKey PUT)."""

    # ----- the loop ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            # Everything the stream spends (listenKey, snapshots) ranks after orders and pre-trade reads.
            with request_priority(Priority.RECONCILE):
                self._task = asyncio.create_task(self._run(), name=f"account-stream-{self.state.venue}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.state.set_connected(False)

    async def wait_current(self, timeout_s: float) -> bool:
        """Wait until the state is current (e.g. after start or a fault); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while not self.state.is_current():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await self.state.wait_changed(min(left, 0.05))
        return True

    async def reconnect(self) -> None:
        """Drop the connection now (e.g. the engine saw a stale state); the loop dials again."""
        if self._ws is not None:
            await self._ws.close()

    async def _run(self) -> None:
        backoff = BACKOFF_FIRST_S
        while True:
            synced_before = self.state.snapshot_at
            try:
                await self._session()
                backoff = BACKOFF_FIRST_S
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: count it, back off, dial again
                log.warning(
                    "stream_failed", venue=self.state.venue, error=f"{type(exc).__name__}: {exc}"[:300]
                )
            if self.state.snapshot_at != synced_before:
                # The session got current before it ended: a new fault, not a venue refusing us,
                # so the next dial starts from the shortest backoff (sessions end in errors).
                backoff = BACKOFF_FIRST_S
            self.state.set_connected(False)
            await asyncio.sleep(backoff * (0.5 + self._rng.random()))
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _session(self) -> None:
        with request_priority(Priority.PRE_TRADE):  # e.g. Aster's listenKey: see the snapshot below
            url = await self.url()
        async with connect(url, ping_interval=None, max_size=2**24, open_timeout=10) as ws:
            self._ws = ws
            self.connects += 1
            self.state.connected = True
            self.state.mark_gap("resyncing")
            self.state.heard()
            reader = asyncio.create_task(self._read(ws))
            tasks = [reader]
            try:
                await self.subscribe(ws)
                self.state.begin_snapshot()
                # The resync is what spares the trading path its reads: it must not queue behind
                # them (while the stream is down, pre-trade reads and orders can keep the bucket
                # under the reconciliation reserve, and the stream would never come back).
                with request_priority(Priority.PRE_TRADE):
                    await self.snapshot()
                log.info("stream_current", venue=self.state.venue, connects=self.connects)
                tasks.append(asyncio.create_task(self._watch(ws)))
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                self._ws = None
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            self.state.heard()
            text = raw.decode() if isinstance(raw, bytes) else raw
            try:
                message = json.loads(text)
            except ValueError:
                continue  # e.g. HL's "Websocket connection established."
            self.handle(message)

    async def _watch(self, ws: ClientConnection) -> None:
        """Heartbeat and keepalive; a silence past `max_silence_s` (a stall) ends the session."""
        try:
            while True:
                await asyncio.sleep(self.ping_interval_s)
                await self.keepalive()
                await self.heartbeat(ws)
                status = self.state.status()
                if status.silence_s is not None and status.silence_s > self.state.max_silence_s:
                    raise TimeoutError(f"silent for {status.silence_s:.1f} s")
                if status.reason == "order never reported":
                    raise TimeoutError("an order we sent was never reported")
        except (TimeoutError, WebSocketException) as exc:
            self.state.mark_gap("silent" if isinstance(exc, TimeoutError) else "disconnected")
            raise
        finally:
            with contextlib.suppress(Exception):
                await ws.close()


@dataclass(frozen=True, slots=True)
class Observed:
    """What an observer (dashboard, CLI, /metrics) is shown for one venue, and where it came from."""

    positions: dict[str, Position]
    open_orders: list[OpenOrder]
    source: Literal["stream", "rest"]
    note: str  # "stream current" or "stream down (…), showing REST snapshot from 3 s ago"
    age_s: float  # age of what is shown (0 for a current stream)


class AccountView:
    """Observers' reads of one venue: the stream's state when it is current, never a REST request
    per page view, and never an answer that waits on the venue.

    When the stream is not current (or the venue has none), a REST snapshot is refreshed in the
    background at most once per `refresh_s` (one read in flight at a time, at background
    priority, which the rate limiter may hold for seconds behind trading) and the last one is
    shown with its age; until the first one lands, the stream's last state. Only when there is
    nothing to show at all (just started: no snapshot of either kind) is one waited for, at most
    `first_wait_s`, and then an error row says the snapshot is pending.
    """

    def __init__(
        self,
        venue: Venue,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        first_wait_s: float = 5.0,
    ) -> None:
        self.venue = venue
        self.refresh_s = refresh_s
        self.first_wait_s = first_wait_s
        self._clock = clock
        self._rest: tuple[dict[str, Position], list[OpenOrder]] | None = None
        self._rest_at = float("-inf")
        self._tried_at = float("-inf")
        self._refreshing: asyncio.Task[None] | None = None
        self._failure: Exception | None = None
        self.rest_reads = 0

    @property
    def state(self) -> AccountState | None:
        return pushed_state(self.venue)

    async def read(self) -> Observed:
        state = self.state
        if state is not None and state.is_current():
            return Observed(
                dict(state.positions), list(state.open_orders.values()), "stream", "stream current", 0.0
            )
        refreshing = self._refresh_if_due()
        if self._rest is None and refreshing is not None and (state is None or state.snapshot_at is None):
            # Nothing to show at all yet (a bot just started): wait, bounded, for the first REST
            # snapshot or the stream's, whichever lands first. asyncio.wait never cancels the read.
            deadline = self._clock() + self.first_wait_s
            while not refreshing.done() and (state is None or state.snapshot_at is None):
                if (left := deadline - self._clock()) <= 0:
                    break
                await asyncio.wait({refreshing}, timeout=min(left, 0.05))
            if state is not None and state.is_current():
                return await self.read()
        reason = state.status().reason if state is not None else "no stream"
        if self._rest is None:
            if state is not None and state.snapshot_at is not None:
                age = self._clock() - (state.heard_at or state.snapshot_at)
                note = f"stream down ({reason}), showing its state from {age:.0f} s ago; REST read pending"
                return Observed(dict(state.positions), list(state.open_orders.values()), "stream", note, age)
            if self._failure is not None:
                raise self._failure
            from newstrader.venues.base import Transient  # base imports this module for typing only

            raise Transient(f"stream down ({reason}), REST snapshot pending", venue=self.venue.name)
        positions, orders = self._rest
        age = self._clock() - self._rest_at
        note = f"stream down ({reason}), showing REST snapshot from {age:.0f} s ago"
        return Observed(dict(positions), list(orders), "rest", note, age)

    def _refresh_if_due(self) -> asyncio.Task[None] | None:
        """Start the background REST refresh when due (single flight); the task in flight, if any."""
        if self._refreshing is not None and not self._refreshing.done():
            return self._refreshing
        if self._clock() - self._tried_at < self.refresh_s:
            return None
        self._tried_at = self._clock()
        self._refreshing = asyncio.create_task(self._refresh(), name=f"view-refresh-{self.venue.name}")
        return self._refreshing

    async def _refresh(self) -> None:
        try:
            with request_priority(Priority.BACKGROUND):
                positions, orders = await asyncio.gather(self.venue.positions(), self.venue.open_orders())
        except Exception as exc:  # shown on the page; the next view tries again after refresh_s
            self._failure = exc
            log.warning("view_refresh_failed", venue=self.venue.name, error=str(exc))
            return
        else:
            self._rest, self._rest_at, self._failure = (positions, orders), self._clock(), None
            self.rest_reads += 1
        finally:
            # The next refresh is due `refresh_s` after this one ended, not began: a read the
            # limiter held back is not followed at once by another (Aster's snapshot weighs 45,
            # more than its 20 a second refill over a 2 s period).
            self._tried_at = self._clock()

    async def close(self) -> None:
        """Stop a refresh in flight (the bot is stopping)."""
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refreshing
            self._refreshing = None


def pushed_state(venue: Venue) -> AccountState | None:
    """The venue's pushed account state (None for a venue without a stream)."""
    from newstrader.venues.base import Streaming  # base imports this module for typing only

    return venue.stream.state if isinstance(venue, Streaming) else None


async def read_positions(venue: Venue) -> dict[str, Position]:
    """The account's positions for upkeep: from the stream while it is current, else one REST read."""
    state = pushed_state(venue)
    if state is not None and state.is_current():
        return dict(state.positions)
    return await venue.positions()


async def read_triggers(venue: Venue, coin: str | None = None) -> list[OpenOrder]:
    """The resting TP/SL triggers of `coin` (every coin for None): from the stream when it can vouch
    for them (`AccountState.known_triggers`), else one open-orders read (Hyperliquid
    `frontendOpenOrders`, weight 20)."""
    state = pushed_state(venue)
    why = state.triggers_unknown(coin) if state is not None else "no stream"
    if why and state is not None and why != UNKNOWN_KIND:
        # A reconnect usually resyncs within a round trip or two, its snapshot naming every
        # trigger: wait that long rather than pay for a read of our own (the old triggers
        # still rest meanwhile). An order of unknown kind stays unknown: read at once.
        deadline = state.now() + TRIGGERS_WAIT_S
        while why and why != UNKNOWN_KIND and (left := deadline - state.now()) > 0:
            await state.wait_changed(left)
            why = state.triggers_unknown(coin)
    if not why and state is not None:
        return state.triggers(coin)
    log.info("triggers_read_from_venue", venue=venue.name, coin=coin, reason=why)
    return [o for o in await venue.open_orders(coin) if o.trigger_kind is not None]
