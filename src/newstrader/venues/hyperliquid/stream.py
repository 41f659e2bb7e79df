"""Hyperliquid account stream: one `/ws` connection feeding the venue's `AccountState`.

Subscriptions (venue-hyperliquid.md W3): `clearinghouseState` (full state per push: positions),
`orderUpdates` (order status deltas: open orders and triggers), `userFills` (snapshot, then
fills), `allMids` (marks). After the acks, a REST snapshot (`clearinghouseState` w2 +
`frontendOpenOrders` w20); the `userFills` snapshot replays recent fills for free. Heartbeat:
`{"method":"ping"}` every third of `max_silence_s` (the venue cuts a socket silent for 60 s);
the pong counts as heard.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog
from websockets.asyncio.client import ClientConnection

from newstrader.domain import OpenOrder
from newstrader.venues.account import AccountState, AccountStream
from newstrader.venues.hyperliquid.venue import positions_from_state

if TYPE_CHECKING:
    from newstrader.venues.hyperliquid.venue import HyperliquidVenue

log = structlog.get_logger(__name__)

RESTING = frozenset({"open", "triggered"})
ACK_TIMEOUT_S = 5.0


def ws_url(rest_url: str) -> str:
    """The SDK's rule: `http(s)://host[/prefix]` → `ws(s)://host[/prefix]/ws`."""
    return "ws" + rest_url.rstrip("/")[len("http") :] + "/ws"


class HyperliquidStream(AccountStream):
    """Positions, orders, fills and mids of one Hyperliquid account, pushed."""

    def __init__(self, venue: HyperliquidVenue, state: AccountState | None = None) -> None:
        super().__init__(state or AccountState(venue.name))
        self.state.fills_replayed_on_connect = True  # the userFills snapshot on every subscribe
        self.venue = venue
        self._acks = 0
        self._acked = asyncio.Event()
        self._subscriptions: list[dict[str, Any]] = [
            {"type": "clearinghouseState", "user": venue.account},
            {"type": "orderUpdates", "user": venue.account},
            {"type": "userFills", "user": venue.account},
            {"type": "allMids"},
        ]

    async def url(self) -> str:
        return ws_url(self.venue.config.url)

    async def subscribe(self, ws: ClientConnection) -> None:
        """Subscribe and wait for every ack: the snapshot must come after the subscriptions hold."""
        self._acks = 0
        self._acked.clear()
        for subscription in self._subscriptions:
            await ws.send(json.dumps({"method": "subscribe", "subscription": subscription}))
        await asyncio.wait_for(self._acked.wait(), ACK_TIMEOUT_S)

    async def snapshot(self) -> None:
        positions = await self.venue.positions()
        orders = await self.venue.open_orders()
        self.state.apply_snapshot(positions, orders)

    async def heartbeat(self, ws: ClientConnection) -> None:
        await ws.send('{"method":"ping"}')

    def handle(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        channel = message.get("channel")
        data = message.get("data")
        if channel == "clearinghouseState" and isinstance(data, dict):
            positions = positions_from_state(self.venue.name, data.get("clearinghouseState") or {})
            for coin in set(self.state.positions) | set(positions):
                self.state.set_position(coin, positions.get(coin))
        elif channel == "orderUpdates" and isinstance(data, list):
            for update in data:
                self._order(update)
        elif channel == "userFills" and isinstance(data, dict):
            for row in data.get("fills") or []:
                self.state.add_fill(self.venue._fill(row))
        elif channel == "allMids" and isinstance(data, dict):
            mids = data.get("mids") or {}
            self.state.set_marks({coin: Decimal(str(px)) for coin, px in mids.items()})
        elif channel == "subscriptionResponse":
            self._acks += 1
            if self._acks >= len(self._subscriptions):
                self._acked.set()
        elif channel == "error":
            log.warning("stream_error_message", venue=self.venue.name, error=str(data)[:300])

    def _order(self, update: dict[str, Any]) -> None:
        row = update.get("order") or {}
        oid = str(row.get("oid"))
        cloid = row.get("cloid")
        client_id = self.venue.client_id_of(cloid) if cloid else None
        if update.get("status") not in RESTING:
            self.state.order_update(oid, None, client_id)
            return
        known = self.state.open_orders.get(oid)
        # orderUpdates carries the basic order shape, no trigger kind: keep what the snapshot
        # knew about the order; our own orders are completed from what we sent (AccountState).
        fresh = self.venue._open_order(row)
        order = (
            OpenOrder(
                coin=known.coin,
                venue_order_id=oid,
                is_buy=known.is_buy,
                size=fresh.size,
                price=fresh.price,
                client_id=known.client_id or client_id,
                reduce_only=known.reduce_only,
                trigger_price=known.trigger_price,
                trigger_kind=known.trigger_kind,
            )
            if known is not None
            else fresh
        )
        self.state.order_update(oid, order, client_id, kind_known=self.venue.sent_by_us(cloid))
