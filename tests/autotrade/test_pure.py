"""The auto trader's arithmetic: trigger prices, the trade ledger, percentiles, CSV, policy checks."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newstrader.autotrade.policy import ExitPolicy
from newstrader.autotrade.stats import build_ledger, percentile, stats_csv
from newstrader.autotrade.tpsl import trigger_prices
from newstrader.domain import Fill, Market

D = Decimal
BTC_HL = Market("BTC", "BTC", D("0.00001"), D("1"), D(10), 40, max_price_sig_figs=5)
ETH_ASTER = Market("ETH", "ETHUSDT", D("0.001"), D("0.01"), D(5), 100)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_long_and_short_triggers_sit_on_the_right_side_at_the_configured_distance() -> None:
    policy = ExitPolicy(take_profit_pct=D(2), stop_loss_pct=D(1))
    long = trigger_prices(policy, ETH_ASTER, D("1.5"), D("3000.00"))
    assert (long.take_profit, long.stop_loss) == (D("3060.00"), D("2970.00"))
    short = trigger_prices(policy, ETH_ASTER, D("-1.5"), D("3000.00"))
    assert (short.take_profit, short.stop_loss) == (D("2940.00"), D("3030.00"))


@given(
    price=st.decimals(min_value=D("1000"), max_value=D("200000"), places=1),
    tp=st.decimals(min_value=D("0.1"), max_value=D("20"), places=2),
    sl=st.decimals(min_value=D("0.1"), max_value=D("20"), places=2),
    long=st.booleans(),
)
def test_rounded_triggers_never_widen_the_stop_nor_shrink_the_target(
    price: Decimal, tp: Decimal, sl: Decimal, long: bool
) -> None:
    policy = ExitPolicy(take_profit_pct=tp, stop_loss_pct=sl)
    size = D("0.01") if long else D("-0.01")
    prices = trigger_prices(policy, BTC_HL, size, price)
    assert prices.take_profit is not None and prices.stop_loss is not None
    # On the venue's grid: a whole tick and 5 significant figures (or an integer).
    for p in (prices.take_profit, prices.stop_loss):
        assert BTC_HL.round_price(p) == p
    exact_tp = price * (1 + (1 if long else -1) * tp / 100)
    exact_sl = price * (1 - (1 if long else -1) * sl / 100)
    if long:
        assert prices.take_profit >= exact_tp and prices.stop_loss >= exact_sl
        assert prices.stop_loss < price < prices.take_profit or prices.stop_loss == price
    else:
        assert prices.take_profit <= exact_tp and prices.stop_loss <= exact_sl


def test_a_distance_past_zero_leaves_that_leg_out() -> None:
    policy = ExitPolicy(take_profit_pct=D(150), stop_loss_pct=D(150))
    short = trigger_prices(policy, ETH_ASTER, D(-1), D(3000))
    assert short.take_profit is None and short.stop_loss == D("7500.00")
    long = trigger_prices(policy, ETH_ASTER, D(1), D(3000))
    assert long.take_profit == D("7500.00") and long.stop_loss is None


def test_missing_leg_is_not_priced() -> None:
    prices = trigger_prices(ExitPolicy(take_profit_pct=None, stop_loss_pct=D(1)), ETH_ASTER, D(1), D(3000))
    assert prices.take_profit is None and prices.stop_loss == D("2970.00")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("take_profit_pct", D(0)),
        ("stop_loss_pct", D(-1)),
        ("on_protection_failure", "ignore"),
        ("max_hold_s", -1),
        ("daily_loss_limit_usd", D(-5)),
        ("dead_man_switch_s", 0),
    ],
)
def test_bad_exit_settings_are_named(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"exits.{field}"):
        ExitPolicy(**{field: value})  # type: ignore[arg-type]


def test_policy_from_settings_mapping_converts_numbers_to_decimal() -> None:
    policy = ExitPolicy.from_settings({"take_profit_pct": 3, "stop_loss_pct": 1.5, "max_hold_s": 60})
    assert policy.take_profit_pct == D(3) and policy.stop_loss_pct == D("1.5") and policy.max_hold_s == 60


def fill(n: int, coin: str, is_buy: bool, size: str, price: str, fee: str, pnl: str, cid: str | None) -> Fill:
    return Fill(
        venue="hl",
        coin=coin,
        is_buy=is_buy,
        size=D(size),
        price=D(price),
        fee=D(fee),
        realized_pnl=D(pnl),
        time=T0 + timedelta(seconds=10 * n),
        fill_id=f"f{n}",
        client_id=cid,
    )


def test_ledger_attributes_closing_pnl_to_the_source_that_opened_and_splits_a_flip() -> None:
    fills = [
        fill(0, "BTC", True, "1", "100", "0.1", "0", "open-a"),  # long 1, opened by source A
        fill(1, "BTC", False, "1", "110", "0.1", "10", "tp-x"),  # TP: +10 for A
        fill(2, "BTC", True, "2", "100", "0.2", "0", "open-b"),  # long 2, source B
        fill(3, "BTC", False, "3", "90", "0.3", "-20", "flip-a"),  # closes B's 2 (−20), opens short 1 for A
        fill(4, "BTC", True, "1", "95", "0.1", "-5", "sl-y"),  # SL: −5 for A's short
    ]
    ledger = build_ledger(fills, {"open-a": "A", "open-b": "B", "flip-a": "A"})
    assert ledger.total.realized_pnl == D(-15) and ledger.total.fees == D("0.8")
    assert ledger.by_source["A"].realized_pnl == D(5)
    assert ledger.by_source["B"].realized_pnl == D(-20)
    # The flip's fee 0.3 is split 2:1 between B's close and A's new short.
    assert ledger.by_source["B"].fees == D("0.2") + D("0.2")
    assert ledger.by_source["A"].fees == D("0.1") + D("0.1") + D("0.1") + D("0.1")
    assert [t.source for t in ledger.trades] == ["A", "B", "A"]
    assert [t.net > 0 for t in ledger.trades] == [True, False, False]
    assert ledger.total.trades == 3 and ledger.total.wins == 1
    assert ledger.trades[0].hold_s == 10.0
    assert ledger.total.fills == 5 and not ledger.open_trades


def test_ledger_keeps_an_open_trade_open_and_counts_a_partial_close() -> None:
    fills = [
        fill(0, "ETH", False, "2", "100", "0", "0", "s1"),
        fill(1, "ETH", True, "1", "90", "0", "10", None),
    ]
    ledger = build_ledger(fills, {"s1": "feed"})
    assert ledger.total.trades == 0 and len(ledger.open_trades) == 1
    assert ledger.by_source["feed"].realized_pnl == D(10)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 95) == 95.0
    assert percentile([], 50) is None and percentile([7.0], 95) == 7.0


def test_stats_csv_has_a_total_row_and_one_per_group() -> None:
    ledger_row = {"realized_pnl": "1", "fees": "0.1", "net_pnl": "0.9", "fills": 2, "trades": 1}
    stats = {**ledger_row, "by_venue": {"hl": ledger_row}, "by_coin": {"BTC": ledger_row}, "by_source": {}}
    rows = list(csv.DictReader(io.StringIO(stats_csv(stats))))
    assert [(r["group"], r["key"]) for r in rows] == [("total", "all"), ("venue", "hl"), ("coin", "BTC")]
    assert rows[1]["net_pnl"] == "0.9"
