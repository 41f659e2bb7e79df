"""`[engine] position_source = "stream"`: decide from the account stream, check over REST after the order.

The executor runs in-process over the real adapters (`build_venue`, their account streams
started) and the real journal, against the simulator process. The simulator's websocket faults
make a push late (`ws_stall_ms`), lost (`ws_drop_message`) or cut (`ws_disconnect`); the truth is
read from `/admin/state`, the exchange reads are counted at the simulator.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.engine.sim_accounts import funded_venues

from newstrader.domain import OutcomeStatus, Side, Signal, VenueOutcome
from newstrader.engine.executor import Executor
from newstrader.engine.reconcile import Reconciler
from newstrader.engine.risk import Sizer
from newstrader.engine.settings import EngineSettings
from newstrader.journal import Journal
from newstrader.venues.account import AccountState, AccountStream
from newstrader.venues.base import Streaming

VENUES = ("hyperliquid", "aster")
MARKS = {"ETH": Decimal(2000), "SOL": Decimal(100)}
NOTIONAL = Decimal(1000)
POSITION_READS = {"hyperliquid": "info:clearinghouseState", "aster": "GET /fapi/v3/positionRisk"}
ORDER_SENDS = {"hyperliquid": "exchange:order", "aster": "POST /fapi/v3/order"}
ONE_TIME_SETUP = {
    "hyperliquid": {"info:meta", "exchange:updateLeverage"},
    "aster": {"GET /fapi/v1/exchangeInfo", "POST /fapi/v3/leverage", "POST /fapi/v3/marginType"},
}
POSITION_PUSH = {"hyperliquid": "ws:clearinghouseState", "aster": "ws:ACCOUNT_UPDATE"}
_ids = itertools.count()


def target(coin: str, side: Side) -> Decimal:
    return NOTIONAL / MARKS[coin] * side.sign


class StreamRig:
    """Fresh funded accounts on both venues, their adapters with streams running, one executor."""

    def __init__(self, sim: Any, workdir: Path, **engine: Any) -> None:
        self.sim = sim
        self.venues, self.address = funded_venues(sim, MARKS)
        self.workdir = workdir
        self.engine = {"max_signal_age_s": 15, "backoff_base_s": 0.01, "ambiguous_grace_s": 0.3, **engine}
        self.journal: Journal
        self.executor: Executor

    async def start(self, max_silence_s: float = 5.0) -> None:
        self.journal_path = self.workdir / f"stream-{next(_ids)}.db"
        self.journal = await Journal.open(f"sqlite:///{self.journal_path}")
        self.executor = Executor(self.venues, self.journal, EngineSettings(**self.engine), Sizer(NOTIONAL, 3))
        for venue in self.venues.values():
            assert isinstance(venue, Streaming)
            venue.stream.state.max_silence_s = max_silence_s
            venue.stream.ping_interval_s = max(0.3, max_silence_s / 3)
            venue.stream.start()
        await self.wait_current()

    async def stop(self) -> None:
        for venue in self.venues.values():
            await venue.close()
        await self.journal.close()

    def stream(self, venue: str) -> AccountStream:
        v = self.venues[venue]
        assert isinstance(v, Streaming)
        return v.stream

    def state(self, venue: str) -> AccountState:
        return self.stream(venue).state

    async def wait_current(self, timeout: float = 20.0) -> None:
        for name, venue in self.venues.items():
            assert isinstance(venue, Streaming)
            assert await venue.stream.wait_current(timeout), (name, venue.stream.state.status())

    def position(self, venue: str, coin: str) -> Decimal:
        return Decimal(self.sim.admin.position(venue, self.address[venue], coin))

    def outside(self, venue: str, coin: str, size: Decimal) -> None:
        """A trade made outside the bot (the web UI, another bot): the exchange's position changes."""
        self.sim.admin.set_position(venue, self.address[venue], coin, str(size))

    def reads(self) -> dict[str, int]:
        requests = self.sim.admin.stats()["requests"]
        return {v: int(requests.get(v, {}).get(POSITION_READS[v], 0)) for v in VENUES}

    async def signal(self, coin: str, side: Side) -> list[VenueOutcome]:
        n = next(_ids)
        outcomes = await self.executor.execute(Signal(id=f"s{n}", news_id=f"n{n}", coin=coin, side=side))
        for outcome in outcomes:
            assert outcome.status is OutcomeStatus.OK, (outcome.venue, outcome.reason)
        return outcomes

    async def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in await self.journal.recent_events(200) if e["kind"] == kind]

    async def wait_not_current(self, venue: str, coin: str, timeout: float = 10.0) -> None:
        """Poll (with a deadline) until the venue's stream no longer counts as current for `coin`."""
        state = self.state(venue)
        deadline = time.monotonic() + timeout
        while state.current_for(coin):
            assert time.monotonic() < deadline, (venue, state.status())
            await state.wait_changed(0.05)

    async def wait_pushed(self, venue: str, coin: str, size: Decimal, timeout: float = 10.0) -> None:
        """Poll (with a deadline) until the venue's stream shows `size` for `coin`."""
        state = self.state(venue)
        deadline = time.monotonic() + timeout
        while True:
            held = state.position(coin)
            if (held.size if held is not None else Decimal(0)) == size and state.current_for(coin):
                return
            assert time.monotonic() < deadline, (venue, coin, size, state.position(coin), state.status())
            await state.wait_changed(0.05)


