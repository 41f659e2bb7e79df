"""Hyperliquid's websocket on `/hyperliquid/ws`, as the venue serves it (venue-hyperliquid.md "WebSocket").

Client → server: `{"method":"subscribe"|"unsubscribe","subscription":{…}}`, `{"method":"ping"}`,
`{"method":"post","id":N,"request":{"type":"info"|"action","payload":{…}}}`. Server → client:
always `{"channel":…,"data":…}`; subscribe/unsubscribe are acked on `subscriptionResponse` with the
echo, errors go out on `error` as a plain string.

Channels: `clearinghouseState` (full state on subscribe and after every change of that user,
marks of held coins included), `orderUpdates` (deltas only), `userFills` (`isSnapshot: true` first,
then deltas), `userEvents` on channel `user` (`fills`, `liquidation`, `nonUserCancel`; deltas
only), `allMids` (full map on subscribe and on every mark move). `post` runs through the same
`/info` and `/exchange` code as HTTP (limits, faults and stats included). A connection that
sends nothing for `hl_ws_idle_timeout_s` (60 s) is closed.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, WebSocket

from newstrader.sim.app import Sim
from newstrader.sim.hyperliquid_api import _clearinghouse, _fill_json, _status_name, basic_order_json, num
from newstrader.sim.market import MICRO, REJECTED, FillRecord, OrderRecord
from newstrader.sim.push import Changes, PushConnection, PushHub, asgi_post

VENUE = "hyperliquid"
USER_TYPES = ("clearinghouseState", "orderUpdates", "userFills", "userEvents")
PUBLIC_TYPES = ("allMids",)
# Statuses the user did not ask for: reported on `userEvents` as `nonUserCancel`.
NON_USER_CANCELS = frozenset(
    {"reduceOnlyCanceled", "liquidatedCanceled", "marginCanceled", "scheduledCancel"}
)
USER_FILLS_SNAPSHOT = 2000


def _key(subscription: dict[str, Any]) -> str:
    return json.dumps(subscription, sort_keys=True, separators=(",", ":"))


class HyperliquidConnection(PushConnection):
    """One client socket: its subscriptions and how each change batch maps to channels."""

    def __init__(self, sim: Sim, hub: PushHub, websocket: WebSocket) -> None:
        super().__init__(sim, hub, websocket, sim.config.hl_ws_idle_timeout_s)
        self.subscriptions: dict[str, dict[str, Any]] = {}

    # ----- client messages -----------------------------------------------------------------

    async def on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        method = message.get("method") if isinstance(message, dict) else None
        if method == "ping":
            self.send("ws:pong", {"channel": "pong"})
        elif method in ("subscribe", "unsubscribe") and isinstance(message, dict):
            self._subscription(method, message.get("subscription"), text)
        elif method == "post" and isinstance(message, dict) and isinstance(message.get("id"), int):
            await self._post(message["id"], message.get("request"), text)
        else:
            self._error(f"Error parsing JSON into valid websocket request: {text}")

    def _error(self, text: str) -> None:
        self.send("ws:error", {"channel": "error", "data": text})

    def _subscription(self, method: str, subscription: Any, raw: str) -> None:
        if not isinstance(subscription, dict) or subscription.get("type") not in USER_TYPES + PUBLIC_TYPES:
            self._error(f"Error parsing JSON into valid websocket request: {raw}")
            return
        if subscription["type"] in USER_TYPES:
            user = subscription.get("user")
            if not isinstance(user, str) or not user.startswith("0x") or len(user) != 42:
                self._error(f"Error parsing JSON into valid websocket request: {raw}")
                return
        key = _key(subscription)
        if method == "subscribe":
            if key in self.subscriptions:
                self._error(f"Already subscribed: {json.dumps(subscription, separators=(',', ':'))}")
                return
            self.subscriptions[key] = subscription
        else:
            if self.subscriptions.pop(key, None) is None:
                self._error(f"Already unsubscribed: {json.dumps(subscription, separators=(',', ':'))}")
                return
        ack = {"method": method, "subscription": subscription}
        self.send("ws:subscriptionResponse", {"channel": "subscriptionResponse", "data": ack})
        if method == "subscribe":
            self._initial(subscription)

    def _initial(self, subscription: dict[str, Any]) -> None:
        ex = self.sim.exchanges[VENUE]
        kind = subscription["type"]
        if kind == "clearinghouseState":
            self._clearinghouse(subscription)
        elif kind == "userFills":
            user = subscription["user"].lower()
            fills = [_fill_json(f) for f in ex.fills(user)[-USER_FILLS_SNAPSHOT:]]
            data = {"isSnapshot": True, "user": user, "fills": fills}
            self.send("ws:userFills", {"channel": "userFills", "data": data})
        elif kind == "allMids":
            self._all_mids()

    async def _post(self, request_id: int, request: Any, raw: str) -> None:
        kind = request.get("type") if isinstance(request, dict) else None
        payload = request.get("payload") if isinstance(request, dict) else None
        if kind not in ("info", "action") or not isinstance(payload, dict):
            self._error(f"Error parsing JSON into valid websocket request: {raw}")
            return
        path = "/hyperliquid/info" if kind == "info" else "/hyperliquid/exchange"
        status, body = await asgi_post(self.websocket, path, json.dumps(payload).encode())
        response: dict[str, Any]
        if status != 200:
            response = {"type": "error", "payload": f"{status} {body.decode('utf-8', 'replace')}".strip()}
        elif kind == "info":
            response = {"type": "info", "payload": {"type": payload.get("type"), "data": json.loads(body)}}
        else:
            response = {"type": "action", "payload": json.loads(body)}
        self.send("ws:post", {"channel": "post", "data": {"id": request_id, "response": response}})

    # ----- pushes ----------------------------------------------------------------------------

    def _clearinghouse(self, subscription: dict[str, Any]) -> None:
        user = subscription["user"].lower()
        state = _clearinghouse(self.sim.exchanges[VENUE], user)
        data = {"dex": subscription.get("dex") or "", "user": user, "clearinghouseState": state}
        self.send("ws:clearinghouseState", {"channel": "clearinghouseState", "data": data})

    def _all_mids(self) -> None:
        ex = self.sim.exchanges[VENUE]
        mids = {coin: num(ex.marks[coin]) for coin in ex.markets}
        self.send("ws:allMids", {"channel": "allMids", "data": {"mids": mids}})

    def deliver(self, changes: Changes) -> None:
        ex = self.sim.exchanges[VENUE]
        for subscription in list(self.subscriptions.values()):
            kind = subscription["type"]
            if kind == "allMids":
                if changes.marks:
                    self._all_mids()
                continue
            user = subscription["user"].lower()
            if kind == "clearinghouseState":
                account = ex.accounts.get(user)
                holds_moved = account is not None and any(c in changes.marks for c in account.positions)
                if user in changes.accounts or holds_moved:
                    self._clearinghouse(subscription)
                continue
            orders = [o for o in changes.orders.values() if o.account == user and o.status != REJECTED]
            fills = [f for f in changes.fills if f.account == user]
            if kind == "orderUpdates" and orders:
                self.send(
                    "ws:orderUpdates", {"channel": "orderUpdates", "data": [_ws_order(o) for o in orders]}
                )
            elif kind == "userFills" and fills:
                data = {"user": user, "fills": [_fill_json(f) for f in fills]}
                self.send("ws:userFills", {"channel": "userFills", "data": data})
            elif kind == "userEvents":
                self._user_events(orders, fills)

    def _user_events(self, orders: list[OrderRecord], fills: list[FillRecord]) -> None:
        if fills:
            self.send("ws:user", {"channel": "user", "data": {"fills": [_fill_json(f) for f in fills]}})
        for fill in fills:
            if fill.liquidation:
                event = {
                    "lid": fill.tid,
                    "liquidator": "0x0000000000000000000000000000000000000000",
                    "liquidated_user": fill.account,
                    "liquidated_ntl_pos": num((fill.size * fill.px).quantize(MICRO)),
                    "liquidated_account_value": "0",
                }
                self.send("ws:user", {"channel": "user", "data": {"liquidation": event}})
        cancels = [{"coin": o.coin, "oid": o.oid} for o in orders if o.status in NON_USER_CANCELS]
        if cancels:
            self.send("ws:user", {"channel": "user", "data": {"nonUserCancel": cancels}})


def _ws_order(order: OrderRecord) -> dict[str, Any]:
    return {
        "order": basic_order_json(order),
        "status": _status_name(order),
        "statusTimestamp": order.status_ms,
    }


def build_router(sim: Sim) -> APIRouter:
    """`/ws` for the Hyperliquid venue of `sim`."""
    hub = PushHub(sim, VENUE)
    router = APIRouter()

    @router.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        connection = HyperliquidConnection(sim, hub, websocket)
        await connection.serve(connection.on_text)

    return router
