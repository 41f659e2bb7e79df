"""One bot on a PostgreSQL journal without a bus: it claims its accounts and its own webhook
still works, each owned account handling the item in its lane; a second bot with the same
account stands by and trades nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from eth_account import Account

from newstrader.bot import Bot
from newstrader.config import settings_from_mapping
from newstrader.domain import NewsItem


def _settings(sim: Any, pg_url: str, address: str, instance: str) -> Any:
    return settings_from_mapping(
        {
            "venues": [{"name": "hl-1", "kind": "hyperliquid", "url": sim.hl_url, "account": address}],
            "journal": {"url": pg_url},
            "cluster": {"instance": instance},
            "news": {"min_confidence": 0, "dedupe_window_s": 0},
            "sizing": {"notional_usd": 100},
            "web": {"port": 0},
        }
    )


async def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        await asyncio.sleep(0.05)  # poll interval


@pytest.mark.timeout(180)
async def test_webhook_trades_the_owned_account_and_the_standby_nothing(
    sim: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = Account.create()
    sim.admin.create_account(wallet.address, usd=100_000, venue="hyperliquid")
    sim.admin.set_price("ETH", 2000)
    token = uuid.uuid4().hex
    monkeypatch.setenv("NEWSTRADER_HL_1_SECRET", "0x" + bytes(wallet.key).hex())
    monkeypatch.setenv("NEWSTRADER_WEB_TOKEN", token)
    owner = Bot(_settings(sim, pg_url, wallet.address, "owner"))
    standby = Bot(_settings(sim, pg_url, wallet.address, "standby"))
    await owner.start()
    try:
        assert owner.cluster is not None
        assert await owner.cluster.ownership.wait_owned("hl-1", 30)
        await standby.start()
        assert standby.cluster is not None
        async with httpx.AsyncClient(base_url=owner.web_url or "", trust_env=False) as client:
            reply = await client.post(
                "/api/news?wait=30",
                json={"id": "w-1", "title": "long ETH", "coin": "ETH", "side": "long", "source": "hook"},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert reply.status_code in (200, 202), reply.text
        await _until(lambda: sim.admin.position("hyperliquid", wallet.address, "ETH") != "0", 30, "filled")
        # the standby got the same item on its own webhook: no account owned, nothing traded
        decision = await standby.submit_news(NewsItem(id="w-1", title="long ETH", source="hook"))
        assert decision.signal is None and decision.reason == "no account owned by this instance"
        news = {row["id"]: row["outcome"] for row in await owner.journal.recent_news()}
        assert news == {"w-1@hl-1": "traded"}
        orders = await owner.journal.recent_orders()
        assert {row["instance"] for row in orders} == {"owner"}
        state = await owner.cluster_state()
        assert state is not None and state.owned == ("hl-1",) and state.bus_lag == {}
        standby_state = await standby.cluster_state()
        assert standby_state is not None and standby_state.owned == ()
    finally:
        await standby.stop()
        await owner.stop()