@pytest.fixture
async def rig(sim: Any, tmp_path: Path) -> AsyncIterator[StreamRig]:
    r = StreamRig(sim, tmp_path)
    await r.start()
    yield r
    sim.admin.clear_faults()
    await r.stop()


async def test_ten_messages_for_one_coin_are_decided_from_the_stream_and_each_reads_the_exchange(
    rig: StreamRig,
) -> None:
    before = rig.reads()
    requests_before = rig.sim.admin.stats()["requests"]
    sides = [Side.LONG, Side.SHORT] * 5
    for side in sides:
        await rig.signal("ETH", side)
        for venue in VENUES:
            assert rig.position(venue, "ETH") == target("ETH", side)
    after = rig.reads()
    requests_after = rig.sim.admin.stats()["requests"]
    for v in VENUES:
        spent = {
            label: n - requests_before[v].get(label, 0)
            for label, n in requests_after[v].items()
            if n != requests_before[v].get(label, 0) and not label.startswith("ws:")
        }
        # (`ws:` labels are the stream's own frames, pings and subscriptions, not requests.)
        # Ten orders, the reads after them, and the coin's one-time set-up (market table,
        # leverage): no mark read, no read before an order.
        assert spent.pop(ORDER_SENDS[v]) == 10, spent
        assert spent.pop(POSITION_READS[v]) >= 10, spent
        assert set(spent) <= ONE_TIME_SETUP[v], spent
    for venue in VENUES:
        assert rig.executor.decided_from[(venue, "stream")] == 10
        assert rig.executor.decided_from[(venue, "rest")] == 0
        # The seed's rule: each message queried the exchange, with exactly one read: it starts
        # once the order is answered, so it shows our fill and agrees with stream + fill at once
        # (a read racing the order would often need a second one to tell which came first).
        assert after[venue] - before[venue] == 10, (venue, before, after)
        assert rig.executor.stream_confirm_reads[venue] == 0, venue
    assert await rig.events("stream_lag") == []


def _request_kind(request: httpx.Request) -> str:
    """An order send, a position read, or anything else, on either venue's REST API."""
    path = request.url.path
    if (path.endswith("/exchange") and b'"order"' in request.content) or path.endswith("/fapi/v3/order"):
        return "order"
    if (path.endswith("/info") and b"clearinghouseState" in request.content) or path.endswith("positionRisk"):
        return "read"
    return "other"


