"""Properties of `Market.round_price` / `round_size` for any tick and step, not only powers of ten.

`tests/foundation/test_domain.py` and `tests/venues/test_rounding.py` check Hyperliquid's rule
and the simulator's own markets; Aster-style filters can have ticks like 0.5, 0.25 or 5 and
steps like 0.002 or 10, so here the tick, the step and the value are all drawn.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from newstrader.domain import Market

MANTISSAS = st.sampled_from([1, 2, 5, 25, 3, 125])
EXPONENTS = st.integers(min_value=-8, max_value=2)
INCREMENTS = st.builds(lambda m, e: Decimal(m).scaleb(e), MANTISSAS, EXPONENTS)
VALUES = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(10**7), places=10, allow_nan=False)
ROUNDINGS = st.sampled_from([None, True, False])


def _market(tick: Decimal, step: Decimal, sig_figs: int | None = None) -> Market:
    return Market(coin="X", symbol="XUSDT", size_step=step, price_tick=tick, max_price_sig_figs=sig_figs)


def _on_grid(value: Decimal, increment: Decimal) -> bool:
    ratio = value / increment
    return ratio == ratio.to_integral_value()


@settings(max_examples=200, deadline=None)
@given(tick=INCREMENTS, price=VALUES, up=ROUNDINGS)
def test_round_price_lands_on_the_tick_in_the_asked_direction(
    tick: Decimal, price: Decimal, up: bool | None
) -> None:
    market = _market(tick, Decimal(1))
    rounded = market.round_price(price, up=up)
    assert _on_grid(rounded, tick), (tick, price, rounded)
    assert abs(rounded - price) <= tick  # never further than one tick away
    if up is True:
        assert rounded >= price
    elif up is False:
        assert rounded <= price
    else:
        assert abs(rounded - price) <= tick / 2
    assert market.round_price(rounded, up=up) == rounded  # idempotent
    if rounded == rounded.to_integral_value():
        assert "E" not in str(rounded)  # an integer price reads "10", never "1E+1"


@settings(max_examples=150, deadline=None)
@given(tick=INCREMENTS, a=VALUES, b=VALUES, up=ROUNDINGS, sig=st.sampled_from([None, 5]))
def test_round_price_is_monotonic(
    tick: Decimal, a: Decimal, b: Decimal, up: bool | None, sig: int | None
) -> None:
    """A higher price never rounds below a lower one (slippage caps keep their order)."""
    market = _market(tick, Decimal(1), sig)
    low, high = sorted((a, b))
    assert market.round_price(low, up=up) <= market.round_price(high, up=up)


@settings(max_examples=200, deadline=None)
@given(step=INCREMENTS, size=VALUES, negative=st.booleans())
def test_round_size_never_exceeds_and_stays_on_the_step(step: Decimal, size: Decimal, negative: bool) -> None:
    market = _market(Decimal("0.01"), step)
    signed = -size if negative else size
    rounded = market.round_size(signed)
    assert rounded >= 0  # an absolute size: the direction travels separately
    assert rounded == market.round_size(size)
    assert rounded <= size and size - rounded < step  # never more than asked, less by under a step
    assert _on_grid(rounded, step)
    assert market.round_size(rounded) == rounded


@settings(max_examples=150, deadline=None)
@given(
    price=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**6), places=8, allow_nan=False),
    decimals=st.integers(min_value=0, max_value=6),
    up=ROUNDINGS,
)
def test_hyperliquid_five_significant_figures_for_any_size_decimals(
    price: Decimal, decimals: int, up: bool | None
) -> None:
    """Prices: at most 5 significant figures (integers always allowed) and 6 - szDecimals decimals."""
    tick = Decimal(1).scaleb(-(6 - decimals))
    market = _market(tick, Decimal(1).scaleb(-decimals), 5)
    rounded = market.round_price(price, up=up)
    if rounded != rounded.to_integral_value():
        assert len(rounded.normalize().as_tuple().digits) <= 5, (price, decimals, rounded)
    assert _on_grid(rounded, tick)
    if up is True:
        assert rounded >= price
    elif up is False:
        assert rounded <= price
