"""With `walk_interval_s` set, the marks move by themselves (paper trading), on both venues."""

from __future__ import annotations

import asyncio
import time

import httpx
from eth_account import Account

from newstrader.sim.app import SimConfig, create_app


def test_marks_walk_by_themselves_and_stop_with_the_app():
    async def scenario():
        app = create_app(seed=4, config=SimConfig(walk_interval_s=0.01, rate_limits=False))
        sim = app.state.sim
        owner = Account.create().address
        sim.hyperliquid.create_account(owner, 100_000)
        sim.hyperliquid.place_order(owner, "BTC", True, 1, None, "ioc")
        start = sim.hyperliquid.mark("BTC")
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
                deadline = time.monotonic() + 10
                while True:
                    mids = (await client.post("/hyperliquid/info", json={"type": "allMids"})).json()
                    if mids["BTC"] != str(start):
                        break
                    assert time.monotonic() < deadline, "marks never moved"
                    await asyncio.sleep(0.01)  # yield to the walker between polls
        moved = sim.hyperliquid.mark("BTC")
        await asyncio.sleep(0.05)
        assert sim.hyperliquid.mark("BTC") == moved  # the walker stopped with the app
        assert sim.aster.mark("BTC") != sim.aster.markets["BTC"].initial_price  # both venues walk

    asyncio.run(scenario())
