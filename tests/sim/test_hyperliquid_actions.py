"""Hyperliquid actions that need a controllable clock or config: run in-process on the real ASGI app."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from eth_account import Account
from hyperliquid.utils.signing import sign_l1_action

from newstrader.sim.app import SimConfig, create_app

T0 = 1_800_000_000_000
OWNER = Account.from_key("0x" + "44" * 32)
OTHER = Account.from_key("0x" + "55" * 32)


class Clock:
    """A settable clock (ms)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


class Harness:
    """The app, its clock, and a signer helper with increasing nonces."""

    def __init__(self, **config: Any) -> None:
        self.clock = Clock()
        self.app = create_app(seed=1, config=SimConfig(clock=self.clock, **config))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://sim")
        self.nonce = T0

    async def admin(self, path: str, body: dict[str, Any]) -> Any:
        response = await self.client.post("/admin" + path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    async def act(
        self,
        action: dict[str, Any],
        wallet: Any = OWNER,
        vault: str | None = None,
        expires: int | None = None,
    ) -> Any:
        self.nonce += 1
        signature = sign_l1_action(wallet, action, vault, self.nonce, expires, False)
        body = {"action": action, "nonce": self.nonce, "signature": signature, "vaultAddress": vault}
        body["expiresAfter"] = expires
        return (await self.client.post("/hyperliquid/exchange", json=body)).json()

    async def info(self, body: dict[str, Any]) -> Any:
        return (await self.client.post("/hyperliquid/info", json=body)).json()


def _gtc(asset: int, is_buy: bool, px: str, sz: str, cloid: str | None = None) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "a": asset,
        "b": is_buy,
        "p": px,
        "s": sz,
        "r": False,
        "t": {"limit": {"tif": "Gtc"}},
    }
    if cloid:
        wire["c"] = cloid
    return {"type": "order", "orders": [wire], "grouping": "na"}


def run(coro_factory):
    return asyncio.run(coro_factory())


def test_schedule_cancel_fires_at_its_time():
    async def scenario():
        h = Harness()
        await h.admin("/accounts", {"venue": "hyperliquid", "address": OWNER.address, "usd": "10000"})
        await h.act(_gtc(0, True, "90000", "0.01"))
        early = await h.act({"type": "scheduleCancel", "time": T0 + 1000})
        assert early["status"] == "err" and "at least 5 seconds" in early["response"]
        assert (await h.act({"type": "scheduleCancel", "time": T0 + 10_000}))["status"] == "ok"
        h.clock.now = T0 + 9_000
        assert len(await h.info({"type": "openOrders", "user": OWNER.address})) == 1
        h.clock.now = T0 + 10_001
        assert await h.info({"type": "openOrders", "user": OWNER.address}) == []
        (order,) = await h.info({"type": "historicalOrders", "user": OWNER.address})
        assert order["status"] == "scheduledCancel"

    run(scenario)


def test_expired_action_is_refused():
    async def scenario():
        h = Harness()
        await h.admin("/accounts", {"venue": "hyperliquid", "address": OWNER.address, "usd": "10000"})
        stale = await h.act(_gtc(0, True, "90000", "0.01"), expires=T0 - 1)
        # the venue's own text (GitBook FAQ), which `venues/errors.py` maps to `Expired`
        assert stale == {"status": "err", "response": "Action already expired"}
        assert await h.info({"type": "openOrders", "user": OWNER.address}) == []  # never executed
        at_the_limit = await h.act(_gtc(0, True, "90000", "0.01"), expires=T0)
        assert "resting" in at_the_limit["response"]["data"]["statuses"][0]
        fresh = await h.act(_gtc(0, True, "90000", "0.01"), expires=T0 + 60_000)
        assert "resting" in fresh["response"]["data"]["statuses"][0]

    run(scenario)