async def test_the_read_of_a_streamed_decision_starts_once_its_order_is_answered(rig: StreamRig) -> None:
    # Nothing but the intent's journal write may stand between a streamed decision and its order's
    # bytes: the seed's per-message read goes out after the order's answer (which carries the fill),
    # so it also shows our fill and needs no second read to tell which came first.
    seen: dict[str, list[tuple[str, float]]] = {v: [] for v in VENUES}
    for name in VENUES:
        client = rig.venues[name].http._client  # type: ignore[attr-defined]

        async def on_request(request: httpx.Request, name: str = name) -> None:
            seen[name].append((f"{_request_kind(request)} sent", time.monotonic()))

        async def on_response(response: httpx.Response, name: str = name) -> None:
            seen[name].append((f"{_request_kind(response.request)} answered", time.monotonic()))

        client.event_hooks["request"].append(on_request)
        client.event_hooks["response"].append(on_response)
        # Slow answers to orders: a read sent beside the order would be answered before it.
        rig.sim.admin.add_fault(name, "latency_ms", count=2, endpoint=ORDER_SENDS[name], ms=300)
    reads = rig.reads()
    for side in (Side.LONG, Side.SHORT):
        for events in seen.values():
            events.clear()
        await rig.signal("ETH", side)
        for venue in VENUES:
            assert rig.position(venue, "ETH") == target("ETH", side)
            kinds = [what for what, _ in seen[venue] if not what.startswith("other")]
            assert kinds == ["order sent", "order answered", "read sent", "read answered"], (venue, kinds)
    assert rig.reads() == {v: reads[v] + 2 for v in VENUES}
    for venue in VENUES:
        assert rig.executor.stream_confirm_reads[venue] == 0, venue
        assert rig.executor.decided_from[(venue, "stream")] == 2


