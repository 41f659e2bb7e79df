"""Rate limits: buckets never let a 60 s window exceed the venue's budget, and a burst draws no 429."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from decimal import Decimal
from typing import Any

import pytest

from newstrader.domain import OrderRequest, OrderStatus, OrderType, TimeInForce
from newstrader.venues.aster.signing import hmac_signature
from newstrader.venues.base import RateLimited
from newstrader.venues.limits import (
    Priority,
    RateLimiter,
    TokenBucket,
    aster_request_weight,
    hyperliquid_exchange_weight,
    hyperliquid_info_weight,
    hyperliquid_items_weight,
    request_priority,
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


async def test_bucket_paces_so_no_window_exceeds_the_limit() -> None:
    clock = FakeClock()
    bucket = TokenBucket.per_minute("test", 1200, clock=clock)
    spent_at: list[tuple[float, int]] = []

    async def fake_sleep(seconds: float) -> None:  # time passes only when the limiter waits
        clock.now += seconds

    limiter = RateLimiter("test", sleep=fake_sleep)

    for _ in range(300):
        await limiter.acquire([(bucket, 20)], Priority.ORDER)  # orders may spend the whole bucket
        spent_at.append((clock.now, 20))
    # every sliding 60 s window holds at most 1200 weight, and the limiter waited rather than failed
    for start, _ in spent_at:
        assert sum(w for t, w in spent_at if start <= t < start + 60) <= 1200
    assert bucket.waits > 0 and bucket.wait_seconds > 0 and bucket.spent == 6000
    assert clock.now == pytest.approx((6000 - 600) / 10, rel=0.01)  # 600 burst, then 10 weight/s


async def test_retry_after_holds_every_caller() -> None:
    clock = FakeClock()
    bucket = TokenBucket.per_minute("test", 2400, clock=clock)
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.now += seconds

    bucket.hold(7.0)
    await RateLimiter("test", sleep=fake_sleep).acquire([(bucket, 1)], Priority.ORDER)
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


async def test_priorities_orders_first_and_a_reserve_kept_for_them() -> None:
    """Background reads stop at their reserve; waiters are served orders → pre-trade → reconcile → rest."""
    clock = FakeClock()
    bucket = TokenBucket.per_minute("test", 1200, clock=clock)  # 600 burst, 10 weight/s
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        clock.now += seconds
        await real_sleep(0)

    limiter = RateLimiter("test", sleep=fake_sleep)

    with request_priority(Priority.BACKGROUND):
        for _ in range(21):  # 420 of 600: the 30 % reserve (180) is left
            assert await limiter.acquire([(bucket, 20)]) == 0
        background = asyncio.create_task(limiter.acquire([(bucket, 20)]))
    await real_sleep(0)
    assert not background.done() and bucket.tokens < 180 + 20  # waits for its reserve + its weight
    assert await limiter.acquire([(bucket, 20)], Priority.ORDER) == 0  # the reserve is the order's
    while bucket.tokens >= 20:  # orders may drain it all: now every priority must wait
        await limiter.acquire([(bucket, 20)], Priority.ORDER)

    served: list[str] = []

    async def read(priority: Priority, name: str) -> None:
        await limiter.acquire([(bucket, 20)], priority)
        served.append(name)

    background.add_done_callback(lambda _: served.append("background"))
    waiting = [
        asyncio.create_task(read(Priority.RECONCILE, "reconcile")),
        asyncio.create_task(read(Priority.PRE_TRADE, "pre-trade")),
        asyncio.create_task(read(Priority.ORDER, "order")),
    ]
    await asyncio.gather(background, *waiting)
    assert served == ["order", "pre-trade", "reconcile", "background"]
    assert limiter.served[Priority.BACKGROUND] == 22 and limiter.served[Priority.RECONCILE] == 1


def test_per_item_weight_of_fill_reads() -> None:
    assert hyperliquid_items_weight("userFills", 19) == 0 and hyperliquid_items_weight("userFills", 45) == 2
    assert hyperliquid_items_weight("historicalOrders", 2000) == 100
    assert hyperliquid_items_weight("userFillsByTime", 40) == 2 and hyperliquid_items_weight("meta", 400) == 0
    # The docs' whole list: funding and TWAP histories too; candles weigh +1 per 60.
    assert (
        hyperliquid_items_weight("userFunding", 100) == 5
        and hyperliquid_items_weight("recentTrades", 20) == 1
    )
    assert (
        hyperliquid_items_weight("candleSnapshot", 119) == 1
        and hyperliquid_items_weight("candleSnapshot", 120) == 2
    )


def test_aster_v3_account_read_weighs_what_the_venue_charges() -> None:
    """The v3 path of `account` (w5) is `accountWithJoinMargin`: charged as such, not as 1."""
    assert (
        aster_request_weight("/fapi/v3/accountWithJoinMargin")
        == 5
        == aster_request_weight("/fapi/v4/account")
    )
    assert aster_request_weight("/fapi/v3/listenKey", "POST") == 1


async def test_hyperliquid_charges_per_item_weight_after_the_reply(sim: Any) -> None:
    v = make_venue(sim, "hyperliquid")
    try:
        for i in range(41):  # 41 outside trades: 41 fills
            sim.admin.set_position("hyperliquid", v.account, "ETH", str(Decimal("0.01") * (i % 2 + 1)))
        bucket = v.venue.http.ip_bucket
        before = bucket.spent
        rows = await v.venue.http.info({"type": "userFills", "user": v.account.lower()})
        assert len(rows) == 41 and bucket.spent - before == 20 + 2
    finally:
        await v.venue.close()


async def test_resolving_a_filled_order_costs_the_same_however_many_fills_the_account_has(sim: Any) -> None:
    """An ambiguous order found filled: its fills are read from its own time on (`userFillsByTime`),
    not the account's last 2000 (`userFills`, +1 weight per 20): the weight the venue charged."""
    v = make_venue(sim, "hyperliquid")
    try:
        for i in range(60):  # 60 outside trades: 60 older fills (+3 weight on a whole-history read)
            sim.admin.set_position("hyperliquid", v.account, "ETH", str(Decimal("0.01") * (i % 2 + 1)))
        order = OrderRequest(coin="ETH", is_buy=True, size=Decimal("0.01"), client_id="nt-limits-status-1")
        placed = await v.venue.place_order(order)
        assert placed.filled_size == Decimal("0.01")
        before = sim.admin.stats()["weight_totals"]["hyperliquid"]
        found = await v.venue.order_status("nt-limits-status-1", "ETH")
        assert found is not None and found.filled_size == Decimal("0.01") and found.avg_price is not None
        assert sim.admin.stats()["weight_totals"]["hyperliquid"] - before == 2 + 20  # orderStatus + one read
    finally:
        await v.venue.close()


