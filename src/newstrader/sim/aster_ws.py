"""Aster's user-data and mark-price websockets, as the venue serves them (venue-aster.md "WebSocket").

- listenKey REST: `POST`/`PUT`/`DELETE` on `/fapi/v1/listenKey` (USER_STREAM: `X-MBX-APIKEY`
  only, no signature) and `/fapi/v3/listenKey` (the full v3 signed set). One key per account;
  POST while a key is active returns the same key and extends it; it lives
  `aster_listen_key_ttl_ms` (60 min) after the last POST/PUT; an unknown key → `-1125`.
- `/fstream/ws/<listenKey>`: raw user events. `ACCOUNT_UPDATE` (changed balances and positions
  only, absolute values) and `ORDER_TRADE_UPDATE` (on accept, each fill, cancel, expiry;
  liquidations as `x: CALCULATED`, client id `autoclose-…`). At expiry `listenKeyExpired` is
  pushed, user events stop and the socket stays open.
- `/fstream/ws/<stream>` and `/fstream/stream?streams=a/b` (events wrapped as
  `{"stream","data"}`): `<symbol>@markPrice[@1s]` and `!markPrice@arr[@1s]`, pushed at their
  cadence and on every mark move. `/fstream/ws` alone waits for `SUBSCRIBE` frames.
- Control frames on every connection: `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS` →
  `{"result":…,"id":…}` (a missing id is answered with `null`, as ccxt sends none).
- Every connection is cut at `aster_ws_max_lifetime_s` (24 h).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import Response

from newstrader.sim.app import Sim
from newstrader.sim.aster_api import ZERO, ApiError, AsterApi, _fmt
from newstrader.sim.aster_auth import AsterAuthError, api_key_owner
from newstrader.sim.market import REJECTED, FillRecord, OrderRecord
from newstrader.sim.push import Changes, PushConnection, PushHub

VENUE = "aster"
MARK_RE = re.compile(r"^([a-z0-9]+)@markprice(@1s)?$")
ARR_RE = re.compile(r"^!markprice@arr(@1s)?$")
OUTSIDE_ORDER_BASE = 9_000_000_000  # order ids for trades made outside the API (website, liquidation)
NO_KEY = (-1125, "This listenKey does not exist.")


@dataclass(slots=True)
class ListenKey:
    key: str
    account: str
    expires_ms: int


class ListenKeys:
    """The live listenKeys of the simulated Aster: one per account."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.by_key: dict[str, ListenKey] = {}
        self.by_account: dict[str, ListenKey] = {}
        sim.on_reset(self.clear)

    def clear(self) -> None:
        self.by_key.clear()
        self.by_account.clear()

    def live(self, key: str) -> ListenKey | None:
        entry = self.by_key.get(key)
        return entry if entry is not None and entry.expires_ms > self.sim.now_ms() else None

    def start(self, account: str) -> ListenKey:
        ttl = self.sim.config.aster_listen_key_ttl_ms
        entry = self.by_account.get(account)
        if entry is None or self.live(entry.key) is None:
            entry = ListenKey(secrets.token_hex(32), account, 0)
            self.by_account[account] = entry
            self.by_key[entry.key] = entry
        entry.expires_ms = self.sim.now_ms() + ttl
        return entry

    def keepalive(self, account: str) -> ListenKey:
        entry = self.by_account.get(account)
        if entry is None or self.live(entry.key) is None:
            raise ApiError(*NO_KEY)
        entry.expires_ms = self.sim.now_ms() + self.sim.config.aster_listen_key_ttl_ms
        return entry

    def close(self, account: str) -> None:
        entry = self.by_account.pop(account, None)
        if entry is None:
            raise ApiError(*NO_KEY)
        entry.expires_ms = 0
        self.by_key.pop(entry.key, None)


def _api(sim: Sim) -> AsterApi:
    assert sim.aster_api is not None, "aster_api.build_router(sim) runs at app creation"
    return sim.aster_api


async def _caller(sim: Sim, version: str, request: Request) -> str:
    """The account a listenKey request acts for (USER_STREAM auth)."""
    if version == "v1":
        return api_key_owner(sim.aster.api_key_owner, request.headers.get("x-mbx-apikey"))
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    raw_body = (await request.body()).decode("latin-1")
    return _api(sim).authenticate("v3", request, raw_query, raw_body).address


