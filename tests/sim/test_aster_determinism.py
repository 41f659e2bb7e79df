"""Same seed + same signed requests → byte-identical Aster responses; the accepted chain id is configurable.

These run the simulator's real ASGI app in-process with an injected clock, so times (and v3
nonces, which must sit near server time) repeat exactly.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from eth_account import Account
from eth_account.messages import encode_typed_data

from newstrader.sim.app import SimConfig, create_app

START_MS = 1_750_000_000_000
USER = Account.from_key("0x" + "11" * 32)
API_KEY, SECRET = "det-key", "det-secret"


class FakeClock:
    """Advances 1 ms per reading, so every run sees the same sequence of times."""

    def __init__(self) -> None:
        self.now = START_MS

    def __call__(self) -> int:
        self.now += 1
        return self.now


def _v3(params: dict[str, str], nonce: int, chain_id: int = 714) -> str:
    msg = urlencode({**params, "nonce": str(nonce), "user": USER.address, "signer": USER.address})
    typed = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Message": [{"name": "msg", "type": "string"}],
            },
            "primaryType": "Message",
            "domain": {
                "name": "AsterSignTransaction",
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": "0x" + "00" * 20,
            },
            "message": {"msg": msg},
        }
    )
    return msg + "&signature=0x" + bytes(USER.sign_message(typed).signature).hex()


def _hmac(params: dict[str, str], timestamp: int) -> str:
    query = urlencode({**params, "timestamp": str(timestamp)})
    return query + "&signature=" + hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()


async def _session(config: SimConfig) -> list[tuple[int, str]]:
    app = create_app(seed=11, config=config)
    transport = httpx.ASGITransport(app=app)
    out: list[tuple[int, str]] = []
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        await client.post(
            "/admin/accounts",
            json={
                "venue": "aster",
                "address": USER.address,
                "usd": "10000",
                "api_key": API_KEY,
                "secret": SECRET,
            },
        )
        await client.post("/admin/tick", json={"steps": 3, "venue": "aster"})
        nonce = START_MS * 1000 + 50_000
        orders = [
            {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.5"},
            {
                "symbol": "ETHUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.1",
                "price": "3000",
            },
            {
                "symbol": "SOLUSDT",
                "side": "SELL",
                "type": "MARKET",
                "quantity": "2",
                "newOrderRespType": "RESULT",
            },
        ]
        for params in orders:
            nonce += 1
            r = await client.post("/aster/fapi/v3/order", content=_v3(params, nonce), headers=form)
            out.append((r.status_code, r.text))
        for path in ("positionRisk", "openOrders", "balance"):
            nonce += 1
            r = await client.get(f"/aster/fapi/v3/{path}?{_v3({}, nonce)}")
            out.append((r.status_code, r.text))
        r = await client.get(
            f"/aster/fapi/v1/userTrades?{_hmac({'symbol': 'ETHUSDT'}, START_MS + 100)}",
            headers={"X-MBX-APIKEY": API_KEY},
        )
        out.append((r.status_code, r.text))
    return out


async def test_same_seed_same_requests_same_responses() -> None:
    first = await _session(SimConfig(clock=FakeClock()))
    second = await _session(SimConfig(clock=FakeClock()))
    assert [status for status, _ in first] == [200] * len(first), first
    assert first == second


@dataclass(slots=True)
class MainnetOnlyConfig(SimConfig):
    """A simulator that, like the production API, accepts only mainnet's chain id."""

    aster_chain_ids: tuple[int, ...] = (1666,)


async def test_configured_chain_id_only() -> None:
    app = create_app(seed=3, config=MainnetOnlyConfig(clock=FakeClock()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        await client.post("/admin/accounts", json={"venue": "aster", "address": USER.address, "usd": "100"})
        nonce = START_MS * 1000
        testnet = await client.get(f"/aster/fapi/v3/balance?{_v3({}, nonce + 1)}")
        assert testnet.status_code == 400 and testnet.json()["code"] == -1022
        mainnet = await client.get(f"/aster/fapi/v3/balance?{_v3({}, nonce + 2, chain_id=1666)}")
        assert mainnet.status_code == 200, mainnet.text
