"""Issue 14, Must show 1 and 2: an order held inside the venue while the bot is killed.

The simulator process holds every order request (`latency_ms` on the order endpoint of both
venues) for longer than the bot lives: the bot journals its intents, sends, and is killed with
SIGKILL while the orders sit in the venue. It is restarted at once, on the same journal, and
then asked to act on the same coins: (a) the same news redelivered, (b) a fresh signal for the
same coin and side, (c) an operator close, (d) a flatten.

1. Held inside the validity window: the held orders land after the restart. The restarted bot
   treats them as in flight (their coins wait), reads the exchange once they landed, and every
   venue ends holding exactly the target (or flat), never twice it.
2. Held past the validity window: the venue refuses the late order (Hyperliquid `expiresAfter`,
   Aster's v3 nonce window) and the engine sends the missing size once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from tests.engine.conftest import VENUES, BotProcess, World, wait_until

# Order placements only (not order-status reads): Aster v3 and HMAC (v1) paths.
ORDER_ENDPOINTS = [
    ("hyperliquid", "exchange:order"),
    ("aster", "POST /fapi/v3/order"),
    ("aster", "POST /fapi/v1/order"),
]
# Held inside the window: longer than a bot restart on a loaded box, so the restarted bot finds
# the orders still in the venue. Hyperliquid's expiresAfter and Aster's HMAC recvWindow are set
# to 30 s for that (Aster v3's nonce window is fixed at 10 s).
LONG_VALIDITY_S = 30
HELD_INSIDE_MS = 20_000
HELD_PAST_MS = 15_000  # past the default 10 s windows of both venues (Aster v3)
HMAC_KEY, HMAC_SECRET = "in-flight-test-key", "in-flight-test-secret"


def long_windows(world: World) -> dict[str, Any]:
    """`start_bot` options for 30 s windows: Hyperliquid expiresAfter, Aster HMAC recvWindow."""
    world.sim.admin.create_account(
        world.keys.aster_user, usd=0, venue="aster", api_key=HMAC_KEY, secret=HMAC_SECRET
    )
    return {
        "venue_lines": {
            "hyperliquid": f"order_validity_s = {LONG_VALIDITY_S}",
            "aster": f'auth = "hmac"\napi_key = "{HMAC_KEY}"\norder_validity_s = {LONG_VALIDITY_S}',
        },
        "env": {"NEWSTRADER_ASTER_SECRET": HMAC_SECRET},
    }


def hold_orders(world: World, ms: int, count: int) -> None:
    for venue, endpoint in ORDER_ENDPOINTS:
        world.sim.admin.add_fault(venue, "latency_ms", count=count, ms=ms, endpoint=endpoint)


def post_news(bot: BotProcess, coin: str, news_id: str) -> None:
    """Send a news item without waiting for its answer (the bot dies before it would come)."""
    body = {"id": news_id, "title": f"long {coin} {news_id}", "coin": coin, "side": "long", "source": "test"}

    def send() -> None:
        with contextlib.suppress(httpx.HTTPError):
            bot.http.post("/api/news", json=body)

    threading.Thread(target=send, daemon=True).start()


def kill_while_held(world: World, coins: list[str], hold_ms: int, **options: Any) -> float:
    """Start a bot, have it send one order per coin and venue that the venue holds, SIGKILL it.

    Returns when the orders were sent (monotonic)."""
    bot = world.start_bot(**options)
    before = {v: world.orders_sent(v) for v in VENUES}
    hold_orders(world, hold_ms, count=len(coins))
    for coin in coins:
        post_news(bot, coin, f"held-{coin}")
    wait_until(lambda: all(world.orders_sent(v) >= before[v] + len(coins) for v in VENUES), timeout=30)
    sent_at = time.monotonic()
    bot.process.kill()  # SIGKILL: nothing of the process runs any more
    bot.process.wait(timeout=10)
    pending = bot.rows("SELECT venue, coin FROM orders WHERE status = 'pending'")
    assert {(r["venue"], r["coin"]) for r in pending} == {(v, c) for v in VENUES for c in coins}
    for coin in coins:
        assert world.positions(coin) == {v: Decimal(0) for v in VENUES}, "the orders must still be held"
    assert world.fills() == {v: 0 for v in VENUES}
    return sent_at


def wait_outcomes(bot: BotProcess, reply: dict[str, Any]) -> list[Any]:
    """The per-venue outcomes of a news reply's signal, once both venues have one."""
    signal = reply.get("signal")
    if signal is None:
        return []
    return wait_until(lambda: (rows := bot.outcomes(signal["id"])) and len(rows) == len(VENUES) and rows, 60)


