"""`HyperliquidVenue`: the Venue protocol over Hyperliquid's /info and /exchange.

Precision comes from `meta` (szDecimals → size step, 6 − szDecimals decimals and 5 significant
figures for prices) and is applied through `Market`; market orders are aggressive IOC limits
capped by slippage from the mid; every order carries a cloid derived from our client id.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog

from newstrader.domain import (
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
from newstrader.venues.base import Ambiguous, AuthError, OnWritten, PreparedOrder, Rejected
from newstrader.venues.errors import classify_hyperliquid_text
from newstrader.venues.hyperliquid.config import HyperliquidConfig
from newstrader.venues.hyperliquid.http import HyperliquidHttp, encode_envelope
from newstrader.venues.hyperliquid.signing import (
    L1Signer,
    NonceSource,
    cancel_action,
    cloid_for,
    limit_order_wire,
    order_action,
    trigger_order_wire,
    update_leverage_action,
)

log = structlog.get_logger(__name__)

_TIF = {TimeInForce.GTC: "Gtc", TimeInForce.IOC: "Ioc", TimeInForce.POST_ONLY: "Alo"}
# Trigger orders fill as market orders; their limit is the worst price we accept, this far past the trigger.
TRIGGER_SLIPPAGE = Decimal("0.10")
# A cancel's error for an order that no longer rests (filled, fired, cancelled) or never did.
GONE_ALREADY = "Order was never placed, already canceled, or filled"
_NONCES: dict[str, NonceSource] = {}  # per signer address, shared by every adapter in the process
_OPEN_STATUSES = {"open", "triggered"}
# A mid this young may serve as a market order's slippage reference: the engine reads the mark
# alongside the position just before it orders, so the order needs no third round trip.
REFERENCE_MAX_AGE_S = 2.0
MARKETS_FRESH_S = 60.0
FILL_PAGE_SIZE = 2000  # userFillsByTime returns at most this many per call
FILL_PAGES = 5  # and only the newest 10000 fills are available at all
_UNKNOWN_SIGNER = re.compile(r"User or API Wallet (0x[0-9a-fA-F]{40}) does not exist")
# `userAbstraction` modes whose collateral is the spot USDC, not the perp account value.
SPOT_COLLATERAL_MODES = frozenset({"unifiedAccount", "portfolioMargin"})


@dataclass(frozen=True, slots=True)
class _SignedOrder:
    """A prepared order's Hyperliquid half: its cloid, limit price and signed /exchange body."""

    cloid: str
    price: Decimal
    content: bytes


def _nonces_for(address: str) -> NonceSource:
    return _NONCES.setdefault(address.lower(), NonceSource())


