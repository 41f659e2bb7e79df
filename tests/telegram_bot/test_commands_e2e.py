"""Commands from the phone through the running bot: only the configured chat is obeyed, and
/flatten acts only after its confirmation button, through the same bot methods as the dashboard.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from .conftest import ALLOWED_CHAT, STRANGER_CHAT, wait_until

pytestmark = pytest.mark.xdist_group("telegram")


def _reply_after(standin: Any, chat_id: int, count_before: int, needle: str) -> Any:
    """The first message to `chat_id` after the first `count_before` that contains `needle`."""
    found = wait_until(
        lambda: [m for m in standin.messages(chat_id)[count_before:] if needle in m.text], timeout=30
    )
    return found[0]


def _open(world: Any, coin: str) -> dict[str, Decimal]:
    world.bot.news(coin, "long")
    want = world.target(coin, "long")
    return wait_until(lambda: (p := world.positions(coin)) and all(v == want for v in p.values()) and p)


def _flatten_prompt(world: Any) -> tuple[Any, str]:
    """Send /flatten from the allowed chat; the prompt and its Confirm button's data."""
    standin = world.standin
    before = len(standin.messages(ALLOWED_CHAT))
    standin.send_command(ALLOWED_CHAT, "/flatten")
    prompt = _reply_after(standin, ALLOWED_CHAT, before, "Confirm within")
    confirm = next(b["callback_data"] for b in prompt.buttons() if b["callback_data"].startswith("flatten:"))
    return prompt, confirm


def test_flatten_from_the_allowed_chat_flattens_after_confirmation(tg_world: Any) -> None:
    world = tg_world
    standin = world.standin
    world.start_telegram_bot()
    held = {coin: _open(world, coin) for coin in ("SOL", "LINK")}

    before = len(standin.messages(ALLOWED_CHAT))
    standin.send_command(ALLOWED_CHAT, "/positions")
    positions = _reply_after(standin, ALLOWED_CHAT, before, "Positions: exchange | cache")
    for venue in ("hyperliquid", "aster"):
        assert f"{venue} SOL: 10 | 10" in positions.text and f"{venue} LINK: 100 | 100" in positions.text

    prompt, confirm = _flatten_prompt(world)
    # Asking is all /flatten does: every position is still held.
    assert {coin: world.positions(coin) for coin in held} == held

    standin.press(ALLOWED_CHAT, prompt, confirm)
    for coin in held:
        wait_until(lambda c=coin: all(v == 0 for v in world.positions(c).values()), timeout=60)
    wait_until(lambda: prompt.edits and prompt.edits[-1].startswith("flatten: flat"), timeout=30)
    assert standin.callback_answers and standin.callback_answers[0]["text"] == "flattening…"
    assert world.bot.http.get("/api/positions").json()["paused"] is True  # flatten pauses, as on the web
    # Through the engine's kill switch: the journal has its close events for every venue.
    closed = {(r["venue"], r["coin"]) for r in world.bot.events("flatten_close")}
    assert {(v, c) for v in ("hyperliquid", "aster") for c in held} <= closed

    # The same button again does nothing more: its nonce was used up.
    standin.press(ALLOWED_CHAT, prompt, confirm)
    wait_until(lambda: prompt.edits[-1] == "Flatten: expired, nothing done.", timeout=30)


def test_commands_from_a_strangers_chat_do_nothing(tg_world: Any) -> None:
    world = tg_world
    standin = world.standin
    standin.send_command(ALLOWED_CHAT, "/pause")  # typed while the bot was down: never acted on
    bot = world.start_telegram_bot()
    held = _open(world, "AVAX")
    prompt, confirm = _flatten_prompt(world)

    # A stranger sends the commands and even presses a genuine Confirm button's data.
    standin.send_command(STRANGER_CHAT, "/flatten")
    standin.send_command(STRANGER_CHAT, "/pause")
    standin.send_command(STRANGER_CHAT, "/close AVAX")
    last = standin.press(STRANGER_CHAT, prompt, confirm)
    wait_until(lambda: standin.consumed(last), timeout=30)
    # The bot handles updates in order: its answer to a later /stats means it saw them all.
    before = len(standin.messages(ALLOWED_CHAT))
    standin.send_command(ALLOWED_CHAT, "/stats")
    _reply_after(standin, ALLOWED_CHAT, before, "Stats")

    assert world.positions("AVAX") == held
    assert bot.http.get("/api/positions").json()["paused"] is False
    assert standin.messages(STRANGER_CHAT) == []
    assert prompt.edits == [] and standin.callback_answers == []
    assert bot.events("flatten_close") == [] and bot.events("paused") == []
    ignored = [line for line in bot.log().splitlines() if "telegram_stranger_ignored" in line]
    assert len(ignored) == 1 and f"chat_id={STRANGER_CHAT}" in ignored[0]  # four updates, one line

    # The allowed chat's own button still works afterwards: the stranger did not use it up.
    standin.press(ALLOWED_CHAT, prompt, confirm)
    wait_until(lambda: all(v == 0 for v in world.positions("AVAX").values()), timeout=60)


def test_an_exchange_stop_loss_and_the_daily_loss_limit_are_alerted(tg_world: Any) -> None:
    world = tg_world
    world.exits_extra = "daily_loss_limit_usd = 100"
    world.start_telegram_bot(env={"NEWSTRADER_AUTOTRADE_CHECK_INTERVAL_S": "1"})
    _open(world, "DOT")  # 200 DOT a venue at 5; its stop-loss rests on the exchange at 2.5
    try:
        world.sim.admin.set_price("DOT", "2.4")  # the stops fire on the exchange, not in the bot
        wait_until(lambda: all(v == 0 for v in world.positions("DOT").values()), timeout=60)

        def texts() -> str:
            return "\n".join(m.text for m in world.standin.messages(ALLOWED_CHAT))

        wait_until(lambda: "🛑 daily loss limit:" in texts() and "⏸ paused:" in texts(), timeout=60)
        wait_until(lambda: texts().count("DOT: sold") >= 2, timeout=60)
    finally:
        world.sim.admin.set_price("DOT", "5")
    # Each fill is matched to the journaled trigger order it filled (Aster's by its order id).
    assert "🎯 SL filled hyperliquid DOT: sold 200 @ " in texts()
    assert "🎯 SL filled aster DOT: sold 200 @ " in texts()
    losses = re.findall(r"DOT: sold 200 @ [\d.]+, PnL (-[\d.]+) USD", texts())
    assert len(losses) == 2 and all(Decimal(x) < -100 for x in losses), losses