def test_a_price_far_from_the_reference_refuses_the_whole_batch():
    """Pre-validation (docs "Error responses"): one error for the action, no order of it placed."""

    async def scenario():
        h = Harness()
        await h.admin("/accounts", {"venue": "hyperliquid", "address": OWNER.address, "usd": "10000"})
        action = _gtc(0, True, "90000", "0.01")
        action["orders"].append(_gtc(0, True, "10000", "0.01")["orders"][0])  # ~90 % under the mark
        reply = await h.act(action)
        assert reply == {
            "status": "err",
            "response": "Order price cannot be more than 80% away from the reference price",
        }
        assert await h.info({"type": "openOrders", "user": OWNER.address}) == []

    run(scenario)


def test_a_cloid_that_is_not_128_bit_hex_is_unprocessable():
    """A cloid is a 128-bit hex string (docs "Exchange endpoint"); anything else does not parse."""

    async def scenario():
        h = Harness()
        await h.admin("/accounts", {"venue": "hyperliquid", "address": OWNER.address, "usd": "10000"})
        for bad in ("0x1234", "0x" + "g" * 32, "12" * 17):
            action = _gtc(0, True, "90000", "0.01", cloid=bad)
            h.nonce += 1
            signature = sign_l1_action(OWNER, action, None, h.nonce, None, False)
            body = {"action": action, "nonce": h.nonce, "signature": signature, "vaultAddress": None}
            response = await h.client.post("/hyperliquid/exchange", json=body)
            assert response.status_code == 422, (bad, response.text)
        assert await h.info({"type": "openOrders", "user": OWNER.address}) == []

    run(scenario)


def test_an_expired_action_costs_five_times_its_address_budget():
    async def scenario():
        h = Harness(hl_address_base_budget=100)
        await h.admin("/accounts", {"venue": "hyperliquid", "address": OWNER.address, "usd": "10000"})
        await h.act(_gtc(0, True, "90000", "0.01"), expires=T0 - 1)
        limits = await h.info({"type": "userRateLimit", "user": OWNER.address})
        assert limits["nRequestsUsed"] == 5

    run(scenario)


def test_a_nonce_must_lie_strictly_within_two_days_behind_and_one_day_ahead():
    async def scenario():
        h = Harness()
        await h.admin("/accounts", {"venue": "hyperliquid", "address": OWNER.address, "usd": "10000"})
        day = 86_400_000
        for nonce, accepted in ((T0 - 2 * day, False), (T0 - 2 * day + 1, True), (T0 + day, False)):
            h.nonce = nonce - 1  # `act` signs with the next one
            reply = await h.act(_gtc(0, True, "90000", "0.01"))
            assert (reply["status"] == "ok") is accepted, (nonce, reply)

    run(scenario)


def test_address_budget_refuses_with_the_venues_text():
    async def scenario():
        h = Harness(hl_address_base_budget=3)
        await h.admin("/accounts", {"venue": "hyperliquid", "address": OWNER.address, "usd": "10000"})
        for i in range(3):
            reply = await h.act(_gtc(0, True, str(90000 + i), "0.01"))
            assert reply["status"] == "ok"
        refused = await h.act(_gtc(0, True, "90010", "0.01"))
        assert refused["status"] == "err"
        assert refused["response"].startswith(
            "Too many cumulative requests sent (4 > 3) for cumulative volume traded $0"
        )
        limits = await h.info({"type": "userRateLimit", "user": OWNER.address})
        assert limits["nRequestsUsed"] == 3 and limits["nRequestsCap"] == 3
        # Taker volume buys budget: 1 request per USD traded.
        await h.admin("/settings", {"rate_limits": False})
        await h.act(
            {"type": "order", "orders": [{**_gtc(1, True, "3400", "0.1")["orders"][0]}], "grouping": "na"}
        )
        await h.admin("/settings", {"rate_limits": True})
        assert (await h.act(_gtc(0, True, "90020", "0.01")))["status"] == "ok"

    run(scenario)


