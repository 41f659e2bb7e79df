"""Opt-in smoke test against the real Hyperliquid testnet.

Enabled only when NEWSTRADER_LIVE_HL_TESTNET_KEY holds a testnet private key (of the account, or
of an agent wallet with NEWSTRADER_LIVE_HL_TESTNET_ACCOUNT naming the account). It reads, places
one post-only buy far below the market and cancels it; it never opens a position.
"""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal

import pytest

from newstrader.domain import OrderRequest, OrderStatus, OrderType, TimeInForce, utcnow
from newstrader.venues.factory import build_venue
from newstrader.venues.hyperliquid.signing import cancel_action

KEY = os.environ.get("NEWSTRADER_LIVE_HL_TESTNET_KEY")
ACCOUNT = os.environ.get("NEWSTRADER_LIVE_HL_TESTNET_ACCOUNT")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not KEY,
        reason="live Hyperliquid testnet smoke test: set NEWSTRADER_LIVE_HL_TESTNET_KEY (and optionally "
        "NEWSTRADER_LIVE_HL_TESTNET_ACCOUNT) to run it",
    ),
]


async def test_hyperliquid_testnet_smoke() -> None:
    cfg = {"name": "hl-testnet", "kind": "hyperliquid", "network": "testnet", "secret": KEY, "timeout_s": 15}
    if ACCOUNT:
        cfg["account"] = ACCOUNT
    venue = build_venue(cfg)
    try:
        markets = await venue.markets()
        assert markets["BTC"].asset_id == 0 and markets["ETH"].asset_id == 1
        mark = await venue.mark_price("BTC")
        positions = await venue.positions()
        assert all(p.size != 0 for p in positions.values())
        await venue.fills(utcnow() - timedelta(days=1))
        price = mark * Decimal("0.5")
        size = markets["BTC"].round_size(Decimal(12) / price) + markets["BTC"].size_step
        client_id = f"nt-live-{int(utcnow().timestamp())}"
        placed = await venue.place_order(
            OrderRequest(
                "BTC",
                True,
                size,
                client_id,
                order_type=OrderType.LIMIT,
                limit_price=price,
                tif=TimeInForce.POST_ONLY,
            )
        )
        assert placed.status is OrderStatus.RESTING
        found = await venue.order_status(client_id)
        assert found is not None and found.venue_order_id == placed.venue_order_id
        reply = await venue._send(cancel_action([(0, int(placed.venue_order_id or 0))]), 1)  # type: ignore[attr-defined]
        assert reply["response"]["data"]["statuses"] == ["success"]
    finally:
        await venue.close()
