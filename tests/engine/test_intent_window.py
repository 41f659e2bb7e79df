"""An order's validity window runs from its intent's journal time, and the venue enforces it.

The executor journals an intent, checks it still owns the account, and sends. A process stalled
between that check and the send (SIGSTOP, a GC pause, a VM stall) wakes up with an order whose
intent is older than the venue's window: the in-flight rule (and, in a cluster, a new owner) may
already have declared it never sent. Here the stall is placed exactly, after the pre-send check,
and lasts past the window. The simulator refuses the late order unexecuted, as the venues do
(Hyperliquid `expiresAfter`, Aster's HMAC timestamp / v3 nonce); the engine journals that leg as
failed and never re-sends it under its intent: it re-reads the exchange and sends the missing size
as a new leg, with its own intent and window. One fill, the target, never twice it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from tests.engine.sim_accounts import funded_configs

from newstrader.domain import OutcomeStatus, Side, Signal, utcnow
from newstrader.engine.executor import Executor
from newstrader.engine.risk import Sizer
from newstrader.engine.settings import EngineSettings
from newstrader.journal import Journal
from newstrader.venues.base import Venue
from newstrader.venues.factory import build_venue

MARKS = {"ETH": Decimal(2000)}
NOTIONAL = Decimal(1000)
SHORT_WINDOW_S = 1.0  # Hyperliquid expiresAfter / Aster HMAC recvWindow; Aster v3's is the venue's 10 s
PRE_SEND_CHECK = 2  # a leg's fencing checks: before its intent is journaled, right before its send


class StalledBeforeSend:
    """One bot alone (it owns the account), stalled right after one leg's pre-send check until
    that leg's window has passed: a SIGSTOP, placed exactly."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.checks = 0

    def owns(self, venue: str) -> bool:
        return True

    async def ensure_owner(self, venue: str) -> None:
        self.checks += 1
        if self.checks == PRE_SEND_CHECK:
            woken_at = utcnow() + timedelta(seconds=self.window_s + 0.5)  # the intent is older still
            while utcnow() < woken_at:
                await asyncio.sleep(0.05)


def _config(sim: Any, kind: str) -> tuple[dict[str, Any], str, str]:
    """(venue settings, the simulator's venue name, the account) for a funded account."""
    configs, addresses = funded_configs(sim, MARKS, usd=1_000_000)
    if kind == "hyperliquid":
        return (
            {**configs["hyperliquid"], "order_validity_s": SHORT_WINDOW_S},
            "hyperliquid",
            addresses["hyperliquid"],
        )
    if kind == "aster-v3":
        return configs["aster"], "aster", addresses["aster"]
    user = Account.create()
    api_key, secret = secrets.token_hex(32), secrets.token_hex(32)
    sim.admin.create_account(user.address, usd=1_000_000, venue="aster", api_key=api_key, secret=secret)
    config = {
        "name": "aster",
        "kind": "aster",
        "url": sim.aster_url,
        "account": user.address,
        "auth": "hmac",
        "api_key": api_key,
        "secret": secret,
        "order_validity_s": SHORT_WINDOW_S,
    }
    return config, "aster", user.address


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    opened = await Journal.open(f"sqlite:///{tmp_path / 'engine.db'}")
    yield opened
    await opened.close()


@pytest.mark.parametrize("kind", ["hyperliquid", "aster-hmac", "aster-v3"])
async def test_a_send_stalled_past_its_intents_window_is_refused_and_sent_anew_once(
    sim: Any, journal: Journal, kind: str
) -> None:
    config, sim_venue, account = _config(sim, kind)
    venue: Venue = build_venue(config)
    name = config["name"]
    executor = Executor(
        {name: venue},
        journal,
        EngineSettings(position_source="rest"),
        Sizer(NOTIONAL, 3),
        fence=StalledBeforeSend(venue.order_validity_s),
    )
    signal = Signal(id=f"s-stall-{kind}", news_id=f"n-stall-{kind}", coin="ETH", side=Side.LONG)
    try:
        [outcome] = await executor.execute(signal, venues=[name])
        target = Decimal(1000) / MARKS["ETH"]
        assert outcome.status is OutcomeStatus.OK
        assert Decimal(sim.admin.position(sim_venue, account, "ETH")) == target  # reached, not doubled
        fills = sim.admin.state()["venues"][sim_venue]["accounts"][account.lower()]["fills"]
        assert int(fills) == 1

        # The stalled leg: refused by the venue, journaled as never filled, never seen there; the
        # missing size went out once, as the next leg under its own intent.
        rows = sorted(
            (o for o in await journal.recent_orders(10) if o["signal_id"] == signal.id), key=lambda o: o["id"]
        )
        assert [(o["leg"], o["status"]) for o in rows] == [("t0", "failed"), ("t1", "filled")], rows
        stalled = rows[0]
        assert Decimal(stalled["filled_size"]) == 0 and stalled["error"]
        assert await venue.order_status(stalled["client_id"], "ETH") is None
        assert [o.client_id for o in outcome.orders] == [rows[1]["client_id"]]
    finally:
        await venue.close()
