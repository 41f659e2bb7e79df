from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from newstrader.domain import Market, Side

HL_ETH = Market(
    coin="ETH",
    symbol="ETH",
    size_step=Decimal("0.0001"),
    price_tick=Decimal("0.01"),
    min_notional=Decimal(10),
    max_leverage=25,
    max_price_sig_figs=5,
    asset_id=1,
)


def test_side_of_size() -> None:
    assert Side.of_size(Decimal("0.1")) is Side.LONG
    assert Side.of_size(Decimal("-2")) is Side.SHORT
    assert Side.of_size(Decimal(0)) is None
    assert Side.LONG.opposite is Side.SHORT


def test_hyperliquid_price_rule_examples() -> None:
    assert HL_ETH.round_price(Decimal("3150.5775")) == Decimal("3150.6")
    assert HL_ETH.round_price(Decimal("3150.5775"), up=False) == Decimal("3150.5")
    assert HL_ETH.round_price(Decimal("123456.7")) == Decimal("123457")


@given(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**6), places=8))
def test_round_size_never_exceeds_and_is_on_step(size: Decimal) -> None:
    rounded = HL_ETH.round_size(size)
    assert rounded <= size
    assert size - rounded < HL_ETH.size_step
    assert (rounded / HL_ETH.size_step) == (rounded / HL_ETH.size_step).to_integral_value()


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6), places=6))
def test_round_price_obeys_sig_figs_and_decimals(price: Decimal) -> None:
    p = HL_ETH.round_price(price)
    if p != p.to_integral_value():
        assert len(p.normalize().as_tuple().digits) <= 5
        assert -p.normalize().as_tuple().exponent <= 2
