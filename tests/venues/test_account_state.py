"""`AccountState` rules on a fake clock: what keeps it from vouching for our triggers, and which
unreported orders make the stream redial (venues/account.py)."""

from __future__ import annotations

from decimal import Decimal

from newstrader.domain import OpenOrder, Position, TriggerKind
from newstrader.venues.account import ORDER_REPORT_GRACE_S, AccountState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def current_state() -> tuple[AccountState, Clock]:
    clock = Clock()
    state = AccountState("hyperliquid", max_silence_s=1000.0, clock=clock)
    state.begin_snapshot()
    state.apply_snapshot({}, [])
    assert state.is_current()
    return state, clock


def trigger(cid: str, kind: TriggerKind = TriggerKind.STOP_LOSS, coin: str = "ETH") -> OpenOrder:
    return OpenOrder(
        coin=coin,
        venue_order_id="",
        is_buy=False,
        size=Decimal(1),
        price=Decimal(1800),
        client_id=cid,
        reduce_only=True,
        trigger_price=Decimal(1900),
        trigger_kind=kind,
    )


def plain(oid: str, coin: str = "ETH", cid: str | None = None) -> OpenOrder:
    return OpenOrder(
        coin=coin, venue_order_id=oid, is_buy=True, size=Decimal(1), price=Decimal(10), client_id=cid
    )


def test_our_trigger_is_known_from_its_ack_before_and_whatever_its_push() -> None:
    state, _ = current_state()
    state.sending_trigger(trigger("sl-1"))
    assert state.known_triggers("ETH") is None  # sent, not answered: it may rest unseen
    state.trigger_acked("sl-1", "77", resting=True)
    (known,) = state.known_triggers("ETH") or []
    assert known.venue_order_id == "77" and known.trigger_kind is TriggerKind.STOP_LOSS
    # Hyperliquid's push names no kind: the state keeps the one we sent.
    state.order_update("77", plain("77", cid="sl-1"), "sl-1", kind_known=False)
    assert [o.trigger_kind for o in state.known_triggers("ETH") or []] == [TriggerKind.STOP_LOSS]
    assert state.is_current()  # reported
    state.trigger_cancelled("77", "sl-1")
    assert state.known_triggers("ETH") == []
    state.trigger_acked("sl-1", "77", resting=True)  # a late ack never brings a final order back
    assert state.known_triggers("ETH") == []


def test_a_push_before_the_ack_is_completed_from_what_we_sent() -> None:
    state, _ = current_state()
    state.sending_trigger(trigger("tp-1", TriggerKind.TAKE_PROFIT))
    state.order_update("5", plain("5", cid="tp-1"), "tp-1", kind_known=False)
    assert [o.trigger_kind for o in state.known_triggers("ETH") or []] == [TriggerKind.TAKE_PROFIT]


def test_an_order_of_unknown_kind_hides_that_coins_triggers_until_it_is_gone() -> None:
    state, _ = current_state()
    state.order_update("9", plain("9", cid="outside"), "outside", kind_known=False)
    assert state.known_triggers("ETH") is None and state.known_triggers() is None
    assert state.known_triggers("BTC") == []  # other coins are unaffected
    state.order_update("9", None, "outside")
    assert state.known_triggers("ETH") == []


def test_a_refused_trigger_is_not_waited_for() -> None:
    state, _ = current_state()
    state.sending_trigger(trigger("sl-2"))
    state.trigger_acked("sl-2", None, resting=False)
    assert state.known_triggers("ETH") == [] and state.is_current()


def test_gap_or_silence_means_read_the_venue() -> None:
    state, clock = current_state()
    state.mark_gap("disconnected")
    assert state.known_triggers("ETH") is None
    state.begin_snapshot()
    state.apply_snapshot({}, [])
    clock.now += 2000  # silent past max_silence_s
    assert state.known_triggers("ETH") is None


