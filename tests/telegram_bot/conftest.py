"""The Telegram room's harness: the bot process + the venue simulator + the Bot API stand-in.

Reuses the engine's end-to-end harness (tests/harness/bots.py) and adds a
`[telegram]` section pointing python-telegram-bot's `base_url` at the stand-in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.harness.bots import World, wait_until

from .standin import BotApiStandIn, Fault

__all__ = ["ALLOWED_CHAT", "STRANGER_CHAT", "Fault", "wait_until"]

ALLOWED_CHAT = 424242
STRANGER_CHAT = 666


@dataclass
class TelegramWorld(World):
    """A World whose bots also run `[telegram]` against the stand-in."""

    standin: Any = None
    telegram_extra: str = ""
    exits_extra: str = ""

    def config(self, **kwargs: Any) -> str:
        base = super().config(**kwargs).replace("[exits]\n", f"[exits]\n{self.exits_extra}\n", 1)
        return (
            base
            + f"""
[telegram]
chat_ids = [{ALLOWED_CHAT}]
api_url = "{self.standin.api_url}"
min_interval_s = 1.0
coalesce_s = 0.5
request_timeout_s = 1.0
{self.telegram_extra}
"""
        )

    def start_telegram_bot(self, **kwargs: Any) -> Any:
        env = {"NEWSTRADER_TELEGRAM_TOKEN": self.standin.token, **kwargs.pop("env", {})}
        bot = self.start_bot(env=env, **kwargs)
        # Commands can be sent once the bot polls (it drops what was pending before).
        wait_until(lambda: self.standin.count("getUpdates") > 0, timeout=60)
        return bot


def new_token() -> str:
    """A token in BotFather's shape: `<bot id>:<35 characters>`."""
    return f"7000000001:AA{uuid.uuid4().hex}{uuid.uuid4().hex[:1]}"


@pytest.fixture
def standin() -> Iterator[Any]:
    server = BotApiStandIn(new_token())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def tg_world(engine_sim: Any, standin: Any, tmp_path: Path) -> Iterator[TelegramWorld]:
    """Fresh funded accounts, the stand-in, and bots (stopped after the test)."""
    world = TelegramWorld(sim=engine_sim, workdir=tmp_path, standin=standin)
    yield world
    for bot in world.bots:
        bot.stop()
    engine_sim.admin.clear_faults()


@pytest.fixture(scope="module")
def module_standin() -> Iterator[Any]:
    server = BotApiStandIn(new_token())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def alerts_world(
    engine_sim: Any, module_standin: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TelegramWorld]:
    """One bot for the alert tests, logging at debug level (so a token leak would show).

    Its auto-trader monitor turns hourly: its reads (fills, open orders) would spend the bot's
    own Hyperliquid request budget, and these tests trade more than a minute's budget allows.
    """
    workdir = tmp_path_factory.mktemp("tg-alerts")
    world = TelegramWorld(sim=engine_sim, workdir=workdir, standin=module_standin)
    world.start_telegram_bot(
        env={"NEWSTRADER_LOG_LEVEL": "debug", "NEWSTRADER_AUTOTRADE_CHECK_INTERVAL_S": "3600"}
    )
    yield world
    for bot in world.bots:
        bot.stop()
