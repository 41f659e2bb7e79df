"""Account streams against the simulator: snapshot then deltas, currency rules, faults and resync.

Each adapter kind (Hyperliquid, Aster v3, Aster HMAC) dials the simulator's websocket through its
declared `Streaming` capability and must mirror the exchange: our fills, outside trades and
liquidations within a second, and never claim to be current across a gap or a stall.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from newstrader.domain import OrderRequest, OrderType
from newstrader.venues.account import AccountState
from newstrader.venues.base import Streaming

from .conftest import VenueUnderTest

PUSH_DEADLINE_S = 1.0
START_DEADLINE_S = 15.0  # connect + REST snapshot on a loaded box


async def _started(vut: VenueUnderTest, max_silence_s: float = 3.0) -> AccountState:
    assert isinstance(vut.venue, Streaming)
    stream = vut.venue.stream
    stream.state.max_silence_s = max_silence_s
    stream.ping_interval_s = max_silence_s / 3
    stream.start()
    assert await stream.wait_current(START_DEADLINE_S), stream.state.status()
    return stream.state


async def _within(check: Callable[[], bool], deadline_s: float = PUSH_DEADLINE_S) -> float:
    """Poll `check` (the stream's own state) until true; seconds taken, failing past the deadline."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < deadline_s, "the stream did not show it in time"
        await asyncio.sleep(0.005)
    return time.monotonic() - start


def _size(state: AccountState, coin: str) -> Decimal:
    position = state.position(coin)
    return position.size if position is not None else Decimal(0)


async def _admin(call: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(call, *args)


async def test_snapshot_then_fills_outside_trades_and_liquidation(sim: Any, vut: VenueUnderTest) -> None:
    await _admin(sim.admin.set_price, "ETH", "3000", vut.sim_venue)
    await _admin(sim.admin.set_position, vut.sim_venue, vut.account, "BTC", "0.01")  # before the stream
    state = await _started(vut)
    assert _size(state, "BTC") == Decimal("0.01")  # from the REST snapshot
    assert state.status().current and state.status().describe() == "stream current"

    state.expect_order("s15-open")
    result = await vut.venue.place_order(
        OrderRequest(
            coin="ETH", is_buy=True, size=Decimal("0.5"), client_id="s15-open", order_type=OrderType.MARKET
        )
    )
    assert result.filled_size == Decimal("0.5")
    await _within(lambda: _size(state, "ETH") == Decimal("0.5"))
    await _within(lambda: any(f.coin == "ETH" and f.size == Decimal("0.5") for f in state.fills))
    await _within(state.is_current)  # the stream reported the order we sent

    await _admin(sim.admin.set_position, vut.sim_venue, vut.account, "ETH", "-1")
    await _within(lambda: _size(state, "ETH") == Decimal(-1))
    await _admin(sim.admin.liquidate, vut.sim_venue, vut.account, "ETH")
    await _within(lambda: state.position("ETH") is None)
    await _within(lambda: state.marks.get("ETH") == Decimal(3000), 2.0)


async def test_triggers_are_tracked_from_the_stream(sim: Any, vut: VenueUnderTest) -> None:
    await _admin(sim.admin.set_price, "ETH", "3000", vut.sim_venue)
    await _admin(sim.admin.set_position, vut.sim_venue, vut.account, "ETH", "1")
    state = await _started(vut)
    await vut.venue.place_triggers("ETH", Decimal(1), Decimal(3300), Decimal(2700), ("s15-tp", "s15-sl"))
    # Hyperliquid's orderUpdates carry the basic order shape (no trigger kind): the kinds come
    # from the snapshot or our own acks; the stream says which orders rest.
    await _within(lambda: len([o for o in state.open_orders.values() if o.coin == "ETH"]) == 2)
    await _admin(sim.admin.set_price, "ETH", "2600", vut.sim_venue)  # the stop fires, the TP is cancelled
    await _within(lambda: state.position("ETH") is None)
    await _within(lambda: not [o for o in state.open_orders.values() if o.coin == "ETH"])


@pytest.mark.parametrize("vut", ["hyperliquid", "aster-v3"], indirect=True)
async def test_disconnect_opens_a_gap_until_resynced(sim: Any, vut: VenueUnderTest) -> None:
    state = await _started(vut)
    connects = vut.venue.stream.connects
    await _admin(sim.admin.add_fault, vut.sim_venue, "ws_disconnect", None, 1)
    await _admin(sim.admin.set_price, "ETH", "3100", vut.sim_venue)  # a push: the fault fires on it
    await _within(lambda: not state.is_current(), 2.0)
    # While down, an outside trade happens; the resync's REST snapshot must bring it in.
    await _admin(sim.admin.set_position, vut.sim_venue, vut.account, "ETH", "0.3")
    assert await vut.venue.stream.wait_current(START_DEADLINE_S)
    assert vut.venue.stream.connects > connects  # it redialled
    await _within(lambda: _size(state, "ETH") == Decimal("0.3"))


@pytest.mark.parametrize("vut", ["hyperliquid", "aster-v3"], indirect=True)
async def test_stall_is_not_current_and_resyncs(sim: Any, vut: VenueUnderTest) -> None:
    state = await _started(vut, max_silence_s=1.5)
    await _admin(sim.admin.add_fault, vut.sim_venue, "ws_stall_ms", None, 1, None, 6000)
    await _admin(sim.admin.set_price, "ETH", "3100", vut.sim_venue)
    await _within(lambda: not state.is_current(), 4.0)
    assert state.status().reason in ("silent", "disconnected", "resyncing")
    assert "stream down" in state.status().describe()
    assert await vut.venue.stream.wait_current(START_DEADLINE_S)  # redialled, snapshot, current


@pytest.mark.parametrize("vut", ["hyperliquid"], indirect=True)
async def test_dropped_report_of_our_order_keeps_it_not_current(sim: Any, vut: VenueUnderTest) -> None:
    await _admin(sim.admin.set_price, "ETH", "3000", vut.sim_venue)
    state = await _started(vut)
    for channel in ("ws:orderUpdates", "ws:userFills"):
        await _admin(sim.admin.add_fault, vut.sim_venue, "ws_drop_message", None, 1, channel)
    state.expect_order("s15-lost")
    await vut.venue.place_order(
        OrderRequest(
            coin="ETH", is_buy=True, size=Decimal("0.1"), client_id="s15-lost", order_type=OrderType.MARKET
        )
    )
    await _within(lambda: _size(state, "ETH") == Decimal("0.1"))  # clearinghouseState still came
    assert not state.is_current() and state.status().reason == "order not reported yet"
