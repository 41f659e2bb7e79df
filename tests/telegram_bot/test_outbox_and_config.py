"""The outbox's rules on their own (a recording send function stands for the Bot API) and the
`[telegram]` config section's refusals."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest

from newstrader.config import ConfigError, settings_from_mapping
from newstrader.domain import Fill, utcnow
from newstrader.logging_setup import secrets_from_env
from newstrader.telegram import alerts
from newstrader.telegram.outbox import ChatOutbox, RetryLater, SendFailed


class Recorder:
    """A send function: records (chat, text, time); can fail the next calls on purpose."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.sent: list[tuple[int, str, float]] = []
        self.failures = list(failures or [])
        self.attempts = 0

    async def __call__(self, chat_id: int, text: str) -> None:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((chat_id, text, time.monotonic()))


def _outcome(signal_id: str, venue: str) -> dict[str, Any]:
    return {
        "type": "outcome",
        "venue": venue,
        "coin": "BTC",
        "signal_id": signal_id,
        "status": "ok",
        "ack_ms": 12.5,
        "exchange_size_after": "0.0200",
    }


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)  # poll interval


async def test_a_signals_venues_merge_into_one_line_and_a_burst_into_one_message() -> None:
    send = Recorder()
    outbox = ChatOutbox(1, send, min_interval_s=0.2, coalesce_s=0.05)
    task = asyncio.create_task(outbox.run())
    try:
        for i in range(30):
            for venue in ("hyperliquid", "aster"):
                alert = alerts.from_event(_outcome(f"s-{i}", venue))
                assert alert is not None
                outbox.put(alert)
        await _until(lambda: send.sent)
        text = send.sent[0][1]
        assert text.startswith("newstrader · 30 trades")
        assert "BTC [s-29]: hyperliquid ✅ ok 12 ms → 0.02; aster ✅ ok 12 ms → 0.02" in text
        assert "… 5 earlier not shown" in text  # 25 lines at most, the newest kept
    finally:
        task.cancel()


async def test_a_full_outbox_drops_its_oldest_and_says_so() -> None:
    send = Recorder()
    outbox = ChatOutbox(1, send, min_interval_s=0, coalesce_s=0.05, max_items=10)
    for i in range(15):
        outbox.put(alerts.lifecycle(f"event {i}"))
    task = asyncio.create_task(outbox.run())
    try:
        await _until(lambda: send.sent)
        text = send.sent[0][1]
        assert "(5 older alerts dropped: the queue was full)" in text
        assert "event 14" in text and "event 4" not in text
    finally:
        task.cancel()


async def test_429_waits_retry_after_then_sends_once_and_failures_retry() -> None:
    send = Recorder([RetryLater(0.3), SendFailed("timed out")])
    outbox = ChatOutbox(-100, send, min_interval_s=0, coalesce_s=0.01)
    assert outbox.min_interval_s == 3.0  # a group: the Bot API allows 20 messages a minute
    outbox.put(alerts.lifecycle("hello"))
    began = time.monotonic()
    task = asyncio.create_task(outbox.run())
    try:
        await _until(lambda: send.sent, timeout=15)
        assert send.attempts == 3 and len(send.sent) == 1
        assert send.sent[0][2] - began >= 0.3 + 1.0  # retry_after, then the first back-off
        assert await outbox.drain(5)
    finally:
        task.cancel()


def test_exchange_exits_are_named_and_carry_their_pnl_net_of_fees() -> None:
    fill = Fill(
        venue="aster",
        coin="ETH",
        is_buy=False,
        size=Decimal("0.5"),
        price=Decimal("2100"),
        fee=Decimal("0.5"),
        realized_pnl=Decimal("50"),
        time=utcnow(),
        fill_id="f1",
        client_id=None,  # Aster's fills carry no client id: matched to the order by its id
    )
    assert alerts.exit_kind("tp0") == "TP" and alerts.exit_kind("sl1") == "SL"  # the trigger legs
    assert alerts.exit_kind("t0") is None  # the bot's own trade: no exit alert
    assert alerts.exit_kind(None) == "exit"  # no order the bot journaled
    line = alerts.from_fill(fill, "TP").line()
    assert line == "🎯 TP filled aster ETH: sold 0.5 @ 2100, PnL +49.5 USD (fee 0.5)"
    unnamed = alerts.from_fill(fill, "exit")
    assert unnamed.head == "🎯 exit filled (not a bot order: by hand?) aster ETH:"


def test_the_token_is_refused_in_the_file_and_required_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSTRADER_TELEGRAM_TOKEN", raising=False)
    with pytest.raises(ConfigError) as in_file:
        settings_from_mapping({"telegram": {"chat_ids": [1], "token": "123:abc"}})
    assert in_file.value.key == "telegram.token" and "NEWSTRADER_TELEGRAM_TOKEN" in str(in_file.value)
    with pytest.raises(ConfigError) as missing:
        settings_from_mapping({"telegram": {"chat_ids": [1]}})
    assert missing.value.key == "telegram.token"
    with pytest.raises(ConfigError) as no_chats:
        monkeypatch.setenv("NEWSTRADER_TELEGRAM_TOKEN", "7000000001:AAtesttokentesttoken")
        settings_from_mapping({"telegram": {"chat_ids": []}})
    assert no_chats.value.key == "telegram.chat_ids"
    settings = settings_from_mapping({"telegram": {"chat_ids": [5], "events": ["trade"]}})
    assert "7000000001:AAtesttokentesttoken" in settings.secrets()
    assert "7000000001:AAtesttokentesttoken" in secrets_from_env()


def test_quarantine_and_release_events_become_alerts() -> None:
    # The shapes the executor publishes (engine/executor.py: _announce_quarantine, _release).
    held = alerts.from_event(
        {"type": "alert", "kind": "venue_quarantined", "venue": "aster", "reason": "auth"}
    )
    freed = alerts.from_event({"type": "alert", "kind": "venue_released", "venue": "aster"})
    assert held is not None and held.category == "quarantine" and held.line() == "⛔ aster quarantined: auth"
    assert freed is not None and freed.line() == "✅ aster released: health read succeeded"
    assert alerts.from_event({"type": "order", "venue": "aster"}) is None  # orders: the outcome says it


def test_a_trade_waits_for_every_venue_then_goes_out_whole_or_late() -> None:
    trades = alerts.TradeAssembler(["aster", "hyperliquid"], wait_s=5.0)
    first = alerts.from_event(_outcome("s-1", "hyperliquid"))
    second = alerts.from_event(_outcome("s-1", "aster"))
    assert first is not None and second is not None
    assert trades.add(first, "hyperliquid", now=0.0) == []  # Aster has not answered yet
    (whole,) = trades.add(second, "aster", now=1.0)
    assert whole.line().count("✅ ok") == 2
    lone = alerts.from_event(_outcome("s-2", "hyperliquid"))
    assert lone is not None and trades.add(lone, "hyperliquid", now=2.0) == []
    assert trades.next_deadline() == 7.0 and trades.expired(now=6.9) == []
    assert [a.key for a in trades.expired(now=7.0)] == ["trade:s-2"]  # sent with what came