def _dec(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def positions_from_state(venue: str, state: dict[str, Any]) -> dict[str, Position]:
    """Positions from a `clearinghouseState` (REST reply or websocket push); flat coins are absent."""
    positions: dict[str, Position] = {}
    for entry in state.get("assetPositions", []):
        raw = entry.get("position", entry)
        size = _dec(raw["szi"])
        if size == 0:
            continue
        leverage = raw.get("leverage") or {}
        liq = raw.get("liquidationPx")
        value = raw.get("positionValue")
        positions[raw["coin"]] = Position(
            venue=venue,
            coin=raw["coin"],
            size=size,
            entry_price=_dec(raw.get("entryPx") or 0),
            # positionValue is |szi| × mark: the mark comes with the read at no extra cost.
            mark_price=_dec(value) / abs(size) if value not in (None, "") else None,
            unrealized_pnl=_dec(raw["unrealizedPnl"]) if raw.get("unrealizedPnl") is not None else None,
            leverage=int(leverage["value"]) if isinstance(leverage, dict) and "value" in leverage else None,
            liquidation_price=_dec(liq) if liq not in (None, "") else None,
        )
    return positions


class HyperliquidVenue:
    """A Hyperliquid perps account, traded by `secret` (the account itself or an approved agent wallet)."""

    def __init__(self, config: HyperliquidConfig, http: HyperliquidHttp | None = None) -> None:
        self.name = config.name
        self.config = config
        self.order_validity_s = config.order_validity_s
        self.account = config.account.lower()
        self.signer = L1Signer(config.secret)
        self._nonces = _nonces_for(self.signer.address)
        self.http = http or HyperliquidHttp(
            config.url,
            venue=config.name,
            timeout_s=config.timeout_s,
            ip_weight_per_min=config.ip_weight_per_min,
        )
        self._markets: dict[str, Market] = {}
        self._markets_at = float("-inf")
        self._cloid_to_client: dict[str, str] = {}
        self._mids: dict[str, Decimal] = {}
        self._mids_at = float("-inf")
        from newstrader.venues.hyperliquid.stream import HyperliquidStream  # it reads this module's parsers

        self.stream = HyperliquidStream(self)  # declared capability (venues/base.py `Streaming`)

    def __repr__(self) -> str:
        return f"HyperliquidVenue({self.name}, account={self.account}, signer={self.signer.address})"

    async def close(self) -> None:
        await self.stream.stop()
        await self.http.close()

    # --- reads ---------------------------------------------------------------------------------

    async def markets(self) -> dict[str, Market]:
        """Coin → rules from `meta`; the asset id is the coin's index in the universe.

        `meta` weighs 20 and the listings change rarely: callers within `MARKETS_FRESH_S` of a
        read (the bot's start-up asks three times: listing check, engine, TP/SL) share it."""
        if self._markets and time.monotonic() - self._markets_at < MARKETS_FRESH_S:
            return dict(self._markets)
        meta = await self.http.info({"type": "meta"})
        markets: dict[str, Market] = {}
        for index, entry in enumerate(meta.get("universe", [])):
            if entry.get("isDelisted"):
                continue
            sz_decimals = int(entry["szDecimals"])
            markets[entry["name"]] = Market(
                coin=entry["name"],
                symbol=entry["name"],
                size_step=Decimal(1).scaleb(-sz_decimals),
                price_tick=Decimal(1).scaleb(-(6 - sz_decimals)),
                min_notional=Decimal(10),
                max_leverage=int(entry.get("maxLeverage", 1)),
                max_price_sig_figs=5,
                asset_id=index,
                min_size=Decimal(1).scaleb(-sz_decimals),
            )
        self._markets, self._markets_at = markets, time.monotonic()
        return dict(markets)

    async def _market(self, coin: str) -> Market:
        market = self._markets.get(coin)
        if market is None:
            market = (await self.markets()).get(coin)
            if market is None:
                raise Rejected(f"{coin} is not listed on {self.name}", venue=self.name)
        return market

    async def positions(self) -> dict[str, Position]:
        """A fresh clearinghouseState of the account; a coin missing from assetPositions is flat."""
        state = await self.http.info({"type": "clearinghouseState", "user": self.account})
        return positions_from_state(self.name, state)

    def client_id_of(self, cloid: str) -> str:
        """Our client id for a cloid we sent (the cloid itself for orders placed elsewhere)."""
        return self._cloid_to_client.get(cloid, cloid)

    def sent_by_us(self, cloid: str | None) -> bool:
        """Did this process send the order with this cloid (so it knows whether it is a trigger)?"""
        return cloid is not None and cloid in self._cloid_to_client

    async def equity(self) -> Decimal:
        """The account's value in USD: the base of `equity_fraction`.

        A standard account's collateral is in perps (marginSummary.accountValue). A unified or
        portfolio-margin account (`userAbstraction`) keeps it in spot, where accountValue reads
        about 0 (NautilusTrader #4206): its equity is the spot USDC plus the perps' unrealized PnL.
        """
        mode, state = await asyncio.gather(
            self.http.info({"type": "userAbstraction", "user": self.account}),
            self.http.info({"type": "clearinghouseState", "user": self.account}),
        )
        if mode not in SPOT_COLLATERAL_MODES:
            summary = state.get("marginSummary") or {}
            return _dec(summary.get("accountValue", 0))
        spot = await self.http.info({"type": "spotClearinghouseState", "user": self.account})
        usdc = sum(
            (_dec(b.get("total", 0)) for b in spot.get("balances", []) if b.get("coin") == "USDC"), Decimal(0)
        )
        upnl = sum(
            (
                _dec(entry.get("position", entry).get("unrealizedPnl") or 0)
                for entry in state.get("assetPositions", [])
            ),
            Decimal(0),
        )
        return usdc + upnl

    async def mark_price(self, coin: str) -> Decimal:
        """The mid from `allMids` (weight 2), as the SDK's market orders use."""
        mids = await self.http.info({"type": "allMids"})
        self._mids = {name: _dec(px) for name, px in mids.items()}
        self._mids_at = time.monotonic()
        if coin not in self._mids:
            raise Rejected(f"no price for {coin} on {self.name}", venue=self.name)
        return self._mids[coin]

    async def _reference_price(self, req: OrderRequest) -> Decimal:
        """The price a market order's slippage cap is measured from: given, a fresh mid, or read now."""
        if req.limit_price is not None:
            return req.limit_price
        if time.monotonic() - self._mids_at <= REFERENCE_MAX_AGE_S and req.coin in self._mids:
            return self._mids[req.coin]
        return await self.mark_price(req.coin)

    async def order_status(self, client_id: str, coin: str | None = None) -> OrderResult | None:
        """orderStatus by our cloid (unique per account: the coin is not needed); None when unseen."""
        cloid = cloid_for(client_id)
        reply = await self.http.info({"type": "orderStatus", "user": self.account, "oid": cloid})
        if reply.get("status") != "order":
            return None
        body = reply["order"]
        order, status = body.get("order", {}), str(body.get("status", ""))
        orig = _dec(order.get("origSz", order.get("sz", 0)))
        remaining = _dec(order.get("sz", 0))
        oid = order.get("oid")
        rejected = status.endswith("Rejected") or status == "rejected"
        filled, avg = Decimal(0), None
        if not rejected and oid is not None and (remaining < orig or status not in _OPEN_STATUSES):
            # An IOC's unfilled rest is cancelled and `sz` drops to 0, so the fills, not the
            # order record, say how much executed.
            filled, avg = await self._filled_by_oid(int(oid), int(order.get("timestamp") or 0))
            if filled == 0 and status == "filled":
                filled = orig - remaining if remaining < orig else orig
        if rejected:
            mapped = OrderStatus.REJECTED
        elif filled >= orig > 0:
            mapped = OrderStatus.FILLED
        elif filled > 0:
            mapped = OrderStatus.PARTIALLY_FILLED
        elif status in _OPEN_STATUSES:
            mapped = OrderStatus.RESTING
        else:
            mapped = OrderStatus.CANCELED
        return OrderResult(
            client_id=client_id,
            status=mapped,
            venue_order_id=str(oid) if oid is not None else None,
            filled_size=filled,
            avg_price=avg,
            error=status if rejected else None,
        )

    async def _filled_by_oid(self, oid: int, placed_ms: int) -> tuple[Decimal, Decimal | None]:
        """(size, average price) of the account's fills of one order placed at `placed_ms`.

        Read from the order's own time on (`userFillsByTime`): a fills read weighs +1 per 20
        fills returned, and `userFills` would return up to the account's last 2000."""
        query = {"type": "userFillsByTime", "user": self.account, "startTime": placed_ms}
        rows = await self.http.info({**query, "aggregateByTime": False})
        fills = [f for f in rows if f.get("oid") == oid]
        size = sum((_dec(f["sz"]) for f in fills), Decimal(0))
        if not size:
            return Decimal(0), None
        return size, sum((_dec(f["px"]) * _dec(f["sz"]) for f in fills), Decimal(0)) / size

    async def open_orders(self, coin: str | None = None) -> list[OpenOrder]:
        """frontendOpenOrders (it names trigger kinds), children of brackets included."""
        rows = await self.http.info({"type": "frontendOpenOrders", "user": self.account})
        orders: list[OpenOrder] = []
        stack = list(rows)
        while stack:
            row = stack.pop(0)
            stack.extend(row.get("children") or [])
            if coin is not None and row.get("coin") != coin:
                continue
            orders.append(self._open_order(row))
        return orders

    def _open_order(self, row: dict[str, Any]) -> OpenOrder:
        order_type = str(row.get("orderType", ""))
        is_trigger = bool(row.get("isTrigger")) or order_type.startswith(("Stop", "Take Profit"))
        kind = None
        if is_trigger:
            kind = TriggerKind.TAKE_PROFIT if order_type.startswith("Take Profit") else TriggerKind.STOP_LOSS
        cloid = row.get("cloid")
        trigger_px = row.get("triggerPx")
        return OpenOrder(
            coin=row["coin"],
            venue_order_id=str(row["oid"]),
            is_buy=row.get("side") == "B",
            size=_dec(row.get("sz", 0)),
            price=_dec(row.get("limitPx", 0)),
            client_id=self._cloid_to_client.get(cloid, cloid) if cloid else None,
            reduce_only=bool(row.get("reduceOnly")),
            trigger_price=_dec(trigger_px) if is_trigger and trigger_px is not None else None,
            trigger_kind=kind,
        )

    async def fills(self, since: datetime) -> list[Fill]:
        """userFillsByTime from `since` (paged: at most 2000 per reply), each with fee and closedPnl."""
        start_ms = int(since.timestamp() * 1000)
        by_id: dict[str, Fill] = {}
        cursor = start_ms
        for _page in range(FILL_PAGES):
            rows = await self.http.info(
                {
                    "type": "userFillsByTime",
                    "user": self.account,
                    "startTime": cursor,
                    "aggregateByTime": False,
                }
            )
            for row in rows:
                if int(row["time"]) >= start_ms:
                    fill = self._fill(row)
                    by_id[fill.fill_id] = fill
            if len(rows) < FILL_PAGE_SIZE:
                break
            cursor = max(int(row["time"]) for row in rows)  # same-ms fills repeat; deduped by id
        return sorted(by_id.values(), key=lambda f: (f.time, f.fill_id))

    def _fill(self, row: dict[str, Any]) -> Fill:
        cloid = row.get("cloid")
        return Fill(
            venue=self.name,
            coin=row["coin"],
            is_buy=row.get("side") == "B",
            size=_dec(row["sz"]),
            price=_dec(row["px"]),
            fee=_dec(row.get("fee", 0)),
            realized_pnl=_dec(row.get("closedPnl", 0)),
            time=_ms_to_dt(int(row["time"])),
            fill_id=str(row.get("tid") or row.get("hash")),
            venue_order_id=str(row["oid"]) if row.get("oid") is not None else None,
            client_id=self._cloid_to_client.get(cloid, cloid) if cloid else None,
        )

    # --- actions -------------------------------------------------------------------------------

    def _expires_after(self, not_after: datetime | None) -> int:
        """`expiresAfter` in ms: the send plus the validity window, or the order's own earlier
        `not_after` (its intent time plus the window: a send held up past it must not land)."""
        window_end = int(time.time() * 1000 + self.order_validity_s * 1000)
        if not_after is None:
            return window_end
        return min(window_end, int(not_after.timestamp() * 1000))

    async def _send(
        self,
        action: dict[str, Any],
        batch_length: int,
        *,
        expires: bool = False,
        not_after: datetime | None = None,
    ) -> Any:
        return await self._send_signed(self._sign(action, expires=expires, not_after=not_after), batch_length)

    def _sign(
        self, action: dict[str, Any], *, expires: bool = False, not_after: datetime | None = None
    ) -> bytes:
        """The action's /exchange envelope, signed and encoded."""
        nonce = self._nonces.next()
        # An order that reaches the venue after `expiresAfter` is refused: a lost request can't
        # execute late, after the engine has already sent what was missing.
        expires_after = self._expires_after(not_after) if expires else None
        signature = self.signer.sign_l1_action(
            action,
            nonce,
            is_mainnet=self.config.is_mainnet,
            vault_address=self.config.vault_address,
            expires_after=expires_after,
        )
        envelope = {
            "action": action,
            "nonce": nonce,
            "signature": signature,
            "vaultAddress": self.config.vault_address,
            "expiresAfter": expires_after,
        }
        return encode_envelope(envelope)

    async def _send_signed(
        self,
        content: bytes,
        batch_length: int,
        *,
        reserved: bool = False,
        on_written: OnWritten | None = None,
    ) -> Any:
        try:
            return await self.http.exchange_encoded(
                content, batch_length, reserved=reserved, on_written=on_written
            )
        except AuthError as exc:
            raise self._explain_unknown_signer(exc) from exc

    def _explain_unknown_signer(self, exc: AuthError) -> AuthError:
        """The venue recovers the signer from the signature: another address means another network.

        A signature over the other network's phantom-agent source ("a" mainnet, "b" testnet)
        recovers to a stranger, which the venue reports as an unknown "User or API Wallet".
        """
        match = _UNKNOWN_SIGNER.search(str(exc))
        if match is None or match.group(1).lower() == self.signer.address.lower():
            return exc
        ours = "mainnet (source 'a')" if self.config.is_mainnet else "testnet (source 'b')"
        return AuthError(
            f"{exc} — the venue recovered {match.group(1)}, not our signer {self.signer.address}: this "
            f"adapter signs for {ours} and {self.http.base_url} is on the other network; check `network`",
            venue=self.name,
            code=exc.code,
        )

    async def place_order(self, req: OrderRequest) -> OrderResult:
        """One order; a market order is an IOC limit at reference × (1 ± max_slippage), rounded toward it.

        The reference is `req.limit_price` when given, else the mid (reused if under 2 s old).
        """
        return await self.send_order(await self.prepare_order(req))

    async def prepare_order(self, req: OrderRequest) -> PreparedOrder:
        """The order's wire form and signed envelope (see `place_order`); nothing is sent."""
        market = await self._market(req.coin)
        size = market.round_size(req.size)
        if size <= 0:
            raise Rejected(f"size {req.size} rounds to zero (step {market.size_step})", venue=self.name)
        if req.order_type is OrderType.MARKET:
            reference = await self._reference_price(req)
            factor = 1 + req.max_slippage if req.is_buy else 1 - req.max_slippage
            # Rounding toward the mid keeps the cap a cap (never more slippage than asked).
            price = market.round_price(reference * factor, up=not req.is_buy)
            if not req.is_buy and not req.reduce_only:
                # The venue does not say which price its $10 minimum is measured at: keep the cap's too.
                price = market.sell_price_floor(size, price)
            tif = "Ioc"
        else:
            if req.limit_price is None:
                raise Rejected("a limit order needs limit_price", venue=self.name)
            price = market.round_price(req.limit_price, up=not req.is_buy)
            tif = _TIF[req.tif]
        cloid = cloid_for(req.client_id)
        wire = limit_order_wire(
            int(market.asset_id or 0), req.is_buy, price, size, req.reduce_only, tif, cloid
        )
        content = self._sign(order_action([wire]), expires=True, not_after=req.not_after)
        await self.http.reserve_exchange(1)  # any wait for the rate budget happens here, not in the send
        return PreparedOrder(req, size, _SignedOrder(cloid, price, content))

    async def send_order(
        self, prepared: PreparedOrder, *, on_written: OnWritten | None = None
    ) -> OrderResult:
        """Send a prepared order once (see `place_order`)."""
        signed = prepared.payload
        if not isinstance(signed, _SignedOrder):
            raise TypeError(f"not a {self.name} order: {signed!r}")
        req = prepared.request
        self._cloid_to_client[signed.cloid] = req.client_id
        started = time.perf_counter()
        reply = await self._send_signed(signed.content, 1, reserved=True, on_written=on_written)
        result = self._order_result(reply, req.client_id, prepared.size)
        log.info(
            "order_placed",
            venue=self.name,
            coin=req.coin,
            client_id=req.client_id,
            status=result.status.value,
            size=str(prepared.size),
            price=format(signed.price, "f"),
            filled=str(result.filled_size),
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return result

    def _statuses(self, reply: Any, expected: int) -> list[Any]:
        try:
            statuses = reply["response"]["data"]["statuses"]
        except (KeyError, TypeError) as exc:
            raise Ambiguous(f"unexpected reply: {str(reply)[:200]}", venue=self.name) from exc
        if len(statuses) != expected:
            raise Ambiguous(f"{len(statuses)} statuses for {expected} orders", venue=self.name)
        return list(statuses)

    def _order_result(self, reply: Any, client_id: str, size: Decimal) -> OrderResult:
        return self._one_result(self._statuses(reply, 1)[0], client_id, size)

    def _one_result(self, status: Any, client_id: str, size: Decimal) -> OrderResult:
        if isinstance(status, str):  # "waitingForTrigger" / "waitingForFill"
            return OrderResult(client_id=client_id, status=OrderStatus.RESTING)
        if "error" in status:
            error = classify_hyperliquid_text(str(status["error"]), venue=self.name, is_order=True)
            raise error
        if "filled" in status:
            filled = status["filled"]
            total = _dec(filled["totalSz"])
            return OrderResult(
                client_id=client_id,
                status=OrderStatus.FILLED if total >= size else OrderStatus.PARTIALLY_FILLED,
                venue_order_id=str(filled.get("oid")),
                filled_size=total,
                avg_price=_dec(filled["avgPx"]),
            )
        if "resting" in status:
            return OrderResult(
                client_id=client_id,
                status=OrderStatus.RESTING,
                venue_order_id=str(status["resting"].get("oid")),
            )
        raise Ambiguous(f"unknown order status {status!r}", venue=self.name)

    async def place_triggers(
        self,
        coin: str,
        position_size: Decimal,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        client_ids: tuple[str, str],
        not_after: datetime | None = None,
    ) -> list[OrderResult]:
        """Reduce-only market TP/SL for the whole position (grouping positionTpsl)."""
        if position_size == 0 or (take_profit is None and stop_loss is None):
            return []
        market = await self._market(coin)
        size = market.round_size(position_size)
        is_buy = position_size < 0  # closing a short buys
        wires: list[dict[str, Any]] = []
        ids: list[str] = []
        for trigger, tpsl, client_id in (
            (take_profit, "tp", client_ids[0]),
            (stop_loss, "sl", client_ids[1]),
        ):
            if trigger is None:
                continue
            trigger_px = market.round_price(trigger)
            worst = trigger_px * (1 + TRIGGER_SLIPPAGE if is_buy else 1 - TRIGGER_SLIPPAGE)
            limit_px = market.round_price(worst, up=is_buy)
            cloid = cloid_for(client_id)
            self._cloid_to_client[cloid] = client_id
            wires.append(
                trigger_order_wire(
                    int(market.asset_id or 0), is_buy, limit_px, size, True, trigger_px, True, tpsl, cloid
                )
            )
            ids.append(client_id)
            # orderUpdates will not say this is a trigger: the account state learns it from us.
            self.stream.state.sending_trigger(
                OpenOrder(
                    coin=coin,
                    venue_order_id="",
                    is_buy=is_buy,
                    size=size,
                    price=limit_px,
                    client_id=client_id,
                    reduce_only=True,
                    trigger_price=trigger_px,
                    trigger_kind=TriggerKind.TAKE_PROFIT if tpsl == "tp" else TriggerKind.STOP_LOSS,
                )
            )
        try:
            reply = await self._send(
                order_action(wires, "positionTpsl"), len(wires), expires=True, not_after=not_after
            )
            results = [
                self._one_result(status, client_id, size)
                for status, client_id in zip(self._statuses(reply, len(wires)), ids, strict=True)
            ]
        except Ambiguous:
            raise  # they may rest: the stream reports them, or the state resyncs without them
        except Exception:
            for client_id in ids:
                self.stream.state.trigger_acked(client_id, None, resting=False)
            raise
        for client_id, result in zip(ids, results, strict=True):
            self.stream.state.trigger_acked(
                client_id, result.venue_order_id, resting=result.status is OrderStatus.RESTING
            )
        log.info("triggers_placed", venue=self.name, coin=coin, tp=str(take_profit), sl=str(stop_loss))
        return results

    async def cancel_triggers(self, coin: str) -> int:
        """Cancel every trigger order on `coin`; returns how many the venue confirmed."""
        market = await self._market(coin)
        triggers = await read_triggers(self, coin)  # the stream's, or a read when it cannot vouch
        if not triggers:
            return 0
        pairs = [(int(market.asset_id or 0), int(o.venue_order_id)) for o in triggers]
        reply = await self._send(cancel_action(pairs), len(pairs), expires=True)
        try:
            statuses = reply["response"]["data"]["statuses"]
        except (KeyError, TypeError) as exc:
            raise Ambiguous(f"unexpected cancel reply: {str(reply)[:200]}", venue=self.name) from exc
        cancelled = sum(1 for s in statuses if s == "success")
        for order, status in zip(triggers, statuses, strict=False):
            error = str(status.get("error", "")) if isinstance(status, dict) else ""
            if status == "success" or error.startswith(GONE_ALREADY):
                self.stream.state.trigger_cancelled(order.venue_order_id, order.client_id)
        log.info("triggers_cancelled", venue=self.name, coin=coin, count=cancelled)
        return cancelled

    async def cancel_by_client_id(self, coin: str, client_id: str) -> bool:
        """cancelByCloid: works without the order id, so also after a lost order reply."""
        market = await self._market(coin)
        cancel = {"asset": int(market.asset_id or 0), "cloid": cloid_for(client_id)}
        reply = await self._send({"type": "cancelByCloid", "cancels": [cancel]}, 1)
        (status,) = self._statuses(reply, 1)
        if status == "success":
            return True
        text = str(status.get("error", status)) if isinstance(status, dict) else str(status)
        if text.startswith(GONE_ALREADY):
            return False
        raise classify_hyperliquid_text(text, venue=self.name, is_order=True)

    async def set_leverage(self, coin: str, leverage: int, cross: bool = True) -> None:
        """updateLeverage for `coin`."""
        market = await self._market(coin)
        if leverage < 1 or leverage > market.max_leverage:
            raise Rejected(
                f"leverage {leverage} outside 1..{market.max_leverage} for {coin}", venue=self.name
            )
        reply = await self._send(update_leverage_action(int(market.asset_id or 0), leverage, cross), 1)
        if not isinstance(reply, dict) or reply.get("status") != "ok":
            raise Ambiguous(f"unexpected leverage reply: {str(reply)[:200]}", venue=self.name)

    async def schedule_cancel(self, at: datetime | None) -> None:
        """Dead-man switch: cancel every open order at `at` (≥ 5 s ahead); None removes the schedule."""
        action: dict[str, Any] = {"type": "scheduleCancel"}
        if at is not None:
            action["time"] = int(at.timestamp() * 1000)
        reply = await self._send(action, 1)
        if isinstance(reply, dict) and reply.get("status") == "err":
            raise Rejected(f"scheduleCancel refused: {reply.get('response')}", venue=self.name)
        if not isinstance(reply, dict) or reply.get("status") != "ok":
            raise Ambiguous(f"unexpected scheduleCancel reply: {str(reply)[:200]}", venue=self.name)
