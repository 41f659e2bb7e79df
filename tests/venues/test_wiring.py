"""Factory and account wiring: config → adapter, agent wallets, URLs, secrets kept out of reprs."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account

from newstrader.config import VenueSettings
from newstrader.domain import OrderRequest, OrderStatus
from newstrader.venues.aster.venue import AsterVenue, aster_client_order_id, coin_of_base
from newstrader.venues.base import AuthError, Venue
from newstrader.venues.factory import build_venue
from newstrader.venues.hyperliquid.venue import HyperliquidVenue

KEY = "0x" + "3c" * 32


def test_build_from_venue_settings_picks_adapter_and_default_urls() -> None:
    hl = build_venue(VenueSettings(name="hl", kind="hyperliquid", network="testnet", secret=KEY))
    aster = build_venue(VenueSettings(name="as", kind="aster", network="mainnet", secret=KEY))
    sim = build_venue(VenueSettings(name="hs", kind="hyperliquid", network="sim", secret=KEY))
    custom = build_venue(VenueSettings(name="c", kind="aster", url="http://127.0.0.1:9999/aster", secret=KEY))
    assert isinstance(hl, HyperliquidVenue) and isinstance(aster, AsterVenue)
    assert all(isinstance(v, Venue) for v in (hl, aster, sim, custom))
    assert hl.http.base_url == "https://api.hyperliquid-testnet.xyz" and not hl.config.is_mainnet
    assert aster.http.base_url == "https://fapi.asterdex.com" and aster.config.chain_id == 1666
    assert sim.http.base_url == "http://127.0.0.1:8900/hyperliquid"
    assert custom.http.base_url == "http://127.0.0.1:9999/aster"
    assert hl.account == Account.from_key(KEY).address.lower()  # no account: the key trades its own
    for venue in (hl, aster, sim, custom):
        assert KEY[2:10] not in repr(venue) and KEY[2:10] not in repr(venue.config)


def test_engine_order_timeout_reaches_both_adapters_and_orders_carry_a_validity_window() -> None:
    """`[engine] order_timeout_s` must bound requests (it did nothing before); orders expire on the venue."""
    for kind in ("hyperliquid", "aster"):
        venue: Any = build_venue(VenueSettings(name=kind, kind=kind, secret=KEY), timeout_s=2.5)
        assert venue.config.timeout_s == 2.5
        assert 0 < venue.order_validity_s <= 10
    hmac: Any = build_venue(
        {
            "name": "h",
            "kind": "aster",
            "auth": "hmac",
            "account": "0x" + "22" * 20,
            "api_key": "k",
            "secret": "s" * 64,
        }
    )
    assert hmac.order_validity_s == hmac.config.recv_window_ms / 1000


def test_missing_secret_and_wrong_signer_are_clear_errors() -> None:
    with pytest.raises(AuthError, match="NEWSTRADER_NOKEY_SECRET"):
        build_venue({"name": "nokey", "kind": "hyperliquid", "account": "0x" + "11" * 20})
    with pytest.raises(AuthError, match="not the configured signer"):
        build_venue(
            {
                "name": "a",
                "kind": "aster",
                "account": "0x" + "11" * 20,
                "signer": "0x" + "22" * 20,
                "secret": KEY,
            }
        )
    with pytest.raises(ValueError, match="api_key"):  # the settings model names the missing key
        build_venue(
            {"name": "a", "kind": "aster", "account": "0x" + "11" * 20, "auth": "hmac", "secret": "s"}
        )
    with pytest.raises(ValueError, match="kind"):
        build_venue({"name": "x", "kind": "binance", "secret": KEY})


def test_aster_client_order_ids_and_coin_names() -> None:
    assert aster_client_order_id("nt-0123456789abcdef0123-open0") == "nt-0123456789abcdef0123-open0"
    long_id = aster_client_order_id("signal with spaces and a very long tail " * 3)
    assert long_id == aster_client_order_id("signal with spaces and a very long tail " * 3)
    assert len(long_id) <= 36 and long_id.startswith("nt-") and " " not in long_id
    assert coin_of_base("1000BONK") == "kBONK" and coin_of_base("BTC") == "BTC"


async def test_hyperliquid_agent_wallet_trades_for_the_account(sim: Any, venue_factory: Any) -> None:
    v = venue_factory("hyperliquid-agent")
    assert v.venue.signer.address.lower() != v.account.lower()
    mark = await v.venue.mark_price("SOL")
    size = (await v.venue.markets())["SOL"].round_size(Decimal(150) / mark)
    result = await v.venue.place_order(OrderRequest("SOL", True, size, "agent-1"))
    assert result.status is OrderStatus.FILLED
    assert (await v.venue.positions())["SOL"].size == size  # the account's position, read by account
    assert Decimal(sim.admin.position("hyperliquid", v.account, "SOL")) == size
    assert (await v.venue.order_status("agent-1")).filled_size == size  # type: ignore[union-attr]


async def test_external_trade_and_liquidation_seen_fresh(vut: Any, sim: Any) -> None:
    """positions() is a fresh read: a trade made elsewhere shows, a liquidation makes the coin absent."""
    await vut.venue.markets()
    sim.admin.set_position(vut.sim_venue, vut.account, "BTC", "-0.01")
    assert (await vut.venue.positions())["BTC"].size == Decimal("-0.01")
    sim.admin.liquidate(vut.sim_venue, vut.account, "BTC")
    assert "BTC" not in await vut.venue.positions()


async def test_hl_market_order_after_a_mark_read_is_one_round_trip(sim: Any, venue_factory: Any) -> None:
    """The engine reads position and mark together, then orders: the order reuses that fresh mid."""
    v = venue_factory("hyperliquid")
    markets = await v.venue.markets()
    mark = await v.venue.mark_price("ETH")
    before = sim.admin.stats()["requests"]["hyperliquid"]
    await v.venue.place_order(
        OrderRequest("ETH", True, markets["ETH"].round_size(Decimal(100) / mark), "rt-1")
    )
    after = sim.admin.stats()["requests"]["hyperliquid"]
    assert sum(after.values()) - sum(before.values()) == 1
    assert after.get("info:allMids") == before.get("info:allMids")


async def test_orders_on_the_wire_carry_no_builder_fee(sim: Any, venue_factory: Any) -> None:
    """Spy on the real requests: no builder / feeRate on any order, cloid and client order id present."""
    import json
    from urllib.parse import parse_qsl

    sent: list[Any] = []

    async def spy(request: Any) -> None:
        sent.append(request)

    hl, aster = venue_factory("hyperliquid"), venue_factory("aster-v3")
    for v in (hl, aster):
        v.venue.http._client.event_hooks["request"].append(spy)
        mark = await v.venue.mark_price("ETH")
        size = (await v.venue.markets())["ETH"].round_size(Decimal(100) / mark)
        await v.venue.place_order(OrderRequest("ETH", True, size, "nt-wire-check-1"))
    hl_orders = [json.loads(r.content) for r in sent if r.url.path.endswith("/exchange")]
    assert len(hl_orders) == 1 and "builder" not in hl_orders[0]["action"]
    assert (
        hl_orders[0]["action"]["orders"][0]["c"] == "0x" + hashlib.sha256(b"nt-wire-check-1").hexdigest()[:32]
    )
    aster_orders = [dict(parse_qsl(r.content.decode())) for r in sent if r.url.path.endswith("/order")]
    assert len(aster_orders) == 1
    order = aster_orders[0]
    assert "builder" not in order and "feeRate" not in order
    assert order["newClientOrderId"] == "nt-wire-check-1" and order["newOrderRespType"] == "RESULT"
    # a market order goes as a LIMIT IOC capped at the mark × (1 + max_slippage), rounded down to the tick
    assert order["type"] == "LIMIT" and order["timeInForce"] == "IOC"
    cap = (await aster.venue.markets())["ETH"].round_price(mark * Decimal("1.05"), up=False)
    assert Decimal(order["price"]) == cap
    assert order["user"] == aster.account and order["signature"].startswith("0x")


@pytest.mark.parametrize("kind", ["aster-v3", "aster-hmac"])
async def test_aster_corrects_a_skewed_local_clock(
    sim: Any, venue_factory: Any, monkeypatch: Any, kind: str
) -> None:
    """Our clock 30 s ahead: the offset from /fapi/v1/time keeps timestamps and nonces in the window."""
    import time as real_time
    from types import SimpleNamespace

    from newstrader.venues.base import Transient

    skewed = SimpleNamespace(
        time=lambda: real_time.time() + 30, time_ns=lambda: real_time.time_ns() + 30 * 10**9
    )
    monkeypatch.setattr("newstrader.venues.aster.http.time", skewed)
    monkeypatch.setattr("newstrader.venues.aster.signing.time", skewed)
    v = venue_factory(kind)
    assert await v.venue.positions() == {}
    assert -31_000 < v.venue.http.offset_ms < -29_000
    mark = await v.venue.mark_price("ETH")
    size = (await v.venue.markets())["ETH"].round_size(Decimal(100) / mark)
    assert (await v.venue.place_order(OrderRequest("ETH", True, size, f"skew-{kind}"))).filled_size == size
    # Control: the same skew without the correction is refused by the venue's time window.
    v.venue.http.offset_ms, v.venue.http.nonces.offset_us = 0, 0
    with pytest.raises(Transient):
        await v.venue.http._call(
            "GET",
            v.venue.http.path("positionRisk", signed=True),
            [],
            is_order=False,
            signed=True,
        )