def test_only_an_answered_order_left_unreported_makes_the_stream_redial() -> None:
    """A reply lost (in flight) cannot be settled by a snapshot: no redial, only not current."""
    state, clock = current_state()
    state.expect_order("lost-reply", "ETH")
    clock.now += ORDER_REPORT_GRACE_S + 1
    assert state.status().reason == "order not reported yet"
    state.order_answered("lost-reply")  # the in-flight rule found out what it did
    clock.now += ORDER_REPORT_GRACE_S + 1
    assert state.status().reason == "order never reported"  # its push was lost: resync
    state.begin_snapshot()
    state.apply_snapshot({}, [])
    assert state.is_current()


def test_fills_come_from_the_pushes_only_while_connected_since_the_last_read() -> None:
    state, clock = current_state()
    read_began = clock.now + 1
    assert state.fills_since_read(read_began, state.fills_seen) == []
    state.mark_gap("disconnected")
    assert state.fills_since_read(read_began, 0) is None
    clock.now += 5
    state.begin_snapshot()
    state.apply_snapshot({}, [])  # a newer connection: pushes before it may be lost
    assert state.fills_since_read(read_began, 0) is None
    assert state.fills_since_read(clock.now, 0) == []


def test_a_venue_that_replays_fills_on_connect_needs_no_read_after_a_reconnect() -> None:
    state, clock = current_state()
    state.fills_replayed_on_connect = True  # Hyperliquid's userFills snapshot
    read_began = clock.now
    clock.now += 5
    state.mark_gap("disconnected")
    assert state.fills_since_read(read_began, 0) is None  # not while the gap lasts
    state.begin_snapshot()
    state.apply_snapshot({}, [])
    assert state.fills_since_read(read_began, 0) == []


def pos(size: str, coin: str = "ETH") -> Position:
    return Position(venue="hyperliquid", coin=coin, size=Decimal(size), entry_price=Decimal(2000))


def test_the_position_as_of_our_orders_report_tells_a_stream_behind_from_a_later_change() -> None:
    # Decided from 1, our order buys 2: "after" is 3. Pushes carry absolute positions.
    before, after = Decimal(1), Decimal(3)
    state, _ = current_state()
    state.set_position("ETH", pos("1"))

    # The venue pushes the position, then the order (the simulator, Binance's observed order).
    state.expect_order("a", "ETH")
    assert state.position_at_report("a", before, after) is None  # not reported yet
    state.set_position("ETH", pos("3"))
    state.order_reported("a")
    state.set_position("ETH", pos("0"))  # a manual close after our fill changes nothing here
    assert state.position_at_report("a", before, after) == "ours"

    # The order first, then its position: the next position message says.
    state.set_position("ETH", pos("1"))
    state.expect_order("b", "ETH")
    state.order_reported("b")
    assert state.position_at_report("b", before, after) is None
    state.set_position("ETH", pos("3"))
    assert state.position_at_report("b", before, after) == "ours"

    # An outside trade before our order, its push late: it arrives with (or before) ours.
    state.set_position("ETH", pos("1"))
    state.expect_order("c", "ETH")
    state.set_position("ETH", pos("5"))  # +2 outside, then our +2
    state.order_reported("c")
    assert state.position_at_report("c", before, after) == "behind"

    # Our fill's push lost: reported at the old position, then something else.
    state.set_position("ETH", pos("1"))
    state.expect_order("d", "ETH")
    state.order_reported("d")
    state.set_position("ETH", pos("0"))
    assert state.position_at_report("d", before, after) == "unknown"

    # Another coin's position messages do not count for ours.
    state.set_position("ETH", pos("1"))
    state.expect_order("e", "ETH")
    state.order_reported("e")
    state.set_position("SOL", pos("4", "SOL"))
    assert state.position_at_report("e", before, after) is None


def test_a_snapshot_that_settles_our_order_is_its_report() -> None:
    state, clock = current_state()
    state.set_position("ETH", pos("1"))
    state.expect_order("a", "ETH")
    state.order_answered("a")
    clock.now += 1
    state.begin_snapshot()  # begun after the answer: it shows our fill (the push was lost)
    state.apply_snapshot({"ETH": pos("3")}, [])
    assert state.position_at_report("a", Decimal(1), Decimal(3)) == "ours"