async def test_an_order_is_sent_only_once_its_intent_is_durable(rig: StreamRig) -> None:
    # The venue builds and signs an order while its intent is being written; the send waits for
    # the write. Another process holds the journal's write lock: no order may leave meanwhile.
    sent: dict[str, float] = {}
    for name in VENUES:
        client = rig.venues[name].http._client  # type: ignore[attr-defined]

        async def on_request(request: httpx.Request, name: str = name) -> None:
            if _request_kind(request) == "order":
                sent.setdefault(name, time.monotonic())

        client.event_hooks["request"].append(on_request)
    await rig.signal("ETH", Side.LONG)  # markets and leverage loaded: the next signal only orders
    sent.clear()
    blocker = sqlite3.connect(rig.journal_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the journal's writer now waits for this lock
    try:
        signal = asyncio.ensure_future(rig.signal("ETH", Side.SHORT))
        with pytest.raises(TimeoutError):  # still waiting on the intents after half a second
            await asyncio.wait_for(asyncio.shield(signal), 0.5)
        assert sent == {}, sent
        released = time.monotonic()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await signal
    assert set(sent) == set(VENUES)
    assert all(at >= released for at in sent.values()), (sent, released)
    for venue in VENUES:
        assert rig.position(venue, "ETH") == target("ETH", Side.SHORT)


@pytest.mark.parametrize(
    ("side", "stall_ms", "read_delay_ms"),
    [(Side.LONG, 800, None), (Side.SHORT, 150, None), (Side.SHORT, 150, 300), (Side.SHORT, 1500, None)],
    ids=["same-side", "flip", "flip-slow-read", "flip-push-later-than-the-wait"],
)
async def test_outside_trade_just_before_a_signal_is_corrected_with_one_more_order(
    rig: StreamRig, side: Side, stall_ms: int, read_delay_ms: int | None
) -> None:
    for outcome in await rig.signal("ETH", Side.LONG):
        assert len(outcome.orders) == 1, outcome.orders  # nothing to correct from flat
    for venue in VENUES:
        await rig.wait_pushed(venue, "ETH", target("ETH", Side.LONG))
    # Count this signal's confirmation reads only.
    confirm_before = dict(rig.executor.stream_confirm_reads)
    assert all(confirm_before.get(v, 0) == 0 for v in VENUES), confirm_before
    # The outside trade's push is held back (with every push after it on that socket); the signal
    # arrives a few ms after the trade, while the stream still shows the old position. With a
    # read delay, the read after the order answers later still.
    for venue in VENUES:
        rig.sim.admin.add_fault(venue, "ws_stall_ms", count=1, endpoint=POSITION_PUSH[venue], ms=stall_ms)
        if read_delay_ms is not None:
            rig.sim.admin.add_fault(
                venue, "latency_ms", count=1, endpoint=POSITION_READS[venue], ms=read_delay_ms
            )
    outside = target("ETH", Side.LONG) * Decimal("0.3")
    for venue in VENUES:
        rig.outside(venue, "ETH", outside)
    for venue in VENUES:
        assert rig.state(venue).current_for("ETH")
        held = rig.state(venue).position("ETH")
        assert held is not None and held.size == target("ETH", Side.LONG)  # the stream is behind
    outcomes = await rig.signal("ETH", side)
    for outcome in outcomes:
        assert rig.position(outcome.venue, "ETH") == target("ETH", side)
        assert outcome.exchange_size_after == target("ETH", side)
        # Same side: the stream said "at target", nothing was sent, the read showed 0.3: one order.
        # Flip: one order from the stream's view, then exactly one correcting order.
        assert len(outcome.orders) == (1 if side is Side.LONG else 2), outcome.orders
    lags = await rig.events("stream_lag")
    assert sorted(e["venue"] for e in lags) == sorted(VENUES)
    for e in lags:
        assert e["coin"] == "ETH"
        assert Decimal(str(e["exchange_size"])) == outside + target("ETH", side) - target("ETH", Side.LONG)
    for venue in VENUES:
        assert rig.executor.decided_from[(venue, "stream")] == 2
        confirm = rig.executor.stream_confirm_reads[venue] - confirm_before.get(venue, 0)
        if stall_ms > 1000:
            # The read shows more than stream + fill, and the stream did not report our order
            # within the wait to agree with it: a stale read or a stream behind? Asked once more.
            assert confirm == 1, (venue, confirm)
        else:
            # The stream reports our order (behind the held push) and then agrees with the read;
            # a same-side signal sends nothing, so its stale stream may need one more read.
            assert confirm <= 1, (venue, confirm)


@pytest.mark.parametrize(
    ("kind", "ms"), [("ws_disconnect", None), ("ws_stall_ms", 4000)], ids=["disconnect", "stall"]
)
async def test_stream_faults_fall_back_to_rest_and_the_state_resyncs(
    sim: Any, tmp_path: Path, kind: str, ms: int | None
) -> None:
    rig = StreamRig(sim, tmp_path)
    await rig.start(max_silence_s=2.0)
    try:
        await rig.signal("SOL", Side.LONG)
        # Every push is cut (every redial too) or held back past the silence limit: the streams
        # are not current while the fault lasts, and an outside trade's push cannot arrive.
        for venue in VENUES:
            sim.admin.add_fault(venue, kind, probability=1.0, ms=ms)
        sim.admin.set_price("SOL", "101")  # a push that meets the fault
        sim.admin.set_price("SOL", "100")
        for venue in VENUES:
            await rig.wait_not_current(venue, "SOL")
            rig.outside(venue, "SOL", Decimal("-4"))
        await rig.signal("SOL", Side.SHORT)
        for venue in VENUES:
            assert rig.position(venue, "SOL") == target("SOL", Side.SHORT)
            assert rig.executor.decided_from[(venue, "rest")] == 1  # read first: the stream was down
        sim.admin.clear_faults()
        await rig.wait_current()  # resynced
        for venue in VENUES:
            await rig.wait_pushed(venue, "SOL", target("SOL", Side.SHORT))
        await rig.signal("SOL", Side.LONG)
        for venue in VENUES:
            assert rig.position(venue, "SOL") == target("SOL", Side.LONG)
            assert rig.executor.decided_from[(venue, "stream")] == 2  # the stream decides again
    finally:
        sim.admin.clear_faults()
        await rig.stop()


async def test_a_lost_position_push_is_caught_by_the_read_after_the_order(rig: StreamRig) -> None:
    await rig.signal("SOL", Side.LONG)
    for venue in VENUES:
        await rig.wait_pushed(venue, "SOL", target("SOL", Side.LONG))
    # A dropped position push: the stream stays "current" but stale. The read after the
    # order catches it: corrected, journaled as stream_lag.
    for venue in VENUES:
        rig.sim.admin.add_fault(venue, "ws_drop_message", count=1, endpoint=POSITION_PUSH[venue])
        rig.outside(venue, "SOL", Decimal("2"))
    for venue in VENUES:
        assert rig.state(venue).current_for("SOL")
    await rig.signal("SOL", Side.SHORT)
    for venue in VENUES:
        assert rig.position(venue, "SOL") == target("SOL", Side.SHORT)
        assert rig.executor.decided_from[(venue, "stream")] == 2
    assert {e["venue"] for e in await rig.events("stream_lag")} == set(VENUES)


async def test_the_slow_rest_check_records_a_lost_push_and_resyncs_the_stream(rig: StreamRig) -> None:
    await rig.signal("SOL", Side.LONG)
    for venue in VENUES:
        await rig.wait_pushed(venue, "SOL", target("SOL", Side.LONG))
    connects = {v: rig.stream(v).connects for v in VENUES}
    for venue in VENUES:
        rig.sim.admin.add_fault(venue, "ws_drop_message", count=1, endpoint=POSITION_PUSH[venue])
        rig.outside(venue, "SOL", Decimal("3"))
    # The push is lost: the stream still says current, with the old position.
    for venue in VENUES:
        held = rig.state(venue).position("SOL")
        assert rig.state(venue).current_for("SOL")
        assert held is not None and held.size == target("SOL", Side.LONG)
    reconciler = Reconciler(rig.venues, rig.journal, state=rig.executor.state)
    await reconciler.run_once()
    mismatches = await rig.events("stream_mismatch")
    assert sorted(e["venue"] for e in mismatches) == sorted(VENUES)
    for e in mismatches:
        assert (e["coin"], Decimal(str(e["exchange_size"])), Decimal(str(e["cached_size"]))) == (
            "SOL",
            Decimal(3),
            target("SOL", Side.LONG),
        )
    for venue in VENUES:  # resynced: a fresh connection, and the stream shows the exchange's position
        await rig.wait_pushed(venue, "SOL", Decimal(3))
        assert rig.stream(venue).connects > connects[venue]
    # With the stream right again, the check finds nothing.
    await reconciler.run_once()
    assert len(await rig.events("stream_mismatch")) == 2


async def test_position_source_rest_reads_before_every_order(sim: Any, tmp_path: Path) -> None:
    rig = StreamRig(sim, tmp_path, position_source="rest")
    await rig.start()
    try:
        await rig.signal("ETH", Side.LONG)
        for venue in VENUES:
            await rig.wait_pushed(venue, "ETH", target("ETH", Side.LONG))
            sim.admin.add_fault(venue, "ws_stall_ms", count=1, endpoint=POSITION_PUSH[venue], ms=800)
            rig.outside(venue, "ETH", Decimal("-0.1"))
        outcomes = await rig.signal("ETH", Side.SHORT)
        for outcome in outcomes:
            # Read first: the outside trade is seen before the order, one order reaches the target.
            assert outcome.exchange_size_before == Decimal("-0.1")
            assert len(outcome.orders) == 1
            assert rig.position(outcome.venue, "ETH") == target("ETH", Side.SHORT)
            assert rig.executor.decided_from[(outcome.venue, "rest")] == 2
            assert rig.executor.decided_from[(outcome.venue, "stream")] == 0
        assert await rig.events("stream_lag") == []
    finally:
        sim.admin.clear_faults()
        await rig.stop()


async def test_an_order_the_stream_has_not_reported_makes_the_next_decision_read_first(
    rig: StreamRig,
) -> None:
    # Every report of our next order is lost (order updates and fills), its position push too.
    reports = {
        "hyperliquid": ("ws:orderUpdates", "ws:userFills", "ws:clearinghouseState"),
        "aster": ("ws:ORDER_TRADE_UPDATE", "ws:ACCOUNT_UPDATE"),
    }
    for venue, labels in reports.items():
        for label in labels:
            rig.sim.admin.add_fault(venue, "ws_drop_message", count=2, endpoint=label)
    await rig.signal("ETH", Side.LONG)
    for venue in VENUES:
        assert not rig.state(venue).current_for("ETH")  # our order is not reported yet
        assert rig.state(venue).current_for("SOL")  # other coins are unaffected
    await rig.signal("ETH", Side.SHORT)
    for venue in VENUES:
        assert rig.position(venue, "ETH") == target("ETH", Side.SHORT)
        assert rig.executor.decided_from[(venue, "stream")] == 1
        assert rig.executor.decided_from[(venue, "rest")] == 1
    rig.sim.admin.clear_faults()
    for venue in VENUES:  # the unreported order ends the session; the resync settles it
        await rig.wait_pushed(venue, "ETH", target("ETH", Side.SHORT), timeout=20)