@pytest.mark.timeout(300)
def test_held_order_lands_after_a_kill_and_nothing_is_doubled(world: World) -> None:
    """Must show 1 (a), (b), (c): redelivered news, a fresh signal, an operator close."""
    coins = ["ETH", "SOL", "AVAX"]
    options = long_windows(world)
    sent_at = kill_while_held(world, coins, HELD_INSIDE_MS, **options)
    bot = world.start_bot(**options)  # at once, on the same journal
    assert time.monotonic() - sent_at < HELD_INSIDE_MS / 1000, "the restart must come before the landing"
    assert "intent_in_flight" in bot.log()

    # (a) The same news again, (b) a fresh signal for the same coin and side, (c) a close.
    redelivered = bot.news("ETH", "long", news_id="held-ETH")
    fresh = bot.news("SOL", "long", news_id="fresh-SOL")
    closed = bot.http.post("/api/control/close", json={"coin": "AVAX"})
    assert closed.status_code == 200, closed.text

    wait_outcomes(bot, redelivered)
    for row in wait_outcomes(bot, fresh):
        # It waited for the order in flight, then read the exchange: the target was already there.
        assert Decimal(row["exchange_size_before"]) == world.target("SOL", "long"), dict(row)
    assert world.positions("ETH") == {v: world.target("ETH", "long") for v in VENUES}
    assert world.positions("SOL") == {v: world.target("SOL", "long") for v in VENUES}
    assert world.positions("AVAX") == {v: Decimal(0) for v in VENUES}
    # One fill per coin and venue (the held order), plus the close of AVAX: nothing was resent.
    assert world.fills() == {v: len(coins) + 1 for v in VENUES}


@pytest.mark.timeout(300)
def test_held_order_lands_after_a_kill_then_flatten_leaves_nothing(world: World) -> None:
    """Must show 1 (d): a flatten right after the restart waits for the order in flight."""
    options = long_windows(world)
    sent_at = kill_while_held(world, ["LINK"], HELD_INSIDE_MS, **options)
    bot = world.start_bot(**options)
    assert time.monotonic() - sent_at < HELD_INSIDE_MS / 1000, "the restart must come before the landing"
    flattened = bot.http.post("/api/control/flatten")
    assert flattened.status_code == 200, flattened.text
    assert world.positions("LINK") == {v: Decimal(0) for v in VENUES}
    # The held order landed (one fill), and the flatten closed it (one more): nothing else traded.
    assert world.fills() == {v: 2 for v in VENUES}
    assert all(world.account(v)["open_orders"] == [] for v in VENUES)


@pytest.mark.timeout(300)
def test_order_held_past_its_validity_is_refused_and_the_missing_size_sent_once(world: World) -> None:
    """Must show 2: the late order is refused by the venue; (a) and (b) each send the size once."""
    coins = ["BNB", "AAVE"]
    sent_at = kill_while_held(world, coins, HELD_PAST_MS)
    bot = world.start_bot()
    redelivered = bot.news("BNB", "long", news_id="held-BNB")
    fresh = bot.news("AAVE", "long", news_id="fresh-AAVE")
    wait_outcomes(bot, redelivered)
    wait_outcomes(bot, fresh)
    # The held requests reach the venue's handler only after their hold; until then nothing
    # tells them apart from orders in flight. Past it, they were refused as expired.
    wait_until(lambda: time.monotonic() > sent_at + HELD_PAST_MS / 1000 + 1, timeout=HELD_PAST_MS / 1000 + 5)
    for coin in coins:
        assert world.positions(coin) == {v: world.target(coin, "long") for v in VENUES}, coin
    # Each coin: the held order was refused, one order sent the missing size.
    assert world.fills() == {v: len(coins) for v in VENUES}
    # Per venue and coin the journal holds the held order, never seen within its window, then
    # the one order that sent the missing size.
    rows = bot.rows("SELECT venue, coin, status, error FROM orders WHERE order_type != 'trigger' ORDER BY id")
    for venue in VENUES:
        for coin in coins:
            statuses = [(r["status"], r["error"]) for r in rows if (r["venue"], r["coin"]) == (venue, coin)]
            assert [status for status, _ in statuses] == ["failed", "filled"], (venue, coin, statuses)
            assert "validity window" in statuses[0][1]
