"""The auto trader's harness: a real `Bot` (in this process) over the real adapters and the simulator.

Both venues (Hyperliquid + Aster v3 with an approved API-wallet signer) on fresh funded keys;
news goes in through `Bot.submit_news`; the truth is read from the simulator's `/admin/state`.
A restart is a `stop()` and a new `Bot` on the same journal file.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from newstrader.bot import Bot
from newstrader.config import Settings
from newstrader.domain import NewsItem, Side
from newstrader.sim.accounts import SimAccounts
from newstrader.venues.limits import REGISTRY

VENUES = ("hyperliquid", "aster")
MARKS = {"BTC": Decimal(50_000), "ETH": Decimal(2_000), "SOL": Decimal(100)}
NOTIONAL_USD = Decimal(1000)
START_USD = Decimal(1_000_000)


async def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `condition` (sync or async) until truthy; fail clearly at the deadline."""
    import asyncio
    import inspect

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)  # poll interval, not synchronisation


@dataclass
class Rig:
    """The simulator, fresh keys on both venues, and the bots started on them."""

    sim: Any
    workdir: Path
    bots: list[Bot] = field(default_factory=list)
    keys: SimAccounts = field(default_factory=SimAccounts.fresh)

    def __post_init__(self) -> None:
        admin = self.sim.admin
        admin.create_account(self.keys.hl_address, usd=START_USD, venue="hyperliquid")
        admin.create_account(
            self.keys.aster_user, usd=START_USD, venue="aster", signers=[self.keys.aster_signer]
        )
        for coin, price in MARKS.items():
            admin.set_price(coin, price)

    def address(self, venue: str) -> str:
        return self.keys.address(venue)

    # ---- the truth (the simulator)

    def account(self, venue: str) -> dict[str, Any]:
        accounts = self.sim.admin.state()["venues"][venue]["accounts"]
        result: dict[str, Any] = accounts[self.address(venue).lower()]
        return result

    def position(self, venue: str, coin: str) -> Decimal:
        return Decimal(self.sim.admin.position(venue, self.address(venue), coin))

    def positions(self, coin: str) -> dict[str, Decimal]:
        return {v: self.position(v, coin) for v in VENUES}

    def open_orders(self, venue: str, coin: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.account(venue)["open_orders"] if coin is None or o["coin"] == coin]

    def triggers(self, venue: str, coin: str) -> list[dict[str, Any]]:
        return [o for o in self.open_orders(venue, coin) if o["trigger"] is not None]

    def balance_change(self, venue: str) -> Decimal:
        """What the exchange says the account made or lost: realized PnL minus fees."""
        return Decimal(self.account(venue)["balance"]) - START_USD

    def set_price(self, coin: str, price: Decimal | str) -> None:
        self.sim.admin.set_price(coin, str(price))

    # ---- the bot

    def settings(
        self,
        journal_name: str = "bot.db",
        web: dict[str, Any] | None = None,
        sizing: dict[str, Any] | None = None,
        **exits: Any,
    ) -> Settings:
        return Settings(
            web=web or {},
            engine={"mode": "target", "reconcile_interval_s": 3600, "max_signal_age_s": 30},
            sizing={"notional_usd": NOTIONAL_USD, "leverage": 3, **(sizing or {})},
            exits={"take_profit_pct": Decimal(2), "stop_loss_pct": Decimal(1), **exits},
            venues=[
                {
                    "name": "hyperliquid",
                    "kind": "hyperliquid",
                    "network": "sim",
                    "url": self.sim.hl_url,
                    "account": self.keys.hl_address,
                    "secret": self.keys.hl_key,
                },
                {
                    "name": "aster",
                    "kind": "aster",
                    "network": "sim",
                    "url": self.sim.aster_url,
                    "account": self.keys.aster_user,
                    "signer": self.keys.aster_signer,
                    "secret": self.keys.aster_signer_key,
                },
            ],
            news={"dedupe_window_s": 0, "cooldown_s": 0, "min_confidence": 0},
            journal={"url": f"sqlite:///{self.workdir / journal_name}"},
        )

    async def start_bot(
        self, journal_name: str = "bot.db", sizing: dict[str, Any] | None = None, **exits: Any
    ) -> Bot:
        bot = Bot(self.settings(journal_name, sizing=sizing, **exits), serve_web=False)
        await bot.start()
        self.bots.append(bot)
        return bot

    async def stop_bot(self, bot: Bot) -> None:
        await bot.stop()
        self.bots.remove(bot)

    @staticmethod
    async def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
        return await wait_for(condition, timeout)

    async def stats(self, bot: Bot, fills: int, timeout: float = 10.0) -> dict[str, Any]:
        """`bot.stats()` once it counts `fills` exchange fills (it re-reads fills at most every 2 s)."""
        latest: dict[str, Any] = {}

        async def settled() -> bool:
            latest.update(await bot.stats())
            return bool(latest["fills"] == fills)

        await wait_for(settled, timeout)
        return latest

    @staticmethod
    async def news(bot: Bot, coin: str, side: str, source: str = "wire") -> Any:
        item = NewsItem(
            id=f"t-{uuid.uuid4().hex[:12]}",
            title=f"{side} {coin} test headline {uuid.uuid4().hex[:6]}",
            source=source,
            coin=coin,
            side=Side(side),
        )
        return await bot.submit_news(item)


@pytest.fixture
async def rig(sim: Any, tmp_path: Path) -> AsyncIterator[Rig]:
    # The simulator was just reset: the client-side rate budgets start full too, as for a new
    # process, so one test's requests never slow the next.
    REGISTRY.reset()
    r = Rig(sim=sim, workdir=tmp_path)
    yield r
    for bot in list(r.bots):
        await bot.stop()