class AsterConnection(PushConnection):
    """One client socket: user stream (by listenKey) and market streams."""

    def __init__(
        self, sim: Sim, hub: PushHub, websocket: WebSocket, keys: ListenKeys, combined: bool
    ) -> None:
        super().__init__(sim, hub, websocket, None)
        self.keys = keys
        self.combined = combined
        self.streams: list[str] = []  # as the client spelled them
        self._expired: set[str] = set()

    # ----- control frames ----------------------------------------------------------------

    async def on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            self.send("ws:error", {"code": 3, "msg": f"Invalid JSON: {text[:100]}"})
            return
        if not isinstance(message, dict):
            self.send("ws:error", {"code": 3, "msg": "Invalid JSON: expected an object"})
            return
        request_id = message.get("id")
        if request_id is not None and (not isinstance(request_id, int) or request_id < 0):
            self.send(
                "ws:error", {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}
            )
            return
        method = message.get("method")
        params = message.get("params") or []
        if method in ("SUBSCRIBE", "UNSUBSCRIBE") and isinstance(params, list):
            for name in params:
                if not isinstance(name, str):
                    continue
                if method == "SUBSCRIBE" and name not in self.streams:
                    self.streams.append(name)
                elif method == "UNSUBSCRIBE" and name in self.streams:
                    self.streams.remove(name)
            self.send("ws:result", {"result": None, "id": request_id})
            if method == "SUBSCRIBE":
                self.push_marks(None)
        elif method == "LIST_SUBSCRIPTIONS":
            self.send("ws:result", {"result": list(self.streams), "id": request_id})
        else:
            self.send("ws:error", {"code": 2, "msg": f"Invalid request: unknown method {method!r}"})

    # ----- pushes -------------------------------------------------------------------------

    def _emit(self, stream: str, event: dict[str, Any]) -> None:
        payload = {"stream": stream, "data": event} if self.combined else event
        self.send(f"ws:{event.get('e', 'event')}", payload)

    def _user_keys(self) -> list[tuple[str, str]]:
        """(stream name, account) of every live listenKey this connection listens to."""
        out = []
        for name in self.streams:
            entry = self.keys.by_key.get(name)
            if entry is not None and name not in self._expired:
                out.append((name, entry.account))
        return out

    def check_expiry(self) -> None:
        """Push `listenKeyExpired` once for each key that ran out; its user events stop."""
        for name in self.streams:
            entry = self.keys.by_key.get(name)
            if entry is not None and name not in self._expired and self.keys.live(name) is None:
                self._expired.add(name)
                self._emit(name, {"e": "listenKeyExpired", "E": self.sim.now_ms()})
            elif entry is None and name not in self._expired and len(name) == 64 and "@" not in name:
                self._expired.add(name)  # deleted: events stop without notice

    def push_marks(self, coins: set[str] | None, cadence: str | None = None) -> None:
        """Mark-price events for the subscribed streams (`coins` None: all; `cadence` '1s'/'3s')."""
        ex = self.sim.exchanges[VENUE]
        now = self.sim.now_ms()
        for name in self.streams:
            lowered = name.lower()
            fast = lowered.endswith("@1s")
            if cadence is not None and fast != (cadence == "1s"):
                continue
            single = MARK_RE.match(lowered)
            if single is not None:
                coin = _coin_for(ex, single.group(1))
                if coin is not None and (coins is None or coin in coins):
                    self._emit(name, _mark_event(ex, coin, now))
            elif ARR_RE.match(lowered) and (coins is None or coins):
                events = [_mark_event(ex, c, now) for c in ex.markets]
                payload = {"stream": name, "data": events} if self.combined else events
                self.send("ws:markPriceUpdate", payload)

    def deliver(self, changes: Changes) -> None:
        self.check_expiry()
        if changes.marks:
            self.push_marks(changes.marks)
        for name, account in self._user_keys():
            fills = [f for f in changes.fills if f.account == account]
            orders = [o for o in changes.orders.values() if o.account == account and o.status != REJECTED]
            if fills or account in changes.accounts:
                self._emit(name, self._account_update(account, fills))
            for event in self._order_events(orders, fills):
                self._emit(name, event)

    def _account_update(self, account: str, fills: list[FillRecord]) -> dict[str, Any]:
        api = _api(self.sim)
        ex = self.sim.exchanges[VENUE]
        acct = ex.accounts[account]
        now = self.sim.now_ms()
        rows = []
        for coin in dict.fromkeys(f.coin for f in fills):
            spec = ex.market(coin)
            for row in api.position_rows(acct, spec):
                rows.append(
                    {
                        "s": row["symbol"],
                        "pa": row["positionAmt"],
                        "ep": row["entryPrice"],
                        "cr": "0",
                        "up": row["unRealizedProfit"],
                        "mt": row["marginType"],
                        "iw": row["isolatedWallet"],
                        "ps": row["positionSide"],
                        "ma": "USDT",
                    }
                )
        wallet = _fmt(acct.balance, 8)
        balance = [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": "0"}]
        return {
            "e": "ACCOUNT_UPDATE",
            "E": now,
            "T": now,
            "a": {"m": "ORDER" if fills else "DEPOSIT", "B": balance, "P": rows},
        }

    def _order_events(self, orders: list[OrderRecord], fills: list[FillRecord]) -> list[dict[str, Any]]:
        api = _api(self.sim)
        events: list[dict[str, Any]] = []
        by_oid: dict[int | None, list[FillRecord]] = {}
        for fill in fills:
            by_oid.setdefault(fill.oid, []).append(fill)
        for order in orders:
            rest = api.order_json(order)
            own = by_oid.get(order.oid, [])
            if not own:
                events.append(
                    self._order_event(rest, _exec_type(rest["status"]), rest["status"], None, order)
                )
                continue
            before = order.filled_size - sum((f.size for f in own), ZERO)
            if before == 0 and order.fill_ids and order.fill_ids[0] == own[0].tid:
                events.append(self._order_event(rest, "NEW", "NEW", None, order, cum=ZERO))
            cum = before
            for i, fill in enumerate(own):
                cum += fill.size
                last = i == len(own) - 1
                status = rest["status"] if last else "PARTIALLY_FILLED"
                events.append(self._order_event(rest, "TRADE", status, fill, order, cum=cum))
        for fill in by_oid.get(None, []):
            events.append(self._outside_event(fill))
        return events

    def _order_event(
        self,
        rest: dict[str, Any],
        exec_type: str,
        status: str,
        fill: FillRecord | None,
        order: OrderRecord,
        cum: Decimal | None = None,
    ) -> dict[str, Any]:
        ex = self.sim.exchanges[VENUE]
        spec = ex.market(order.coin)
        now = self.sim.now_ms()
        o: dict[str, Any] = {
            "s": rest["symbol"],
            "c": rest["clientOrderId"],
            "S": rest["side"],
            "o": rest["type"],
            "f": rest["timeInForce"],
            "q": rest["origQty"],
            "p": rest["price"],
            "ap": rest["avgPrice"],
            "sp": rest["stopPrice"],
            "x": exec_type,
            "X": status,
            "i": rest["orderId"],
            "l": _fmt(fill.size, spec.sz_decimals) if fill else "0",
            "z": _fmt(cum if cum is not None else order.filled_size, spec.sz_decimals),
            "L": _fmt(fill.px, 8) if fill else "0",
            "T": fill.time_ms if fill else now,
            "t": fill.tid if fill else 0,
            "b": "0",
            "a": "0",
            "m": not fill.crossed if fill else False,
            "R": rest["reduceOnly"],
            "wt": rest["workingType"],
            "ot": rest["origType"],
            "ps": rest["positionSide"],
            "cp": rest["closePosition"],
            "rp": _fmt(fill.closed_pnl, 8) if fill else "0",
        }
        if fill is not None:
            o["N"], o["n"] = "USDT", _fmt(fill.fee, 8)
        return {"e": "ORDER_TRADE_UPDATE", "E": now, "T": o["T"], "o": o}

    def _outside_event(self, fill: FillRecord) -> dict[str, Any]:
        """A liquidation (`autoclose-…`, `x: CALCULATED`) or a trade made on the website."""
        ex = self.sim.exchanges[VENUE]
        spec = ex.market(fill.coin)
        size = _fmt(fill.size, spec.sz_decimals)
        px = _fmt(fill.px, 8)
        o = {
            "s": spec.symbol,
            "c": f"autoclose-{fill.tid}" if fill.liquidation else f"web_{fill.tid}",
            "S": "BUY" if fill.is_buy else "SELL",
            "o": "LIQUIDATION" if fill.liquidation else "MARKET",
            "f": "IOC" if fill.liquidation else "GTC",
            "q": size,
            "p": "0",
            "ap": px,
            "sp": "0",
            "x": "CALCULATED" if fill.liquidation else "TRADE",
            "X": "FILLED",
            "i": OUTSIDE_ORDER_BASE + fill.tid,
            "l": size,
            "z": size,
            "L": px,
            "N": "USDT",
            "n": _fmt(fill.fee, 8),
            "T": fill.time_ms,
            "t": fill.tid,
            "b": "0",
            "a": "0",
            "m": False,
            "R": fill.liquidation,
            "wt": "CONTRACT_PRICE",
            "ot": "LIQUIDATION" if fill.liquidation else "MARKET",
            "ps": "BOTH",
            "cp": False,
            "rp": _fmt(fill.closed_pnl, 8),
        }
        return {"e": "ORDER_TRADE_UPDATE", "E": self.sim.now_ms(), "T": fill.time_ms, "o": o}

    async def cadence(self) -> None:
        """Mark streams at their venue cadence (1 s / 3 s) and listenKey expiry, until closed."""
        tick = 0
        while not self.closed:
            await asyncio.sleep(1.0)
            tick += 1
            self.check_expiry()
            self.push_marks(None, "1s")
            if tick % 3 == 0:
                self.push_marks(None, "3s")


def _exec_type(status: str) -> str:
    return {"NEW": "NEW", "PARTIALLY_FILLED": "TRADE", "FILLED": "TRADE"}.get(status, status)


def _coin_for(ex: Any, lowered_symbol: str) -> str | None:
    for coin, spec in ex.markets.items():
        if spec.symbol.lower() == lowered_symbol:
            return str(coin)
    return None


def _mark_event(ex: Any, coin: str, now: int) -> dict[str, Any]:
    spec = ex.markets[coin]
    mark = f"{ex.marks[coin]:f}"
    next_funding = (now // 28_800_000 + 1) * 28_800_000
    return {
        "e": "markPriceUpdate",
        "E": now,
        "s": spec.symbol,
        "p": mark,
        "i": mark,
        "P": mark,
        "r": "0.00010000",
        "T": next_funding,
    }


def _json(status: int, payload: Any) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")), status_code=status, media_type="application/json"
    )


def build_router(sim: Sim) -> APIRouter:
    """listenKey REST and the `/fstream` websockets for the Aster venue of `sim`."""
    hub = PushHub(sim, VENUE)
    keys = ListenKeys(sim)
    router = APIRouter()

    async def listen_key(version: str, request: Request) -> Response:
        try:
            account = await _caller(sim, version, request)
            if request.method == "POST":
                return _json(200, {"listenKey": keys.start(account).key})
            if request.method == "PUT":
                keys.keepalive(account)
            else:
                keys.close(account)
            return _json(200, {})
        except (AsterAuthError, ApiError) as err:
            return _json(err.http_status, {"code": err.code, "msg": err.msg})

    for version in ("v1", "v3"):

        async def endpoint(request: Request, _version: str = version) -> Response:
            return await listen_key(_version, request)

        router.add_api_route(
            f"/fapi/{version}/listenKey", endpoint, methods=["POST", "PUT", "DELETE"], include_in_schema=False
        )

    async def serve(websocket: WebSocket, streams: list[str], combined: bool) -> None:
        await websocket.accept()
        connection = AsterConnection(sim, hub, websocket, keys, combined)
        connection.streams.extend(streams)
        connection.push_marks(None)
        ticker = asyncio.create_task(connection.cadence())
        try:
            await connection.serve(connection.on_text, sim.config.aster_ws_max_lifetime_s)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    @router.websocket("/fstream/ws/{name}")
    async def raw_stream(websocket: WebSocket, name: str) -> None:
        if "@" not in name and keys.live(name) is None:
            await websocket.close(code=1008)  # refuse an unknown listenKey before the upgrade
            return
        await serve(websocket, [name], combined=False)

    @router.websocket("/fstream/ws")
    async def bare(websocket: WebSocket) -> None:
        await serve(websocket, [], combined=False)

    @router.websocket("/fstream/stream")
    async def combined(websocket: WebSocket) -> None:
        names = [n for n in websocket.query_params.get("streams", "").split("/") if n]
        await serve(websocket, names, combined=True)

    return router
