"""Sizing by a fraction of equity: the Sizer's rule, and each adapter's equity read over the simulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from newstrader.domain import Market, Side, Signal
from newstrader.engine.risk import CoinSizing, Sizer, SizingSettings

D = Decimal
ETH = Market("ETH", "ETHUSDT", D("0.001"), D("0.01"), D(5), 100)
VENUES = ("hyperliquid", "aster")


def signal(**kw: Any) -> Signal:
    return Signal(id="s1", news_id="n1", coin="ETH", side=Side.SHORT, **kw)


def test_equity_fraction_sizes_from_the_account_and_overrides_still_win() -> None:
    sizer = Sizer.from_settings(
        SizingSettings.model_validate(
            {"notional_usd": 100, "equity_fraction": "0.1", "per_coin": {"BTC": {"notional_usd": 50}}}
        )
    )
    plan = sizer.plan(signal(), ETH, D(2000), equity=D(30_000))
    assert plan.notional_usd == D(3000) and plan.target_size == D("-1.500") and plan.skip_reason is None
    # A signal's own notional and a per-coin notional are explicit: they beat the fraction.
    assert sizer.plan(signal(notional_usd=D(200)), ETH, D(2000)).target_size == D("-0.100")
    eth_override = Sizer(D(100), 3, {"ETH": CoinSizing(notional_usd=D(400))}, equity_fraction=D("0.5"))
    assert eth_override.plan(signal(), ETH, D(2000)).target_size == D("-0.200")
    # Without the equity it cannot size: a skip with the reason, never a guess.
    skipped = sizer.plan(signal(), ETH, D(2000))
    assert skipped.target_size == 0 and "equity_fraction" in (skipped.skip_reason or "")


def test_without_equity_fraction_nothing_changes() -> None:
    plan = Sizer(D(100), 3).plan(signal(), ETH, D(2000), equity=D(1_000_000))
    assert plan.notional_usd == D(100) and plan.target_size == D("-0.050")


async def test_each_adapter_reads_the_account_equity(rig: Any) -> None:
    bot = await rig.start_bot()
    for venue in VENUES:
        assert await bot.venues[venue].equity() == D(1_000_000), venue
    await rig.news(bot, "ETH", "long")
    for venue in VENUES:
        booked = D(rig.account(venue)["account_value"])
        assert await bot.venues[venue].equity() == booked, venue


async def test_a_signal_sized_by_equity_fraction_on_both_venues(rig: Any) -> None:
    # 0.2 % of a 1,000,000 USD account is 2,000 USD: 1 ETH at 2,000.
    bot = await rig.start_bot(sizing={"equity_fraction": D("0.002")})
    await rig.news(bot, "ETH", "short")
    assert rig.positions("ETH") == {v: D(-1) for v in VENUES}