async def test_hyperliquid_market_table_is_read_once_for_callers_close_together(sim: Any) -> None:
    """`meta` weighs 20: the bot's start-up asks for the markets three times, the venue sees one."""
    v = make_venue(sim, "hyperliquid")
    try:
        before = sim.admin.stats()["requests"].get("hyperliquid", {}).get("info:meta", 0)
        first, second, third = [await v.venue.markets() for _ in range(3)]
        assert first == second == third and "ETH" in first
        assert sim.admin.stats()["requests"]["hyperliquid"]["info:meta"] == before + 1
    finally:
        await v.venue.close()


async def test_a_resyncing_stream_is_not_starved_by_the_reads_it_replaces(sim: Any) -> None:
    """While a stream is down the trading path reads instead and can hold the bucket under the
    reconciliation reserve; the stream's snapshot must still get through, or it never comes back."""
    v = make_venue(sim, "hyperliquid")
    stream = v.venue.stream
    try:
        stream.start()
        assert await stream.wait_current(20)
        bucket = v.venue.http.ip_bucket
        bucket.take(bucket.tokens)  # spent: a reconciliation read would wait ~9 s for its reserve
        connects = stream.connects
        await stream.reconnect()
        deadline = time.monotonic() + 5
        while stream.connects == connects and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # poll for the redial
        assert stream.connects > connects and not stream.state.is_current()
        # The snapshot (clearinghouseState w2 + frontendOpenOrders w20) at 10 weight/s: ~2.2 s.
        assert await stream.wait_current(6)
    finally:
        await v.venue.close()