def test_batch_modify_replaces_an_order_and_keeps_its_cloid():
    async def scenario():
        h = Harness()
        await h.admin("/accounts", {"venue": "hyperliquid", "address": OWNER.address, "usd": "10000"})
        cloid = "0x" + "0" * 30 + "ab"
        placed = await h.act(_gtc(0, True, "90000", "0.01", cloid))
        oid = placed["response"]["data"]["statuses"][0]["resting"]["oid"]
        new_wire = _gtc(0, True, "91000", "0.02", cloid)["orders"][0]
        reply = await h.act({"type": "batchModify", "modifies": [{"oid": oid, "order": new_wire}]})
        new_oid = reply["response"]["data"]["statuses"][0]["resting"]["oid"]
        assert new_oid != oid
        (open_order,) = await h.info({"type": "openOrders", "user": OWNER.address})
        assert (open_order["oid"], open_order["limitPx"], open_order["sz"]) == (new_oid, "91000", "0.02")
        status = await h.info({"type": "orderStatus", "user": OWNER.address, "oid": cloid})
        assert status["order"]["order"]["oid"] == new_oid
        again = await h.act({"type": "batchModify", "modifies": [{"oid": oid, "order": new_wire}]})
        assert "error" in again["response"]["data"]["statuses"][0]

    run(scenario)


def test_vault_address_needs_authorisation():
    async def scenario():
        h = Harness()
        await h.admin("/accounts", {"venue": "hyperliquid", "address": OWNER.address, "usd": "10000"})
        await h.admin("/accounts", {"venue": "hyperliquid", "address": OTHER.address, "usd": "10000"})
        refused = await h.act(_gtc(0, True, "90000", "0.01"), vault=OTHER.address.lower())
        assert refused["status"] == "err" and "not authorized" in refused["response"]
        # The sub-account lists its master as a signer: now the master may act for it.
        await h.admin("/agents", {"venue": "hyperliquid", "address": OTHER.address, "signer": OWNER.address})
        ok = await h.act(_gtc(0, True, "90000", "0.01"), vault=OTHER.address.lower())
        assert "resting" in ok["response"]["data"]["statuses"][0]
        assert len(await h.info({"type": "openOrders", "user": OTHER.address})) == 1
        assert await h.info({"type": "openOrders", "user": OWNER.address}) == []

    run(scenario)


def test_fills_by_time_and_l2_book():
    async def scenario():
        h = Harness()
        await h.admin("/accounts", {"venue": "hyperliquid", "address": OWNER.address, "usd": "10000"})
        ioc = _gtc(1, True, "3400", "0.1")
        ioc["orders"][0]["t"] = {"limit": {"tif": "Ioc"}}
        await h.act(ioc)
        h.clock.now = T0 + 5_000
        await h.admin(
            "/position", {"venue": "hyperliquid", "account": OWNER.address, "coin": "ETH", "size": "0"}
        )
        early = await h.info(
            {"type": "userFillsByTime", "user": OWNER.address, "startTime": T0, "endTime": T0 + 1}
        )
        assert [f["dir"] for f in early] == ["Open Long"]
        both = await h.info({"type": "userFillsByTime", "user": OWNER.address, "startTime": T0})
        assert [f["dir"] for f in both] == ["Open Long", "Close Long"]
        book = await h.info({"type": "l2Book", "coin": "ETH"})
        bids, asks = book["levels"]
        assert len(bids) == len(asks) == 20
        assert float(bids[0]["px"]) < 3200 < float(asks[0]["px"])

    run(scenario)


@pytest.mark.parametrize("source", ["a", "any"])
def test_configurable_signature_source(source):
    async def scenario():
        h = Harness(hl_source=source)
        await h.admin("/accounts", {"venue": "hyperliquid", "address": OWNER.address, "usd": "10000"})
        h.nonce += 1
        body = {
            "action": {"type": "noop"},
            "nonce": h.nonce,
            "signature": sign_l1_action(OWNER, {"type": "noop"}, None, h.nonce, None, True),
            "vaultAddress": None,
            "expiresAfter": None,
        }
        mainnet = (await h.client.post("/hyperliquid/exchange", json=body)).json()
        testnet = await h.act({"type": "noop"})
        assert mainnet["status"] == "ok"
        assert testnet["status"] == ("ok" if source == "any" else "err")

    run(scenario)
