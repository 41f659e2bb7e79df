"""Rate limits: buckets never let a 60 s window exceed the venue's budget, and a burst draws no 429."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from newstrader.domain import OrderRequest, OrderStatus, OrderType, TimeInForce
from newstrader.venues.base import RateLimited
from newstrader.venues.limits import (
    RateLimiter,
    TokenBucket,
    aster_request_weight,
    hyperliquid_exchange_weight,
    hyperliquid_info_weight,
)

from .conftest import make_venue


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_published_weights() -> None:
    assert hyperliquid_info_weight("clearinghouseState") == 2 and hyperliquid_info_weight("allMids") == 2
    assert hyperliquid_info_weight("meta") == 20 and hyperliquid_info_weight("userFills") == 20
    assert hyperliquid_info_weight("userRole") == 60
    assert [hyperliquid_exchange_weight(n) for n in (1, 39, 40, 81)] == [1, 1, 2, 3]
    assert (
        aster_request_weight("/fapi/v3/positionRisk") == 5
        and aster_request_weight("/fapi/v1/order", "POST") == 1
    )
    assert aster_request_weight("/fapi/v1/positionSide/dual", "GET") == 30
    assert aster_request_weight("/fapi/v1/openOrders") == 40
    assert aster_request_weight("/fapi/v1/openOrders", params={"symbol": "BTCUSDT"}) == 1


async def test_bucket_paces_so_no_window_exceeds_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    bucket = TokenBucket.per_minute("test", 1200, clock=clock)
    limiter = RateLimiter("test")
    spent_at: list[tuple[float, int]] = []

    async def fake_sleep(seconds: float) -> None:  # time passes only when the limiter waits
        clock.now += seconds

    monkeypatch.setattr("newstrader.venues.limits.asyncio.sleep", fake_sleep)
    for _ in range(300):
        await limiter.acquire([(bucket, 20)])
        spent_at.append((clock.now, 20))
    # every sliding 60 s window holds at most 1200 weight, and the limiter waited rather than failed
    for start, _ in spent_at:
        assert sum(w for t, w in spent_at if start <= t < start + 60) <= 1200
    assert bucket.waits > 0 and bucket.wait_seconds > 0 and bucket.spent == 6000
    assert clock.now == pytest.approx((6000 - 600) / 10, rel=0.01)  # 600 burst, then 10 weight/s


async def test_retry_after_holds_every_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    bucket = TokenBucket.per_minute("test", 2400, clock=clock)
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.now += seconds

    monkeypatch.setattr("newstrader.venues.limits.asyncio.sleep", fake_sleep)
    bucket.hold(7.0)
    await RateLimiter("test").acquire([(bucket, 1)])
    assert clock.now >= 7.0 and bucket.throttled == 1 and bucket.snapshot()["waits"] == 1


@pytest.mark.parametrize("kind", ["hyperliquid", "aster-v3"])
async def test_burst_of_100_orders_draws_no_429(sim: Any, kind: str) -> None:
    """100 concurrent orders with the simulator's rate limits on: all accepted, nonces unique, no 429."""
    sim.admin.settings(rate_limits=True)
    v = make_venue(sim, kind, usd=1_000_000)
    try:
        venue = v.venue
        await venue.markets()
        mark = await venue.mark_price("BTC")
        price = mark * Decimal("0.8")
        size = (await venue.markets())["BTC"].round_size(Decimal(20) / price) * 2
        bucket = venue.http.ip_bucket
        results = await asyncio.gather(
            *(
                venue.place_order(
                    OrderRequest(
                        "BTC",
                        True,
                        size,
                        f"burst-{i}",
                        order_type=OrderType.LIMIT,
                        limit_price=price,
                        tif=TimeInForce.GTC,
                    )
                )
                for i in range(100)
            ),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == [] and all(r.status is OrderStatus.RESTING for r in results)  # type: ignore[union-attr]
        assert bucket.throttled == 0 and not any(isinstance(r, RateLimited) for r in results)
        assert len(await venue.open_orders("BTC")) == 100
        requests = sim.admin.stats()["requests"][v.sim_venue]
        assert sum(n for label, n in requests.items() if "order" in label.lower()) >= 100
    finally:
        await v.venue.close()
