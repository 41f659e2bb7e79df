"""Time exit across a restart, the daily loss limit, flatten, and the protection-failure policy.

Each runs the real Bot over the real adapters and the simulator; the truth is `/admin/state`.
Issue 8, "Must show": restart with a position open past its hold time → closed after start-up;
daily loss limit reached → the next signal is journaled as skipped (paused); flatten with
positions on both venues → both read flat, no open orders left.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from newstrader.autotrade.policy import hold_deadline_key
from newstrader.autotrade.trader import CHECK_INTERVAL_ENV
from newstrader.domain import Position, utcnow

VENUES = ("hyperliquid", "aster")
Rig = Any  # tests/autotrade/conftest.py: the `rig` fixture


async def test_restart_with_a_position_past_its_hold_time_closes_it_after_start_up(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The monitor's periodic turn is pushed far out: only the start-up check may close it.
    monkeypatch.setenv(CHECK_INTERVAL_ENV, "3600")
    bot = await rig.start_bot(max_hold_s=1)
    await rig.news(bot, "ETH", "long")
    deadlines = {}
    for venue in VENUES:
        assert rig.position(venue, "ETH") > 0
        record = await bot.journal.get_control(hold_deadline_key(venue, "ETH"))
        assert record["side"] == "long", record
        deadlines[venue] = datetime.fromisoformat(record["deadline"])
    await rig.stop_bot(bot)

    # Down past the deadline; the exchange still holds both positions and their triggers.
    await rig.wait_for(lambda: utcnow() > max(deadlines.values()), timeout=5)
    assert all(rig.position(v, "ETH") > 0 for v in VENUES)
    assert all(len(rig.triggers(v, "ETH")) == 2 for v in VENUES)

    bot = await rig.start_bot(max_hold_s=1)  # same journal file
    for venue in VENUES:
        assert rig.position(venue, "ETH") == 0, venue
        assert rig.open_orders(venue, "ETH") == [], venue
        assert await bot.journal.get_control(hold_deadline_key(venue, "ETH")) is None
    events = [e for e in await bot.journal.recent_events(50) if e["kind"] == "time_exit"]
    assert sorted(e["venue"] for e in events) == sorted(VENUES), events


async def test_time_exit_by_the_running_monitor(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHECK_INTERVAL_ENV, "0.5")
    bot = await rig.start_bot(max_hold_s=1)
    await rig.news(bot, "SOL", "short")
    assert all(rig.position(v, "SOL") < 0 for v in VENUES)
    await rig.wait_for(lambda: all(rig.position(v, "SOL") == 0 for v in VENUES), timeout=10)
    await rig.wait_for(lambda: all(rig.open_orders(v, "SOL") == [] for v in VENUES), timeout=5)


async def test_daily_loss_limit_pauses_and_the_next_signal_is_skipped(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CHECK_INTERVAL_ENV, "0.5")
    bot = await rig.start_bot(daily_loss_limit_usd=Decimal(5), stop_loss_pct=Decimal(1))
    await rig.news(bot, "ETH", "long")
    assert all(rig.position(v, "ETH") > 0 for v in VENUES)
    # The mark falls 3 %: both stop losses fire on the exchange, ~10 USD lost per venue.
    rig.set_price("ETH", Decimal(1_940))
    assert all(rig.position(v, "ETH") == 0 for v in VENUES)
    loss = -sum(rig.balance_change(v) for v in VENUES)
    assert loss > 5

    await rig.wait_for(bot.paused, timeout=10)
    events = [e for e in await bot.journal.recent_events(50) if e["kind"] == "daily_loss_limit"]
    assert len(events) == 1 and "daily loss limit" in events[0]["detail"], events

    decision = await rig.news(bot, "BTC", "long")
    assert decision.signal is not None and "paused" in decision.reason
    signal = next(s for s in await bot.journal.recent_signals(10) if s["id"] == decision.signal.id)
    assert signal["status"] == "skipped" and "paused" in signal["reason"], signal
    assert all(rig.position(v, "BTC") == 0 for v in VENUES)

    # The operator resumes: the loss so far is accepted and the limit counts again from there,
    # so the next trade's fees do not pause it, but another full limit of loss does.
    await bot.resume()
    decision = await rig.news(bot, "BTC", "long")
    assert all(rig.position(v, "BTC") > 0 for v in VENUES), decision
    await bot.autotrader.run_once(full=True)
    assert not await bot.paused()
    rig.set_price("BTC", Decimal(48_500))  # both stops fire: ~10 USD more lost per venue
    assert all(rig.position(v, "BTC") == 0 for v in VENUES)
    await rig.wait_for(bot.paused, timeout=10)


async def test_flatten_closes_everything_on_both_venues_and_leaves_no_order(rig: Rig) -> None:
    bot = await rig.start_bot()
    await rig.news(bot, "ETH", "long")
    await rig.news(bot, "BTC", "short")
    # And a position opened by hand on the exchange, which the bot never traded.
    rig.sim.admin.set_position("aster", rig.keys.aster_user, "SOL", "3")
    for venue in VENUES:
        assert rig.position(venue, "ETH") > 0 and rig.position(venue, "BTC") < 0
        assert len(rig.open_orders(venue)) == 4
    assert rig.position("aster", "SOL") == 3

    result = await bot.flatten()
    assert result["flat"] is True, result
    assert result["paused"] is True
    for venue in VENUES:
        assert result["venues"][venue] == {**result["venues"][venue], "positions": {}, "open_orders": 0}
        assert rig.account(venue)["positions"] == {}, venue
        assert rig.open_orders(venue) == [], venue
    assert await bot.paused()


@pytest.mark.parametrize("policy", ["close", "keep"])
async def test_protection_failure_policy(rig: Rig, policy: str) -> None:
    """Aster refuses a stop that would fire at once: `close` closes the position, `keep` keeps it."""
    bot = await rig.start_bot(on_protection_failure=policy)
    await rig.news(bot, "ETH", "long")
    size = rig.position("aster", "ETH")
    assert size > 0
    # As if the fill had been at 2100 and the mark fell to 2000 before protection went out:
    # the stop (1 % under the fill) is above the mark, which the venue refuses.
    position = Position(venue="aster", coin="ETH", size=size, entry_price=Decimal(2100))
    await bot.autotrader.after_position_change("aster", "ETH", position, Decimal(2100))

    events = {e["kind"]: e for e in await bot.journal.recent_events(20) if e["venue"] == "aster"}
    assert "protection_failed" in events and f"policy={policy}" in events["protection_failed"]["detail"]
    assert rig.triggers("aster", "ETH") == []  # no half-placed pair stays behind
    if policy == "close":
        assert rig.position("aster", "ETH") == 0
        assert "protection_close" in events
        assert await bot.journal.get_control(hold_deadline_key("aster", "ETH")) is None
    else:
        assert rig.position("aster", "ETH") == size
        assert "protection_close" not in events
    # The other venue is untouched either way.
    assert rig.position("hyperliquid", "ETH") > 0 and len(rig.triggers("hyperliquid", "ETH")) == 2


async def test_dead_man_switch_keeps_orders_while_alive_and_cancels_them_after_a_hang(rig: Rig) -> None:
    bot = await rig.start_bot(dead_man_switch_s=5)
    dead_man = bot.autotrader.dead_man
    assert dead_man is not None and set(dead_man.venues) == {"hyperliquid"}  # Aster: not supported
    await rig.news(bot, "ETH", "long")
    assert len(rig.triggers("hyperliquid", "ETH")) == 2
    first = datetime.fromisoformat(dead_man.status()["armed_until"]["hyperliquid"])

    # Alive: the schedule keeps moving ahead, so its first deadline passes without effect.
    await rig.wait_for(lambda: utcnow() > first, timeout=10)
    await bot.venues["hyperliquid"].open_orders()  # the simulator runs due cancels on a request
    assert len(rig.triggers("hyperliquid", "ETH")) == 2

    # Hung (the refresh loop stops, nothing disarms): the venue cancels everything resting.
    (task,) = [t for t in bot.autotrader._tasks if t.get_name() == "autotrade-deadman"]
    task.cancel()
    last = datetime.fromisoformat(dead_man.status()["armed_until"]["hyperliquid"])
    await rig.wait_for(lambda: utcnow() > last, timeout=10)
    await bot.venues["hyperliquid"].open_orders()
    assert rig.triggers("hyperliquid", "ETH") == []
    assert len(rig.triggers("aster", "ETH")) == 2  # the other venue is untouched


async def test_close_one_coin_on_one_venue_cancels_its_triggers_only_there(rig: Rig) -> None:
    bot = await rig.start_bot()
    await rig.news(bot, "ETH", "long")
    result = await bot.close("eth", "aster")
    assert result["venues"]["aster"]["flat"] is True, result
    assert rig.position("aster", "ETH") == 0 and rig.open_orders("aster") == []
    assert rig.position("hyperliquid", "ETH") > 0 and len(rig.triggers("hyperliquid", "ETH")) == 2
    assert (await bot.journal.cached_positions("aster")) == {}
    with pytest.raises(ValueError, match="unknown venue"):
        await bot.autotrader.close("ETH", "binance")


async def test_operator_pause_skips_the_next_signal_and_resume_trades_again(rig: Rig) -> None:
    bot = await rig.start_bot()
    await bot.pause("maintenance")
    decision = await rig.news(bot, "ETH", "long")
    assert decision.signal is not None and "paused" in decision.reason
    assert rig.positions("ETH") == {v: 0 for v in VENUES}
    assert (await bot.stats())["paused_reason"] == "maintenance"
    await bot.resume()
    await rig.news(bot, "ETH", "long")
    assert all(rig.position(v, "ETH") > 0 for v in VENUES)
