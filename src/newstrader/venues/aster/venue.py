"""`AsterVenue`: the Venue protocol over Aster's Binance-style futures API (one-way mode only).

Symbols come from exchangeInfo (`baseAsset`, `quoteAsset == USDT`, `status == TRADING`), rounding
from its filters; orders carry a `newClientOrderId` derived from our client id and ask for the
RESULT so the fill is known at once, and no builder fee is ever attached. A market order is an
IOC limit at the mark × (1 ± max_slippage), as on Hyperliquid: Aster's own MARKET order would fill
anywhere within the symbol's `marketTakeBound`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog

from newstrader.domain import (
    ZERO,
    Fill,
    Market,
    OpenOrder,
    OrderRequest,
    OrderResult,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
    TriggerKind,
)
from newstrader.venues.account import read_triggers
from newstrader.venues.aster.config import AsterConfig
from newstrader.venues.aster.http import AsterHttp, SignedOrder
from newstrader.venues.base import Ambiguous, AuthError, OnWritten, PreparedOrder, Rejected

log = structlog.get_logger(__name__)

DEFAULT_MAX_LEVERAGE = 20
TRADES_PAGE = 1000  # userTrades' largest page
TRADE_PAGES = 10
_SCAN_BATCH = 8  # symbols asked at once when an order's symbol is unknown (after a restart)
# A mark this young may serve as a market order's slippage reference (the engine reads the mark
# just before it orders), as on Hyperliquid.
REFERENCE_MAX_AGE_S = 2.0
_CLIENT_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_TIF = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.POST_ONLY: "GTX"}
_TRIGGER_TYPES = {
    "TAKE_PROFIT_MARKET": TriggerKind.TAKE_PROFIT,
    "TAKE_PROFIT": TriggerKind.TAKE_PROFIT,
    "STOP_MARKET": TriggerKind.STOP_LOSS,
    "STOP": TriggerKind.STOP_LOSS,
}
HEDGE_MODE_MESSAGE = (
    "the Aster account {user} is in hedge (dual-side) position mode; newstrader trades one-way mode "
    "only. Switch 'Position Mode' to One-way on Aster (no open orders or positions), then restart."
)


def aster_client_order_id(client_id: str) -> str:
    """Our client id if Aster accepts it as is (≤ 36 of [.A-Z:/a-z0-9_-]), else a stable hash of it."""
    if _CLIENT_ID_RE.match(client_id):
        return client_id
    return "nt-" + hashlib.sha256(client_id.encode()).hexdigest()[:33]


def coin_of_base(base: str) -> str:
    """Aster base asset → our coin name (1000BONK → kBONK, as Hyperliquid names it)."""
    return f"k{base[4:]}" if base.startswith("1000") and base[4:].isalpha() else base


def _dec(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True, slots=True)
class _AsterOrder:
    """A prepared order's Aster half: its client order id, symbol and signed call."""

    cid: str
    symbol: str
    signed: SignedOrder


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class AsterVenue:
    """An Aster USDT-M perps account in one-way mode, traded with v3 (default) or legacy HMAC auth."""

    def __init__(self, config: AsterConfig, http: AsterHttp | None = None) -> None:
        self.name = config.name
        self.config = config
        self.http = http or AsterHttp(config)
        # v3 nonces older than 10 s are refused, HMAC requests older than recvWindow: a lost order
        # that has not arrived by then never will.
        self.order_validity_s = self.http.validity_s
        self._markets: dict[str, Market] = {}
        self._symbol_to_coin: dict[str, str] = {}
        self._client_symbol: dict[str, str] = {}  # newClientOrderId → symbol, for order_status
        self._traded: set[str] = set()
        self._mode_checked = False
        self._max_leverage_cache: dict[str, int] | None = None
        self._ready_lock = asyncio.Lock()
        # Symbol → PERCENT_PRICE (multiplierDown, multiplierUp): the band a limit price must keep to.
        self._price_band: dict[str, tuple[Decimal, Decimal]] = {}
        self._marks: dict[str, tuple[Decimal, float]] = {}  # coin → (mark, monotonic time read)
        from newstrader.venues.aster.stream import AsterStream  # it reads this module's parsers

        self.stream = AsterStream(self)  # declared capability (venues/base.py `Streaming`)

    def __repr__(self) -> str:
        return f"AsterVenue({self.name}, user={self.config.account}, auth={self.config.auth})"

    async def close(self) -> None:
        await self.stream.stop()
        await self.http.close()

    async def _ensure_one_way(self) -> None:
        """Refuse hedge mode once, before the first private call that could trade or misread it."""
        if self._mode_checked:
            return
        async with self._ready_lock:
            if self._mode_checked:
                return
            reply = await self.http.signed("GET", "positionSide/dual")
            if reply.get("dualSidePosition") in (True, "true", "True"):
                raise AuthError(
                    HEDGE_MODE_MESSAGE.format(user=self.config.account), venue=self.name, code=-4061
                )
            self._mode_checked = True

    # --- markets -------------------------------------------------------------------------------

    async def markets(self) -> dict[str, Market]:
        """USDT perpetuals that are TRADING, with rounding from their filters."""
        info = await self.http.public("GET", "exchangeInfo")
        max_leverage = await self._max_leverage()
        markets: dict[str, Market] = {}
        symbol_to_coin: dict[str, str] = {}
        for row in info.get("symbols", []):
            base = row.get("baseAsset") or ""
            if not base or row.get("quoteAsset") != "USDT" or row.get("status") != "TRADING":
                continue
            if row.get("contractType", "PERPETUAL") != "PERPETUAL":
                continue
            filters = {f.get("filterType"): f for f in row.get("filters", [])}
            price_filter = filters.get("PRICE_FILTER", {})
            lot = filters.get("LOT_SIZE", {})
            market_lot = filters.get("MARKET_LOT_SIZE", lot)
            notional = filters.get("MIN_NOTIONAL", {})
            steps = [_dec(f["stepSize"]) for f in (lot, market_lot) if _dec(f.get("stepSize", 0)) > 0]
            min_qty = [_dec(f["minQty"]) for f in (lot, market_lot) if f.get("minQty") is not None]
            min_notional = notional.get("notional", notional.get("minNotional", 0))
            tick = _dec(price_filter.get("tickSize", 0))
            if not steps or tick <= 0:
                continue
            band = filters.get("PERCENT_PRICE")
            if band and _dec(band.get("multiplierUp") or 0) > 0:
                self._price_band[row["symbol"]] = (
                    _dec(band.get("multiplierDown") or 0),
                    _dec(band["multiplierUp"]),
                )
            coin = coin_of_base(base)
            markets[coin] = Market(
                coin=coin,
                symbol=row["symbol"],
                size_step=max(steps),  # valid for LIMIT (LOT_SIZE) and MARKET (MARKET_LOT_SIZE) alike
                price_tick=tick,
                min_notional=_dec(min_notional or 0),
                max_leverage=max_leverage.get(row["symbol"], DEFAULT_MAX_LEVERAGE),
                min_size=max(min_qty) if min_qty else ZERO,
            )
            symbol_to_coin[row["symbol"]] = coin
        self._markets, self._symbol_to_coin = markets, symbol_to_coin
        return dict(markets)

    async def _max_leverage(self) -> dict[str, int]:
        """Symbol → highest leverage (the first bracket's initialLeverage), read once per adapter."""
        if self._max_leverage_cache is None:
            try:
                rows = await self.http.signed("GET", "leverageBracket")
            except Rejected as exc:  # an API without brackets: the engine then clamps to the default
                log.warning("leverage_brackets_unavailable", venue=self.name, error=str(exc))
                rows = []
            self._max_leverage_cache = {
                row["symbol"]: max(int(b.get("initialLeverage", 1)) for b in row["brackets"])
                for row in rows
                if row.get("brackets")
            }
        return self._max_leverage_cache

    async def _market(self, coin: str) -> Market:
        market = self._markets.get(coin)
        if market is None:
            market = (await self.markets()).get(coin)
            if market is None:
                raise Rejected(f"{coin} is not listed on {self.name}", venue=self.name)
        return market

    async def _coin_of(self, symbol: str) -> str | None:
        if not self._symbol_to_coin:
            await self.markets()
        return self._symbol_to_coin.get(symbol)

    # --- reads ---------------------------------------------------------------------------------

    async def equity(self) -> Decimal:
        """The account's margin balance in USD (wallet + unrealized PnL): the base of `equity_fraction`.

        v3 reads `accountWithJoinMargin`, the account endpoint the current v3 docs list (they no
        longer list `/fapi/v3/account`); legacy HMAC keys read `/fapi/v4/account`.
        """
        row = await self.http.signed("GET", "account")
        return _dec(row.get("totalMarginBalance", 0))

    async def positions(self) -> dict[str, Position]:
        """A fresh positionRisk; flat rows are dropped, a hedge-mode row is refused."""
        await self._ensure_one_way()
        rows = await self.http.signed("GET", "positionRisk")
        positions: dict[str, Position] = {}
        for row in rows:
            size = _dec(row.get("positionAmt", 0))
            if size == 0:
                continue
            if row.get("positionSide", "BOTH") != "BOTH":
                raise AuthError(
                    HEDGE_MODE_MESSAGE.format(user=self.config.account), venue=self.name, code=-4061
                )
            coin = await self._coin_of(row["symbol"]) or row["symbol"]
            liq = _dec(row.get("liquidationPrice") or 0)
            positions[coin] = Position(
                venue=self.name,
                coin=coin,
                size=size,
                entry_price=_dec(row.get("entryPrice", 0)),
                mark_price=_dec(row["markPrice"]) if row.get("markPrice") is not None else None,
                unrealized_pnl=_dec(row["unRealizedProfit"])
                if row.get("unRealizedProfit") is not None
                else None,
                leverage=int(_dec(row["leverage"])) if row.get("leverage") not in (None, "") else None,
                liquidation_price=liq if liq > 0 else None,
            )
        return positions

    async def mark_price(self, coin: str) -> Decimal:
        """premiumIndex markPrice."""
        market = await self._market(coin)
        reply = await self.http.public("GET", "premiumIndex", [("symbol", market.symbol)])
        mark = _dec(reply["markPrice"])
        self._marks[coin] = (mark, time.monotonic())
        return mark

    async def _reference_price(self, req: OrderRequest) -> Decimal:
        """The price a market order's slippage cap is measured from: given, a fresh mark, or read now."""
        if req.limit_price is not None:
            return req.limit_price
        cached = self._marks.get(req.coin)
        if cached is not None and time.monotonic() - cached[1] <= REFERENCE_MAX_AGE_S:
            return cached[0]
        return await self.mark_price(req.coin)

    def capped_price(self, market: Market, reference: Decimal, req: OrderRequest) -> Decimal:
        """reference × (1 ± max_slippage), kept inside PERCENT_PRICE, rounded toward the reference.

        Rounding toward the reference keeps the cap a cap (never more slippage than asked); the
        band keeps a wide cap (the closer's escalating 15 %) from being refused with -4016/-4024.
        """
        factor = 1 + req.max_slippage if req.is_buy else 1 - req.max_slippage
        down, up = self._price_band.get(market.symbol, (ZERO, ZERO))
        if req.is_buy and up > 0:
            factor = min(factor, up)
        elif not req.is_buy and down > 0:
            factor = max(factor, down)
        return market.round_price(reference * factor, up=not req.is_buy)

    def _result(self, row: dict[str, Any], client_id: str) -> OrderResult:
        status = str(row.get("status", ""))
        filled = _dec(row.get("executedQty", 0))
        avg = _dec(row.get("avgPrice") or 0)
        orig = _dec(row.get("origQty") or 0)
        if status == "FILLED":
            mapped = OrderStatus.FILLED
        elif status == "PARTIALLY_FILLED" or (status in ("EXPIRED", "CANCELED") and filled > 0):
            mapped = OrderStatus.PARTIALLY_FILLED if filled < orig or orig == 0 else OrderStatus.FILLED
        elif status == "NEW":
            mapped = OrderStatus.RESTING
        elif status == "REJECTED":
            mapped = OrderStatus.REJECTED
        else:
            mapped = OrderStatus.CANCELED
        return OrderResult(
            client_id=client_id,
            status=mapped,
            venue_order_id=str(row["orderId"]) if row.get("orderId") is not None else None,
            filled_size=filled,
            avg_price=avg if avg > 0 else None,
            error=status if mapped is OrderStatus.REJECTED else None,
        )

    async def order_status(self, client_id: str, coin: str | None = None) -> OrderResult | None:
        """GET order by origClientOrderId; the symbol is remembered or given by `coin`, else searched.

        Every signed call spends a v3 nonce and the venue keeps only the last 100: a search over
        every market, repeated while an order is in flight, would push that order's own nonce out."""
        await self._ensure_one_way()
        cid = aster_client_order_id(client_id)
        known = self._client_symbol.get(cid)
        if known is None and coin is not None:
            known = (await self._market(coin)).symbol
        if known is not None:
            symbols = [known]
        else:  # after a restart: the symbols we hold first, then every market
            held = [p.coin for p in (await self.positions()).values()]
            markets = self._markets or await self.markets()
            symbols = list(dict.fromkeys([markets[c].symbol for c in held if c in markets]))
            symbols += [m.symbol for m in markets.values() if m.symbol not in symbols]
        for start in range(0, len(symbols), _SCAN_BATCH):
            batch = symbols[start : start + _SCAN_BATCH]
            rows = await asyncio.gather(*(self._order_by_client_id(symbol, cid) for symbol in batch))
            for symbol, row in zip(batch, rows, strict=True):
                if row is not None:
                    self._client_symbol[cid] = symbol
                    return self._result(row, client_id)
        return None

    async def _order_by_client_id(self, symbol: str, cid: str) -> dict[str, Any] | None:
        try:
            row: dict[str, Any] = await self.http.signed(
                "GET", "order", [("symbol", symbol), ("origClientOrderId", cid)]
            )
        except Rejected as exc:
            if exc.code in (-2013, -2011):
                return None
            raise
        return row

    async def open_orders(self, coin: str | None = None) -> list[OpenOrder]:
        """openOrders (per symbol when `coin` is given), trigger orders included."""
        await self._ensure_one_way()
        params = [("symbol", (await self._market(coin)).symbol)] if coin is not None else []
        rows = await self.http.signed("GET", "openOrders", params)
        orders = []
        for row in rows:
            order_type = str(row.get("type") or row.get("origType") or "")
            kind = _TRIGGER_TYPES.get(order_type)
            stop = _dec(row.get("stopPrice") or 0)
            orders.append(
                OpenOrder(
                    coin=await self._coin_of(row["symbol"]) or row["symbol"],
                    venue_order_id=str(row["orderId"]),
                    is_buy=row.get("side") == "BUY",
                    size=_dec(row.get("origQty", 0)) - _dec(row.get("executedQty", 0)),
                    price=_dec(row.get("price") or 0),
                    client_id=row.get("clientOrderId"),
                    reduce_only=bool(row.get("reduceOnly")) or bool(row.get("closePosition")),
                    trigger_price=stop if kind is not None and stop > 0 else None,
                    trigger_kind=kind,
                )
            )
        return orders

    async def fills(self, since: datetime) -> list[Fill]:
        """userTrades since `since` for every symbol we traded or hold (the endpoint needs a symbol).

        Paged: 1000 trades per reply, then on from the last trade id.
        """
        await self._ensure_one_way()
        start_ms = int(since.timestamp() * 1000)
        coins = set(self._traded) | set((await self.positions()).keys())
        fills: dict[str, Fill] = {}
        for coin in sorted(coins):
            market = await self._market(coin)
            params = [("symbol", market.symbol), ("startTime", str(start_ms)), ("limit", str(TRADES_PAGE))]
            for _page in range(TRADE_PAGES):
                rows = await self.http.signed("GET", "userTrades", params)
                for row in rows:
                    if int(row["time"]) >= start_ms:
                        fill = self._fill(coin, row)
                        fills[fill.fill_id] = fill
                if len(rows) < TRADES_PAGE:
                    break
                last_id = max(int(row["id"]) for row in rows)
                params = [
                    ("symbol", market.symbol),
                    ("fromId", str(last_id + 1)),
                    ("limit", str(TRADES_PAGE)),
                ]
        return sorted(fills.values(), key=lambda f: (f.time, f.fill_id))

    def _fill(self, coin: str, row: dict[str, Any]) -> Fill:
        return Fill(
            venue=self.name,
            coin=coin,
            is_buy=row.get("side") == "BUY" or row.get("buyer") is True,
            size=_dec(row["qty"]),
            price=_dec(row["price"]),
            # A fee paid is a cost (positive), whatever sign the reply carries: the v3 docs' example
            # shows a negative commission, replies recorded on the venue a positive one, and ccxt
            # books abs(commission) as the fee cost. Aster has no maker rebates.
            fee=abs(_dec(row.get("commission", 0))),
            realized_pnl=_dec(row.get("realizedPnl", 0)),
            time=_ms_to_dt(int(row["time"])),
            fill_id=str(row["id"]),
            venue_order_id=str(row.get("orderId")) if row.get("orderId") is not None else None,
        )

    # --- actions -------------------------------------------------------------------------------

    async def place_order(self, req: OrderRequest) -> OrderResult:
        """A LIMIT order (RESULT response, so the fill is known); a market order is a capped IOC limit.

        The market order's unfilled rest expires: the result is then PARTIALLY_FILLED and the
        engine completes or gives up, as on Hyperliquid; nothing filled at all is `Rejected`.
        """
        return await self.send_order(await self.prepare_order(req))

    async def prepare_order(self, req: OrderRequest) -> PreparedOrder:
        """The order's parameters, signed (see `place_order`); nothing is sent."""
        await self._ensure_one_way()
        market = await self._market(req.coin)
        size = market.round_size(req.size)
        if size <= 0:
            raise Rejected(f"size {req.size} rounds to zero (step {market.size_step})", venue=self.name)
        cid = aster_client_order_id(req.client_id)
        params: list[tuple[str, str]] = [("symbol", market.symbol), ("side", "BUY" if req.is_buy else "SELL")]
        if req.order_type is OrderType.MARKET:
            price = self.capped_price(market, await self._reference_price(req), req)
            if not req.is_buy and not req.reduce_only:  # valued at its limit: keep it above the minimum
                price = market.sell_price_floor(size, price)
            tif = "IOC"
        else:
            if req.limit_price is None:
                raise Rejected("a limit order needs limit_price", venue=self.name)
            price = market.round_price(req.limit_price, up=not req.is_buy)
            tif = _TIF[req.tif]
        params += [
            ("type", "LIMIT"),
            ("timeInForce", tif),
            ("quantity", _plain(size)),
            ("price", _plain(price)),
        ]
        if req.reduce_only:
            params.append(("reduceOnly", "true"))
        params += [("newClientOrderId", cid), ("newOrderRespType", "RESULT")]
        signed = await self.http.sign_order("POST", "order", params, req.not_after)
        return PreparedOrder(req, size, _AsterOrder(cid, market.symbol, signed))

    async def send_order(
        self, prepared: PreparedOrder, *, on_written: OnWritten | None = None
    ) -> OrderResult:
        """Send a prepared order once (see `place_order`)."""
        order = prepared.payload
        if not isinstance(order, _AsterOrder):
            raise TypeError(f"not an {self.name} order: {order!r}")
        req = prepared.request
        self._client_symbol[order.cid] = order.symbol
        self._traded.add(req.coin)
        row = await self.http.send_order(order.signed, on_written=on_written)
        result = self._result(row, req.client_id)
        if result.filled_size == 0 and result.status is OrderStatus.CANCELED:
            # An IOC/market order that found nothing: the same outcome Hyperliquid reports as an error.
            raise Rejected(f"order {order.cid} expired unfilled ({row.get('status')})", venue=self.name)
        log.info(
            "order_placed",
            venue=self.name,
            coin=req.coin,
            client_id=req.client_id,
            status=result.status.value,
            size=str(prepared.size),
            filled=str(result.filled_size),
        )
        return result

    async def place_triggers(
        self,
        coin: str,
        position_size: Decimal,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        client_ids: tuple[str, str],
        not_after: datetime | None = None,
    ) -> list[OrderResult]:
        """TAKE_PROFIT_MARKET / STOP_MARKET with closePosition, triggered by the mark price."""
        if position_size == 0:
            return []
        await self._ensure_one_way()
        market = await self._market(coin)
        side = "SELL" if position_size > 0 else "BUY"
        results: list[OrderResult] = []
        state = self.stream.state
        for trigger, order_type, client_id in (
            (take_profit, "TAKE_PROFIT_MARKET", client_ids[0]),
            (stop_loss, "STOP_MARKET", client_ids[1]),
        ):
            if trigger is None:
                continue
            cid = aster_client_order_id(client_id)
            self._client_symbol[cid] = market.symbol
            stop = market.round_price(trigger)
            params = [
                ("symbol", market.symbol),
                ("side", side),
                ("type", order_type),
                ("stopPrice", _plain(stop)),
                ("closePosition", "true"),
                ("workingType", "MARK_PRICE"),
                ("newClientOrderId", cid),
            ]
            # Known to the account state from the send and its ack, before its push (named `cid` there).
            state.sending_trigger(
                OpenOrder(
                    coin=coin,
                    venue_order_id="",
                    is_buy=side == "BUY",
                    size=abs(position_size),
                    price=ZERO,
                    client_id=cid,
                    reduce_only=True,
                    trigger_price=stop,
                    trigger_kind=_TRIGGER_TYPES[order_type],
                )
            )
            try:
                row = await self.http.signed("POST", "order", params, is_order=True, not_after=not_after)
                result = self._result(row, client_id)
            except Ambiguous:
                raise  # it may rest: the stream reports it, or the state resyncs without it
            except Exception:
                state.trigger_acked(cid, None, resting=False)
                raise
            state.trigger_acked(cid, result.venue_order_id, resting=result.status is OrderStatus.RESTING)
            results.append(result)
        log.info("triggers_placed", venue=self.name, coin=coin, tp=str(take_profit), sl=str(stop_loss))
        return results

    async def cancel_triggers(self, coin: str) -> int:
        """Cancel each TP/SL order on `coin` by id; returns how many were cancelled."""
        market = await self._market(coin)
        triggers = await read_triggers(self, coin)  # the stream's, or a read when it cannot vouch
        cancelled = 0
        for order in triggers:
            try:
                await self.http.signed(
                    "DELETE",
                    "order",
                    [("symbol", market.symbol), ("orderId", order.venue_order_id)],
                    is_order=True,
                )
            except Rejected as exc:
                if exc.code in (-2011, -2013):  # already gone (fired or cancelled meanwhile)
                    self.stream.state.trigger_cancelled(order.venue_order_id, order.client_id)
                    continue
                raise
            self.stream.state.trigger_cancelled(order.venue_order_id, order.client_id)
            cancelled += 1
        log.info("triggers_cancelled", venue=self.name, coin=coin, count=cancelled)
        return cancelled

    async def cancel_by_client_id(self, coin: str, client_id: str) -> bool:
        """DELETE order by origClientOrderId: works without the order id, so also after a lost reply."""
        market = await self._market(coin)
        params = [("symbol", market.symbol), ("origClientOrderId", aster_client_order_id(client_id))]
        try:
            await self.http.signed("DELETE", "order", params, is_order=True)
        except Rejected as exc:
            if exc.code in (-2011, -2013):  # none rests under that id (never arrived, filled, cancelled)
                return False
            raise
        return True

    async def set_leverage(self, coin: str, leverage: int, cross: bool = True) -> None:
        """POST leverage, and the margin type (an unchanged margin type, -4046, is fine)."""
        await self._ensure_one_way()
        market = await self._market(coin)
        try:
            await self.http.signed(
                "POST",
                "marginType",
                [("symbol", market.symbol), ("marginType", "CROSSED" if cross else "ISOLATED")],
            )
        except Rejected as exc:
            if exc.code != -4046:
                raise
        await self.http.signed("POST", "leverage", [("symbol", market.symbol), ("leverage", str(leverage))])
