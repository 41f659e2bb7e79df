"""Alerts through the running bot: `newstrader run` + the venue simulator + the Bot API stand-in.

One bot serves the module (a bot process is slow to start on a loaded box); each test uses its
own coins. The bot logs at debug level, so the last test can show the token never reaches a log.
"""

from __future__ import annotations

import itertools
import json
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from .conftest import ALLOWED_CHAT, Fault, wait_until

pytestmark = pytest.mark.xdist_group("telegram")

TRADES = re.compile(r"\b(\d+) trades?\b")  # in the header line: `newstrader · 1 status · 2 trades`


def _messages(world: Any, needle: str) -> list[Any]:
    return [m for m in world.standin.messages(ALLOWED_CHAT) if needle in m.text]


def _trade_count(text: str) -> int:
    header = text.split("\n", 1)[0]
    found = TRADES.search(header) if header.startswith("newstrader · ") else None
    return int(found.group(1)) if found else 0


def test_start_up_is_announced(alerts_world: Any) -> None:
    started = wait_until(lambda: _messages(alerts_world, "newstrader started"), timeout=30)
    assert "hyperliquid" in started[0].text and "aster" in started[0].text


def test_a_trade_is_one_message_with_each_venue_and_its_latency(alerts_world: Any) -> None:
    bot = alerts_world.bot
    signal_id = bot.news("BTC", "long")["signal"]["id"]
    first = wait_until(lambda: _messages(alerts_world, signal_id), timeout=30)
    text = first[0].text
    assert _trade_count(text) == 1
    for venue in ("hyperliquid", "aster"):
        assert re.search(rf"{venue} ✅ ok \d+ ms → 0\.02\b", text), text
    # A later trade's message shows the outbox moved on: the first trade was still one message.
    later = bot.news("ETH", "long")["signal"]["id"]
    wait_until(lambda: _messages(alerts_world, later), timeout=30)
    assert len(_messages(alerts_world, signal_id)) == 1


def test_a_burst_of_50_signals_is_a_bounded_number_of_messages(alerts_world: Any) -> None:
    bot = alerts_world.bot
    standin = alerts_world.standin
    before = len(standin.messages(ALLOWED_CHAT))
    # A headline storm on five coins: each coin's first signal opens it, the rest find the target
    # reached. (Fifty flips would be rate-limited by the bot's own Hyperliquid request budget.)
    coins = ["SOL", "AVAX", "LINK", "LTC", "BNB"]
    jobs = [(coins[i % len(coins)], "long") for i in range(50)]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        decisions = list(pool.map(lambda job: bot.news(*job), jobs))
    assert all(d["signal"] is not None for d in decisions)

    def burst_messages() -> list[Any]:
        return [m for m in standin.messages(ALLOWED_CHAT)[before:] if _trade_count(m.text)]

    # Every signal is reported (a signal split across two windows counts twice, hence ≥).
    wait_until(lambda: sum(_trade_count(m.text) for m in burst_messages()) >= 50, timeout=60)
    took = time.monotonic() - started
    messages = burst_messages()
    # One message per 1 s (the per-chat limit) at most, plus the window still open at either end.
    assert len(messages) <= took / 1.0 + 2, (len(messages), took)
    assert len(messages) <= 15
    gaps = [b.at - a.at for a, b in itertools.pairwise(messages)]
    assert all(gap >= 0.9 for gap in gaps), gaps  # never faster than the Bot API's 1 message/s a chat


def _aster_latencies(bot: Any, coin: str, n: int, start: int = 0) -> tuple[list[float], list[str]]:
    """Trade `n` times; each signal's Aster latency (received → filled, ms) as the engine stamped it.

    Aster, because the bot's own Hyperliquid request budget (1200 weight a minute, spent by the
    other tests' trades) makes Hyperliquid's latency wander in a way that has nothing to do with
    Telegram; Aster's budget is not touched here. A blocked loop would slow both venues alike.
    """
    seconds, ids = [], []
    for i in range(start, start + n):  # long, short, long…: every signal trades
        signal_id = bot.news(coin, "long" if i % 2 == 0 else "short")["signal"]["id"]
        row = wait_until(lambda sid=signal_id: [r for r in bot.outcomes(sid) if r["venue"] == "aster"])[0]
        stamps = json.loads(row["latency"])
        assert row["status"] == "ok", dict(row)
        seconds.append((stamps["filled"] - stamps["received"]) * 1000)
        ids.append(signal_id)
    return seconds, ids


def test_a_telegram_outage_does_not_slow_trading(alerts_world: Any) -> None:
    bot = alerts_world.bot
    standin = alerts_world.standin
    n = 3
    baseline, _ = _aster_latencies(bot, "ZEC", n)

    try:
        standin.set_fault(Fault("429", retry_after=3))
        limited, _ = _aster_latencies(bot, "BCH", n)
        wait_until(lambda: standin.faulted_count("429") > 0, timeout=30)
        limited += _aster_latencies(bot, "BCH", n, start=n)[0]  # while the outbox waits out retry_after

        standin.set_fault(Fault("hang", hang_s=20))  # the bot's client gives up after 1 s
        hanging, _ = _aster_latencies(bot, "DOT", n)
        wait_until(lambda: standin.faulted_count("hang") > 0, timeout=30)
        more, more_ids = _aster_latencies(bot, "DOT", n, start=n)  # while sends are timing out
        hanging += more
    finally:
        standin.set_fault(None)

    base = statistics.median(baseline)
    for phase in (limited, hanging):
        # A generous bound against the same run's baseline: a sender in the way would add seconds.
        assert statistics.median(phase) <= 2 * base + 50, (phase, baseline)

    # After the outage the queued alerts arrive: nothing the outbox kept was lost.
    wait_until(lambda: _messages(alerts_world, more_ids[-1]), timeout=60)


def test_drift_pause_and_resume_are_alerted(alerts_world: Any) -> None:
    bot = alerts_world.bot
    # A trade made by hand on the exchange: the account stream pushes it, and it is drift at once.
    alerts_world.outside_trade("hyperliquid", "AAVE", "3")
    drift = wait_until(lambda: _messages(alerts_world, "⚠️ drift hyperliquid AAVE:"), timeout=30)
    assert "missing_local_adopted: exchange 3, cache -" in drift[0].text

    assert bot.http.post("/api/control/pause").status_code == 200  # the dashboard's button
    paused = wait_until(lambda: _messages(alerts_world, "⏸ paused:"), timeout=30)
    assert bot.http.post("/api/control/resume").status_code == 200
    wait_until(lambda: _messages(alerts_world, "▶️ resumed:"), timeout=30)
    assert "newstrader · 1 control" in paused[0].text or "controls" in paused[0].text


def test_the_token_appears_in_no_log(alerts_world: Any) -> None:
    standin = alerts_world.standin
    bot = alerts_world.bot
    assert standin.count("getMe") >= 1 and standin.unauthorized == 0  # the client did use the token
    assert bot.stop() == 0
    wait_until(lambda: _messages(alerts_world, "newstrader stopping"), timeout=30)
    log = bot.log()
    assert standin.token not in log
    assert standin.token.split(":")[1] not in log
    # python-telegram-bot logs its URL (with the token in it) at debug level: it shows redacted.
    assert f"{standin.url}/bot***" in log
    assert standin.token.encode() not in bot.journal_path.read_bytes()
