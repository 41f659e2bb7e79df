"""Every simulator fault and rejection lands in the error class the engine acts on."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from newstrader.domain import OrderRequest, OrderStatus
from newstrader.venues.base import Ambiguous, AuthError, RateLimited, Rejected, Transient
from newstrader.venues.factory import build_venue
from newstrader.venues.retry import READ_ATTEMPTS

from .conftest import KINDS, VenueUnderTest

COIN = "ETH"


def order_endpoint(v: VenueUnderTest) -> str:
    return "exchange:order" if v.sim_venue == "hyperliquid" else "POST /fapi"


def read_endpoint(v: VenueUnderTest) -> str:
    return "info:clearinghouseState" if v.sim_venue == "hyperliquid" else "positionRisk"


async def _ready(v: VenueUnderTest) -> Decimal:
    """Warm the adapter (markets, clock, mode) so a fault hits exactly the call under test."""
    markets = await v.venue.markets()
    await v.venue.positions()
    return markets[COIN].round_size(Decimal(150) / await v.venue.mark_price(COIN))


def _position(sim: Any, v: VenueUnderTest) -> Decimal:
    return Decimal(sim.admin.position(v.sim_venue, v.account, COIN))


async def test_5xx_on_order_is_ambiguous_and_nothing_ran(vut: VenueUnderTest, sim: Any) -> None:
    size = await _ready(vut)
    sim.admin.add_fault(vut.sim_venue, "http_5xx", count=1, endpoint=order_endpoint(vut), status=503)
    with pytest.raises(Ambiguous):
        await vut.venue.place_order(OrderRequest(COIN, True, size, "e-5xx"))
    assert await vut.venue.order_status("e-5xx") is None and _position(sim, vut) == 0


async def test_5xx_on_read_is_transient_after_retries(vut: VenueUnderTest, sim: Any) -> None:
    await _ready(vut)
    sim.admin.add_fault(vut.sim_venue, "http_5xx", count=READ_ATTEMPTS, endpoint=read_endpoint(vut))
    with pytest.raises(Transient) as caught:
        await vut.venue.positions()
    assert not isinstance(caught.value, RateLimited)
    sim.admin.add_fault(vut.sim_venue, "http_5xx", count=1, endpoint=read_endpoint(vut))
    assert await vut.venue.positions() == {}  # one failure is absorbed by the read retry


async def test_timeout_on_order_is_ambiguous(sim: Any, venue_factory: Any) -> None:
    for kind in KINDS:
        v = venue_factory(kind, timeout_s=0.5)
        size = await _ready(v)
        sim.admin.add_fault(v.sim_venue, "timeout", count=1, endpoint=order_endpoint(v), ms=1500)
        with pytest.raises(Ambiguous):
            await v.venue.place_order(OrderRequest(COIN, True, size, f"e-timeout-{kind}"))
        sim.admin.add_fault(v.sim_venue, "timeout", count=1, endpoint=read_endpoint(v), ms=1500)
        assert await v.venue.positions() == {}  # a read times out, is retried, and succeeds


async def test_dropped_response_after_execute_is_ambiguous_then_found(vut: VenueUnderTest, sim: Any) -> None:
    size = await _ready(vut)
    for n, mode in enumerate(("close", "502")):
        sim.admin.add_fault(
            vut.sim_venue, "drop_response_after_execute", count=1, endpoint=order_endpoint(vut), mode=mode
        )
        cid = f"e-drop-{mode}"
        with pytest.raises(Ambiguous):
            await vut.venue.place_order(OrderRequest(COIN, True, size, cid))
        found = await vut.venue.order_status(cid)
        assert found is not None and found.status is OrderStatus.FILLED and found.filled_size == size
        assert (await vut.venue.positions())[COIN].size == size * (n + 1) == _position(sim, vut)


async def test_429_read_waits_and_succeeds_order_raises_rate_limited(vut: VenueUnderTest, sim: Any) -> None:
    size = await _ready(vut)
    bucket = vut.venue.http.ip_bucket
    before = bucket.throttled
    sim.admin.add_fault(vut.sim_venue, "http_429", count=1, endpoint=read_endpoint(vut))
    assert await vut.venue.positions() == {}
    assert bucket.throttled == before + 1
    sim.admin.add_fault(vut.sim_venue, "http_429", count=5, endpoint=order_endpoint(vut))
    with pytest.raises(RateLimited) as caught:
        await vut.venue.place_order(OrderRequest(COIN, True, size, "e-429"))
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    sim.admin.clear_faults()
    assert _position(sim, vut) == 0 and await vut.venue.order_status("e-429") is None


async def test_rejections_are_rejected(vut: VenueUnderTest, sim: Any) -> None:
    markets = await vut.venue.markets()
    mark = await vut.venue.mark_price(COIN)
    tiny = markets[COIN].round_size(markets[COIN].min_notional / 4 / mark) or markets[COIN].size_step
    with pytest.raises(Rejected):  # below the minimum order value
        await vut.venue.place_order(OrderRequest(COIN, True, tiny, "e-tiny"))
    with pytest.raises(Rejected):  # far more than the margin allows
        await vut.venue.place_order(
            OrderRequest(COIN, True, markets[COIN].round_size(10**8 / mark), "e-huge")
        )
    with pytest.raises(Rejected):
        await vut.venue.place_order(OrderRequest("NOSUCHCOIN", True, Decimal(1), "e-coin"))
    assert await vut.venue.positions() == {}


async def test_unknown_key_is_auth_error(sim: Any) -> None:
    for kind in ("hyperliquid", "aster"):
        if kind not in {k.split("-")[0] for k in KINDS}:
            continue
        venue = build_venue(
            {
                "name": f"{kind}-nobody",
                "kind": kind,
                "network": "sim",
                "url": sim.hl_url if kind == "hyperliquid" else sim.aster_url,
                "secret": "0x" + "42" * 32,
            }
        )
        try:
            with pytest.raises(AuthError):  # Aster already refuses its signed market read; HL the order
                await venue.markets()
                await venue.place_order(OrderRequest(COIN, True, Decimal("0.01"), f"e-auth-{kind}"))
        finally:
            await venue.close()


async def test_bad_hmac_secret_is_auth_error(sim: Any) -> None:
    from eth_account import Account

    wallet = Account.create()
    sim.admin.create_account(wallet.address, venue="aster", api_key="k" * 64, secret="s" * 64)
    venue = build_venue(
        {
            "name": "aster-bad",
            "kind": "aster",
            "network": "sim",
            "url": sim.aster_url,
            "account": wallet.address,
            "auth": "hmac",
            "api_key": "k" * 64,
            "secret": "not-the-secret",
        }
    )
    try:
        with pytest.raises(AuthError):
            await venue.positions()
    finally:
        await venue.close()


async def test_hedge_mode_is_refused_with_a_clear_message(venue_factory: Any) -> None:
    v = venue_factory("aster-v3")
    await v.venue.http.signed("POST", "positionSide/dual", [("dualSidePosition", "true")])
    fresh = venue_factory("aster-v3")
    fresh.venue.http, fresh.venue.config = v.venue.http, v.venue.config  # same account, new adapter
    with pytest.raises(AuthError, match="hedge"):
        await fresh.venue.positions()
    with pytest.raises(AuthError, match="One-way"):
        await fresh.venue.place_order(OrderRequest(COIN, True, Decimal("0.1"), "e-hedge"))
