"""Same seed + same signed requests → byte-identical Hyperliquid responses; another seed differs.

The simulator's real ASGI app runs in-process with an injected clock (1 ms per reading), so the
times in responses, and the nonces that must sit near server time, repeat exactly.
"""

from __future__ import annotations

import asyncio

import httpx
from eth_account import Account
from hyperliquid.utils.signing import sign_l1_action

from newstrader.sim.app import SimConfig, create_app

START_MS = 1_800_000_000_000
USER = Account.from_key("0x" + "22" * 32)


class FakeClock:
    """Advances 1 ms per reading."""

    def __init__(self) -> None:
        self.now = START_MS

    def __call__(self) -> int:
        self.now += 1
        return self.now


def _order(asset, is_buy, px, sz, tif="Ioc", reduce_only=False, cloid=None, trigger=None):
    wire = {"a": asset, "b": is_buy, "p": px, "s": sz, "r": reduce_only}
    wire["t"] = {"trigger": trigger} if trigger else {"limit": {"tif": tif}}
    if cloid:
        wire["c"] = cloid
    return wire


def _script():
    """(path, body) pairs: admin set-up, signed actions, reads; the same each run."""
    addr = USER.address
    steps = [
        ("/admin/accounts", {"venue": "all", "address": addr, "usd": "50000"}),
        ("/admin/settings", {"venue": "hyperliquid", "partial_fill_probability": 0.5}),
        ("/admin/tick", {"steps": 3, "venue": "hyperliquid"}),
    ]
    actions = [
        {"type": "updateLeverage", "asset": 1, "isCross": True, "leverage": 10},
        {"type": "order", "orders": [_order(1, True, "3900", "1.5")], "grouping": "na"},
        {
            "type": "order",
            "orders": [_order(0, False, "80000", "0.05", cloid="0x" + "0" * 31 + "1")],
            "grouping": "na",
        },
        {"type": "order", "orders": [_order(2, True, "100", "3", tif="Gtc")], "grouping": "na"},
        {
            "type": "order",
            "orders": [
                _order(
                    1,
                    False,
                    "2600",
                    "1.5",
                    reduce_only=True,
                    trigger={"isMarket": True, "triggerPx": "2800", "tpsl": "sl"},
                )
            ],
            "grouping": "positionTpsl",
        },
    ]
    for i, action in enumerate(actions):
        nonce = START_MS + 100 + i
        signature = sign_l1_action(USER, action, None, nonce, None, False)
        steps.append(
            (
                "/hyperliquid/exchange",
                {
                    "action": action,
                    "nonce": nonce,
                    "signature": signature,
                    "vaultAddress": None,
                    "expiresAfter": None,
                },
            )
        )
    steps += [
        ("/admin/price", {"coin": "ETH", "price": "2700", "venue": "hyperliquid"}),
        ("/admin/tick", {"steps": 2, "venue": "hyperliquid"}),
    ]
    for kind in ("clearinghouseState", "openOrders", "frontendOpenOrders", "userFills", "historicalOrders"):
        steps.append(("/hyperliquid/info", {"type": kind, "user": addr}))
    steps += [
        ("/hyperliquid/info", {"type": "allMids"}),
        ("/hyperliquid/info", {"type": "l2Book", "coin": "BTC"}),
        ("/hyperliquid/info", {"type": "metaAndAssetCtxs"}),
        ("/hyperliquid/info", {"type": "orderStatus", "user": addr, "oid": "0x" + "0" * 31 + "1"}),
    ]
    return steps


async def _run(seed: int) -> list[tuple[int, bytes]]:
    app = create_app(seed=seed, config=SimConfig(clock=FakeClock()))
    transport = httpx.ASGITransport(app=app)
    out = []
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        for path, body in _script():
            response = await client.post(path, json=body)
            out.append((response.status_code, response.content))
        state = await client.get("/admin/state")
        out.append((state.status_code, state.content))
    return out


def test_same_seed_same_requests_same_responses():
    first = asyncio.run(_run(seed=21))
    second = asyncio.run(_run(seed=21))
    assert first == second
    assert all(status == 200 for status, _ in first)
    requests_sent = [body for _, body in _script()]
    fills_index = next(i for i, body in enumerate(requests_sent) if body.get("type") == "userFills")
    fills = first[fills_index][1]
    assert fills.count(b'"tid"') >= 3  # the script really traded (entries + the stop)


def test_other_seed_other_walk():
    first = asyncio.run(_run(seed=21))
    other = asyncio.run(_run(seed=22))
    assert first != other