def _resynced(stream: Any, connects: int) -> bool:
    return bool(stream.connects > connects and stream.state.is_current())


async def test_a_stream_that_was_current_redials_at_once_after_each_new_fault(sim: Any) -> None:
    """Sessions end in errors: a backoff that only a clean end resets grew with every fault over a
    long run (0.2, 0.4, … 10 s), keeping the stream down, and the trading path reading, longer."""
    v = make_venue(sim, "hyperliquid")
    stream = v.venue.stream
    try:
        stream.start()
        assert await stream.wait_current(20)
        for round_ in range(6):  # without the reset the sixth redial waits 3.2 to 9.6 s
            connects = stream.connects
            await asyncio.to_thread(sim.admin.add_fault, "hyperliquid", "ws_disconnect", None, 1)
            await asyncio.to_thread(sim.admin.set_price, "ETH", str(2000 + round_))  # a push to cut
            cut = time.monotonic()
            while stream.state.is_current() and time.monotonic() - cut < 5:
                await asyncio.sleep(0.01)  # poll for the cut
            cut = time.monotonic()
            deadline = cut + 15
            while not _resynced(stream, connects) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # poll for the redial and resync
            assert _resynced(stream, connects)
        assert time.monotonic() - cut < 2.5  # the sixth cut: back within the first backoff step
    finally:
        await asyncio.to_thread(sim.admin.clear_faults)
        await v.venue.close()


async def test_aster_follows_the_venues_used_weight(sim: Any) -> None:
    """Another client on the same IP spent 1400 weight: our bucket believes the venue, not itself."""
    sim.admin.settings(rate_limits=True)
    ours, other = make_venue(sim, "aster-v3"), make_venue(sim, "aster-hmac")
    try:
        config = other.venue.config
        for _ in range(35):  # openOrders without a symbol weighs 40
            query = f"recvWindow=60000&timestamp={int(time.time() * 1000)}"
            signed = f"{query}&signature={hmac_signature(config.secret, query)}"
            reply = sim.http.get(
                f"{sim.aster_url}/fapi/v1/openOrders?{signed}", headers={"X-MBX-APIKEY": config.api_key}
            )
            assert reply.status_code == 200, reply.text
        await ours.venue.http.public("GET", "time")
        assert ours.venue.http.ip_bucket.tokens <= 2400 - 1400
    finally:
        await ours.venue.close()
        await other.venue.close()


async def test_aster_signs_a_read_after_the_limiters_wait_not_before(sim: Any) -> None:
    """A read the limiter holds back reaches the venue inside its time window: the loaded `make
    test` saw an Aster read refused with -1021 (signed, then held > 10 s behind trading)."""
    under = make_venue(sim, "aster-hmac")
    http = under.venue.http
    try:
        await under.venue.positions()  # clock synced, connection open
        http.config = dataclasses.replace(http.config, recv_window_ms=300)
        label = "GET /fapi/v2/positionRisk"
        before = sim.admin.stats()["requests"]["aster"].get(label, 0)
        http.ip_bucket.hold(1.0)  # everyone waits a second (a Retry-After, or trading's reserve)
        with request_priority(Priority.BACKGROUND):
            await under.venue.positions()
        assert sim.admin.stats()["requests"]["aster"].get(label, 0) - before == 1  # no refusal, no retry
    finally:
        await under.venue.close()
