"""Aster account stream: one combined connection (user data + mark prices) feeding `AccountState`.

`POST listenKey` (v3 signed, or the legacy API key), then `/stream?streams=<listenKey>/!markPrice@arr@1s`
on the futures stream host (venue-aster.md W1–W5): `ACCOUNT_UPDATE` rows are absolute positions,
`ORDER_TRADE_UPDATE` moves orders and carries fills (`x: TRADE`, liquidations `x: CALCULATED`),
`listenKeyExpired` opens a gap and redials with a fresh key. The user stream has no snapshot, so
every (re)connect reads `positionRisk` (w5) and `openOrders` (w40) after subscribing. The mark
array arrives every second, which is what proves the feed alive (a protocol pong comes from the
socket layer and would hide a stalled feed). The listenKey is kept alive with a `PUT` every
`keepalive_s` (30 min; it lives 60 min).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import structlog

from newstrader.domain import Fill, OpenOrder, Position
from newstrader.venues.account import AccountState, AccountStream
from newstrader.venues.aster.venue import _TRIGGER_TYPES

if TYPE_CHECKING:
    from newstrader.venues.aster.venue import AsterVenue

log = structlog.get_logger(__name__)

MARKS_STREAM = "!markPrice@arr@1s"
KEEPALIVE_S = 30 * 60.0
RESTING = frozenset({"NEW", "PARTIALLY_FILLED"})


def ws_base(rest_url: str) -> str:
    """The futures stream host for a REST base: `https://fapi.X` → `wss://fstream.X`; any other
    base (the simulator's `http://host:port/aster`) gets `/fstream` appended on the same host."""
    parts = urlsplit(rest_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    if parts.hostname and parts.hostname.startswith("fapi."):
        return urlunsplit((scheme, "fstream." + parts.netloc[len("fapi.") :], "", "", ""))
    return urlunsplit((scheme, parts.netloc, parts.path + "/fstream", "", ""))


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


class AsterStream(AccountStream):
    """Positions, orders, fills and marks of one Aster account, pushed."""

    def __init__(
        self, venue: AsterVenue, state: AccountState | None = None, keepalive_s: float = KEEPALIVE_S
    ) -> None:
        super().__init__(state or AccountState(venue.name))
        self.venue = venue
        self.keepalive_s = keepalive_s
        self.listen_key: str | None = None
        self._kept_at = 0.0

    async def url(self) -> str:
        await self.venue.markets()  # symbol → coin for the pushes
        reply = await self.venue.http.signed("POST", "listenKey")
        self.listen_key = str(reply["listenKey"])
        self._kept_at = time.monotonic()
        return f"{ws_base(self.venue.config.url)}/stream?streams={self.listen_key}/{MARKS_STREAM}"

    async def snapshot(self) -> None:
        positions = await self.venue.positions()
        orders = await self.venue.open_orders()
        self.state.apply_snapshot(positions, orders)

    async def keepalive(self) -> None:
        """`PUT listenKey` when due; a refusal (-1125) ends the session, which redials with a new key."""
        if time.monotonic() - self._kept_at < self.keepalive_s:
            return
        try:
            await self.venue.http.signed("PUT", "listenKey")
        except Exception:
            self.state.mark_gap("listenKey keepalive failed")
            raise
        self._kept_at = time.monotonic()

    def handle(self, message: Any) -> None:
        data = message.get("data", message) if isinstance(message, dict) else message
        if isinstance(data, list):  # !markPrice@arr
            self.state.set_marks({self._coin(row["s"]): _dec(row["p"]) for row in data if "s" in row})
            return
        if not isinstance(data, dict):
            return
        event = data.get("e")
        if event == "ACCOUNT_UPDATE":
            for row in (data.get("a") or {}).get("P") or []:
                if row.get("ps", "BOTH") == "BOTH":
                    coin = self._coin(row["s"])
                    size = _dec(row["pa"])
                    position = Position(
                        venue=self.venue.name,
                        coin=coin,
                        size=size,
                        entry_price=_dec(row.get("ep", 0)),
                        unrealized_pnl=_dec(row["up"]) if row.get("up") is not None else None,
                    )
                    self.state.set_position(coin, position if size != 0 else None)
        elif event == "ORDER_TRADE_UPDATE":
            self._order(data.get("o") or {})
        elif event == "markPriceUpdate":
            self.state.set_marks({self._coin(data["s"]): _dec(data["p"])})
        elif event == "listenKeyExpired":
            self.state.mark_gap("listenKey expired")
            self._kept_at = float("-inf")  # the next keepalive PUT fails and the session redials

    def _coin(self, symbol: str) -> str:
        return self.venue._symbol_to_coin.get(symbol, symbol)

    def _order(self, o: dict[str, Any]) -> None:
        coin = self._coin(o["s"])
        oid = str(o["i"])
        client_id = o.get("c") or None
        if o.get("x") in ("TRADE", "CALCULATED") and _dec(o.get("l", 0)) > 0:
            fill = Fill(
                venue=self.venue.name,
                coin=coin,
                is_buy=o.get("S") == "BUY",
                size=_dec(o["l"]),
                price=_dec(o["L"]),
                fee=_dec(o.get("n", 0)),
                realized_pnl=_dec(o.get("rp", 0)),
                time=datetime.fromtimestamp(int(o.get("T", 0)) / 1000, tz=UTC),
                fill_id=str(o.get("t")),
                venue_order_id=oid,
                client_id=client_id,
            )
            self.state.add_fill(fill)
        if o.get("X") not in RESTING:
            self.state.order_update(oid, None, client_id)
            return
        kind = _TRIGGER_TYPES.get(str(o.get("ot") or o.get("o")))
        stop = _dec(o.get("sp", 0))
        order = OpenOrder(
            coin=coin,
            venue_order_id=oid,
            is_buy=o.get("S") == "BUY",
            size=_dec(o.get("q", 0)) - _dec(o.get("z", 0)),
            price=_dec(o.get("p", 0)),
            client_id=client_id,
            reduce_only=bool(o.get("R")) or bool(o.get("cp")),
            trigger_price=stop if kind is not None and stop > 0 else None,
            trigger_kind=kind,
        )
        self.state.order_update(oid, order, client_id)
