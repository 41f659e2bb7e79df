"""The Hyperliquid HTTP API (`POST /info`, `POST /exchange`) over `market.Exchange`.

Shapes and error strings follow `docs/venue-hyperliquid.md`; the official SDK works unmodified.
Behaviour worth knowing:

- Signatures are recovered (see `hyperliquid_auth`); the recovered address must be an account or
  an agent approved for one (`approveAgent`, or `/admin/accounts` `signers`). Otherwise:
  `L1 error: User or API Wallet 0x… does not exist.` Phantom-agent source "b" (testnet) by default.
  A new `approveAgent` under a name an account already uses (or unnamed again) replaces that agent.
- The order action is re-serialized from its parsed form before hashing, as the venue does, so a
  client that signs `"1670.10"` recovers a stranger's address.
- Nonces per signer: the highest 100 are kept; duplicates and too-low nonces are refused; a nonce
  must lie within (T - 2 days, T + 1 day) of the server clock T.
- An action past its `expiresAfter` (checked when it arrives, once its signer is known) is refused
  unexecuted with `{"status":"err","response":"Action already expired"}` (the text the GitBook FAQ
  names) and costs 5x its address budget, as the docs' "Expires After" section says.
- A price (a trigger's trigger price) over 80 % from the mark refuses the whole order action with
  one top-level error, as the docs' "Error responses" list it under pre-validation.
- Rate limits: 1200 weight per minute per IP (429 with a `null` body) and the per-address action
  budget (10 000 + 1 per USD traded), both off when the simulator runs with rate limits disabled.
- `normalTpsl` children of an entry that rests wait (`"waitingForFill"`) and are placed when the
  entry fills; that check runs at the start of every Hyperliquid request. `scheduleCancel` fires
  the same way.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

from eth_hash.auto import keccak
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from newstrader.sim.app import Sim
from newstrader.sim.hyperliquid_auth import (
    USER_SIGNED_TYPES,
    NonceBook,
    SignatureError,
    recover_l1_signer,
    recover_user_signed,
)
from newstrader.sim.limits import Counter
from newstrader.sim.market import (
    FILLED,
    OPEN,
    REJECTED,
    Exchange,
    InvalidRequest,
    OrderRecord,
    TriggerSpec,
    UnknownMarket,
)

VENUE = "hyperliquid"
CANCEL_LIMIT = 200
SCHEDULE_CANCEL_MIN_AHEAD_MS = 5000
EXPIRED_ACTION_COST = 5  # a stale `expiresAfter` costs this many times the action's address budget
L1_ACTIONS = frozenset(
    {"order", "cancel", "cancelByCloid", "updateLeverage", "scheduleCancel", "noop", "batchModify"}
)
# `userAbstraction` modes (hyperliquid docs / ccxt): in these the collateral is the spot USDC.
ABSTRACTION_MODES = ("default", "disabled", "dexAbstraction", "unifiedAccount", "portfolioMargin")
SPOT_COLLATERAL_MODES = frozenset({"unifiedAccount", "portfolioMargin"})
INFO_WEIGHT_2 = frozenset(
    {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState", "exchangeStatus"}
)
REJECT_TEXT = {
    "tickRejected": "Price must be divisible by tick size.",
    "minTradeNtlRejected": "Order must have minimum value of $10.",
    "perpMarginRejected": "Insufficient margin to place order.",
    "reduceOnlyRejected": "Reduce only order would increase position.",
    "iocCancelRejected": "Order could not immediately match against any resting orders.",
    "badTriggerPxRejected": "Invalid TP/SL price.",
    "marketOrderNoLiquidityRejected": "No liquidity available for market order.",
    "sizeRejected": "Order has invalid size.",
    "duplicateClientId": "Order has duplicate cloid.",
    "maxOpenOrdersRejected": "Too many open orders.",
}
MISSING_ORDER = "Order was never placed, already canceled, or filled."
# The venue's text for an action past its `expiresAfter` (GitBook FAQ "What does 'Action already
# expired' mean?"); the docs show no suffix, so none is invented here.
EXPIRED_ACTION = "Action already expired"
DESERIALIZE = "Failed to deserialize the JSON body into the target type"
FAR_FROM_REFERENCE = "Order price cannot be more than 80% away from the reference price"


class BadRequest(ValueError):
    """Input the venue cannot deserialize: answered with HTTP 422 plain text."""


def num(value: Decimal) -> str:
    """A decimal as Hyperliquid prints it: a plain string, never an exponent."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _wire_decimal(value: Any, what: str) -> Decimal:
    if not isinstance(value, str):
        raise BadRequest(f"{DESERIALIZE}: {what} must be a string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise BadRequest(f"{DESERIALIZE}: {what} is not a number") from None
    if not number.is_finite() or number < 0:
        raise BadRequest(f"{DESERIALIZE}: {what} is not a valid number")
    return number


def _is_cloid(value: Any) -> TypeGuard[str]:
    if not isinstance(value, str) or len(value) != 34 or not value.startswith("0x"):
        return False
    try:
        int(value[2:], 16)
    except ValueError:
        return False
    return True


def _canonical_order_wire(w: Any) -> dict[str, Any]:
    """The order wire as the venue re-serializes it (key order fixed, numbers normalized)."""
    if not isinstance(w, dict):
        raise BadRequest(DESERIALIZE)
    try:
        a, b, p, s, r, t = w["a"], w["b"], w["p"], w["s"], w["r"], w["t"]
    except KeyError as exc:
        raise BadRequest(f"{DESERIALIZE}: missing field {exc.args[0]}") from None
    if not isinstance(a, int) or isinstance(a, bool) or not isinstance(b, bool) or not isinstance(r, bool):
        raise BadRequest(DESERIALIZE)
    out: dict[str, Any] = {
        "a": a,
        "b": b,
        "p": num(_wire_decimal(p, "p")),
        "s": num(_wire_decimal(s, "s")),
        "r": r,
    }
    if isinstance(t, dict) and set(t) == {"limit"} and isinstance(t["limit"], dict):
        tif = t["limit"].get("tif")
        if tif not in ("Gtc", "Ioc", "Alo"):
            raise BadRequest(f"{DESERIALIZE}: unknown tif")
        out["t"] = {"limit": {"tif": tif}}
    elif isinstance(t, dict) and set(t) == {"trigger"} and isinstance(t["trigger"], dict):
        trig = t["trigger"]
        if not isinstance(trig.get("isMarket"), bool) or trig.get("tpsl") not in ("tp", "sl"):
            raise BadRequest(f"{DESERIALIZE}: bad trigger")
        out["t"] = {
            "trigger": {
                "isMarket": trig["isMarket"],
                "triggerPx": num(_wire_decimal(trig.get("triggerPx"), "triggerPx")),
                "tpsl": trig["tpsl"],
            }
        }
    else:
        raise BadRequest(f"{DESERIALIZE}: bad order type")
    if "c" in w and w["c"] is not None:
        if not _is_cloid(w["c"]):
            raise BadRequest(f"{DESERIALIZE}: cloid must be 0x + 32 hex digits")
        out["c"] = w["c"]
    return out


def canonical_action(action: dict[str, Any]) -> dict[str, Any]:
    """What the venue hashes: order-bearing actions are rebuilt from their parsed form."""
    kind = action.get("type")
    if kind == "order":
        orders = action.get("orders")
        if not isinstance(orders, list):
            raise BadRequest(DESERIALIZE)
        out: dict[str, Any] = {
            "type": "order",
            "orders": [_canonical_order_wire(w) for w in orders],
            "grouping": action.get("grouping", "na"),
        }
        if action.get("builder") is not None:
            builder = action["builder"]
            if not isinstance(builder, dict) or "b" not in builder or "f" not in builder:
                raise BadRequest(DESERIALIZE)
            out["builder"] = {"b": str(builder["b"]).lower(), "f": builder["f"]}
        return out
    if kind == "batchModify":
        modifies = action.get("modifies")
        if not isinstance(modifies, list):
            raise BadRequest(DESERIALIZE)
        return {
            "type": "batchModify",
            "modifies": [
                {"oid": m.get("oid"), "order": _canonical_order_wire(m.get("order"))}
                if isinstance(m, dict)
                else m
                for m in modifies
            ],
        }
    return action


class HyperliquidState:
    """What the Hyperliquid front end keeps besides the exchange: nonces, budgets, waiting children."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.nonces = NonceBook(sim.config.hl_nonces_kept)
        self.ip_limiter = sim.new_limiter(sim.config.hl_ip_weight_per_min, 60_000)
        self.address_requests = Counter()
        self.waiting_children: dict[
            int, list[tuple[str, dict[str, Any]]]
        ] = {}  # parent oid → (account, wire)
        self.scheduled_cancel: dict[str, int] = {}  # account → ms
        self.agent_names: dict[tuple[str, str], str] = {}

    @property
    def ex(self) -> Exchange:
        return self.sim.exchanges[VENUE]

    def clear(self) -> None:
        self.nonces.clear()
        self.address_requests.reset()
        self.waiting_children.clear()
        self.scheduled_cancel.clear()
        self.agent_names.clear()

    def housekeeping(self) -> None:
        """Place children whose entry filled, drop those whose entry died, run due scheduled cancels."""
        ex = self.ex
        for parent_oid in list(self.waiting_children):
            parent = ex.orders.get(parent_oid)
            if parent is None:
                del self.waiting_children[parent_oid]
                continue
            if parent.filled_size > 0 and parent.status != OPEN:
                for account, wire in self.waiting_children.pop(parent_oid):
                    self.place_wire(account, wire, "normalTpsl", cap=parent.filled_size)
            elif parent.status not in (OPEN, FILLED):
                del self.waiting_children[parent_oid]
        now = self.sim.now_ms()
        for account, due in list(self.scheduled_cancel.items()):
            if due <= now:
                ex.cancel_all(account, status="scheduledCancel")
                del self.scheduled_cancel[account]

    def far_from_reference(self, wire: dict[str, Any]) -> str | None:
        """The refusal of a price (trigger price for a trigger) over 80 % from the mark, else None.

        The venue checks this in pre-validation (docs "Error responses"): one error for the whole
        action, so `_order` runs it over every wire before placing any."""
        try:
            mark = self.ex.mark(self.ex.coin_for_asset(wire["a"]))
        except UnknownMarket:
            return None  # placing it answers "Invalid asset"
        trig = wire["t"].get("trigger")
        ref = Decimal(trig["triggerPx"]) if trig is not None else Decimal(wire["p"])
        if ref <= 0 or abs(ref - mark) > mark * Decimal("0.8"):
            return FAR_FROM_REFERENCE
        return None

    def place_wire(
        self, account: str, wire: dict[str, Any], grouping: str, cap: Decimal | None = None
    ) -> OrderRecord | str:
        """Place one order wire; returns the record or the per-order error text."""
        ex = self.ex
        try:
            coin = ex.coin_for_asset(wire["a"])
        except UnknownMarket:
            return f"Invalid asset {wire['a']}."
        asset = wire["a"]
        price = Decimal(wire["p"])
        size = Decimal(wire["s"])
        trigger = None
        tif = "gtc"
        if "trigger" in wire["t"]:
            trig = wire["t"]["trigger"]
            trigger = TriggerSpec(trig["tpsl"], Decimal(trig["triggerPx"]), trig["isMarket"])
        else:
            tif = wire["t"]["limit"]["tif"].lower()
        far = self.far_from_reference(wire)
        if far is not None:
            return f"{far} asset={asset}"
        if cap is not None:
            size = min(size, cap)
        close_position = trigger is not None and grouping == "positionTpsl" and size == 0
        order = ex.place_order(
            account,
            coin,
            wire["b"],
            size,
            price,
            tif,  # type: ignore[arg-type]
            wire["r"],
            wire.get("c"),
            trigger,
            close_position,
        )
        if order.status == REJECTED:
            reason = order.reject_reason or "rejected"
            if reason == "badAloPxRejected":
                bid, ask = order.tags.get("bbo", ex.best_bid_ask(coin))
                bbo = f"{num(bid)}@{num(ask)}"
                return f"Post only order would have immediately matched, bbo was {bbo}. asset={asset}"
            return f"{REJECT_TEXT.get(reason, 'Order rejected: ' + reason)} asset={asset}"
        if order.status == "reduceOnlyCanceled":
            return f"{REJECT_TEXT['reduceOnlyRejected']} asset={asset}"
        return order


def order_status_json(order: OrderRecord) -> dict[str, Any]:
    """One per-order status of an order action reply."""
    if order.filled_size > 0 and order.status != OPEN:
        out: dict[str, Any] = {"totalSz": num(order.filled_size), "avgPx": num(order.avg_px or Decimal(0))}
        out["oid"] = order.oid
        if order.client_id:
            out["cloid"] = order.client_id
        return {"filled": out}
    resting: dict[str, Any] = {"oid": order.oid}
    if order.client_id:
        resting["cloid"] = order.client_id
    return {"resting": resting}


def _order_type_name(order: OrderRecord) -> str:
    if order.trigger is None:
        return "Limit"
    base = "Take Profit" if order.trigger.kind == "tp" else "Stop"
    return f"{base} {'Market' if order.trigger.is_market else 'Limit'}"


def _trigger_condition(order: OrderRecord) -> str:
    if order.trigger is None:
        return "N/A"
    above = (order.trigger.kind == "tp") != order.is_buy
    return f"Price {'above' if above else 'below'} {num(order.trigger.trigger_px)}"


def basic_order_json(order: OrderRecord) -> dict[str, Any]:
    """The `openOrders` shape."""
    out: dict[str, Any] = {
        "coin": order.coin,
        "side": "B" if order.is_buy else "A",
        "limitPx": num(order.limit_px or Decimal(0)),
        "sz": num(order.remaining),
        "oid": order.oid,
        "timestamp": order.created_ms,
        "origSz": num(order.size),
    }
    if order.client_id:
        out["cloid"] = order.client_id
    return out


def frontend_order_json(order: OrderRecord) -> dict[str, Any]:
    """The `frontendOpenOrders` / `orderStatus` shape."""
    out = basic_order_json(order)
    out.update(
        {
            "orderType": _order_type_name(order),
            "tif": None if order.trigger is not None and not order.triggered else order.tif.capitalize(),
            "triggerPx": num(order.trigger.trigger_px) if order.trigger else "0.0",
            "triggerCondition": _trigger_condition(order),
            "isTrigger": order.trigger is not None,
            "isPositionTpsl": order.close_position,
            "reduceOnly": order.reduce_only,
            "children": [],
            "cloid": order.client_id,
        }
    )
    return out


def _status_name(order: OrderRecord) -> str:
    if order.status == REJECTED:
        reason = order.reject_reason or "rejected"
        return reason if reason.endswith("Rejected") else "rejected"
    if order.status == OPEN and order.triggered:
        return "triggered"
    return order.status


def _err(text: str) -> JSONResponse:
    return JSONResponse({"status": "err", "response": text})


def _ok_default() -> JSONResponse:
    return JSONResponse({"status": "ok", "response": {"type": "default"}})


def _unprocessable(text: str) -> Response:
    return Response(text, status_code=422, media_type="text/plain")


def _too_many() -> Response:
    return Response(b"null", status_code=429, media_type="application/json", headers={"retry-after": "1"})


def classify(method: str, subpath: str, body: bytes) -> str:
    """Request label for stats and faults: `info:<type>` or `exchange:<action type>`."""
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        payload = {}
    if subpath == "/info":
        kind = payload.get("type") if isinstance(payload, dict) else None
        return f"info:{kind if isinstance(kind, str) else 'invalid'}"
    if subpath == "/exchange":
        action = payload.get("action") if isinstance(payload, dict) else None
        kind = action.get("type") if isinstance(action, dict) else None
        return f"exchange:{kind if isinstance(kind, str) else 'invalid'}"
    return f"{method} {subpath}"


def build_router(sim: Sim) -> APIRouter:
    """`/info` and `/exchange` for the Hyperliquid venue of `sim`."""
    state = HyperliquidState(sim)
    sim.on_reset(state.clear)
    sim.classifiers[VENUE] = classify
    router = APIRouter()

    def client_ip(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    @router.post("/info")
    async def info(request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return _unprocessable(DESERIALIZE)
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return _unprocessable(DESERIALIZE)
        kind = payload["type"]
        weight = 60 if kind == "userRole" else 2 if kind in INFO_WEIGHT_2 else 20
        ip = client_ip(request)
        if not state.ip_limiter.try_spend(ip, weight):
            return _too_many()
        sim.stats.charge(VENUE, f"info:{kind}", weight)
        state.housekeeping()
        try:
            result = _info(state, kind, payload)
        except BadRequest as exc:
            return _unprocessable(str(exc))
        if kind in ("userFills", "userFillsByTime", "historicalOrders") and isinstance(result, list):
            state.ip_limiter.try_spend(ip, len(result) // 20)
            sim.stats.charge(VENUE, f"info:{kind}", len(result) // 20)
        return JSONResponse(result)

    @router.post("/exchange")
    async def exchange(request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return _unprocessable(DESERIALIZE)
        try:
            return _exchange(state, payload, client_ip(request))
        except BadRequest as exc:
            return _unprocessable(str(exc))

    return router


# ----- /info ---------------------------------------------------------------------------------


def _user(payload: dict[str, Any]) -> str:
    user = payload.get("user")
    if not isinstance(user, str) or not user.startswith("0x") or len(user) != 42:
        raise BadRequest(f"{DESERIALIZE}: user must be a 42-character address")
    return user.lower()


def _meta(ex: Exchange) -> dict[str, Any]:
    universe = [
        {
            "szDecimals": spec.sz_decimals,
            "name": spec.coin,
            "maxLeverage": spec.max_leverage,
            "marginTableId": 0,
        }
        for spec in sorted(ex.markets.values(), key=lambda m: m.asset_id)
    ]
    return {"universe": universe, "marginTables": [], "collateralToken": 0}


def _asset_ctx(ex: Exchange, coin: str) -> dict[str, Any]:
    mark = ex.marks[coin]
    bid, ask = ex.best_bid_ask(coin)
    return {
        "funding": "0.0000125",
        "openInterest": "0",
        "prevDayPx": num(ex.markets[coin].initial_price),
        "dayNtlVlm": "0",
        "premium": "0",
        "oraclePx": num(mark),
        "markPx": num(mark),
        "midPx": num(mark),
        "impactPxs": [num(bid), num(ask)],
        "dayBaseVlm": "0",
    }


def _clearinghouse(ex: Exchange, user: str) -> dict[str, Any]:
    now = ex.now_ms()
    acct = ex.accounts.get(user)
    if acct is None:
        zero = {"accountValue": "0", "totalNtlPos": "0", "totalRawUsd": "0", "totalMarginUsed": "0"}
        return {
            "marginSummary": zero,
            "crossMarginSummary": dict(zero),
            "crossMaintenanceMarginUsed": "0",
            "withdrawable": "0",
            "assetPositions": [],
            "time": now,
        }
    positions = []
    total_ntl = Decimal(0)
    signed_ntl = Decimal(0)
    for coin, pos in acct.positions.items():
        if pos.size == 0:
            continue
        mark = ex.marks[coin]
        lev = ex.leverage_of(acct, coin)
        value = abs(pos.size) * mark
        total_ntl += value
        signed_ntl += pos.size * mark
        upnl = ex.unrealized_pnl(acct, coin)
        margin = value / lev
        entry_margin = abs(pos.size) * pos.entry_px / lev
        liq = ex.liquidation_price(acct, coin)
        leverage: dict[str, Any] = {"type": "cross" if ex.is_cross(acct, coin) else "isolated", "value": lev}
        if not ex.is_cross(acct, coin):
            leverage["rawUsd"] = num((margin - pos.size * mark).quantize(Decimal("0.000001")))
        positions.append(
            {
                "type": "oneWay",
                "position": {
                    "coin": coin,
                    "szi": num(pos.size),
                    "leverage": leverage,
                    "entryPx": num(pos.entry_px),
                    "positionValue": num(value.quantize(Decimal("0.000001"))),
                    "unrealizedPnl": num(upnl.quantize(Decimal("0.000001"))),
                    "returnOnEquity": num((upnl / entry_margin).quantize(Decimal("0.0000001")))
                    if entry_margin
                    else "0",
                    "liquidationPx": None if liq is None else num(liq),
                    "marginUsed": num(margin.quantize(Decimal("0.000001"))),
                    "maxLeverage": ex.markets[coin].max_leverage,
                    "cumFunding": {"allTime": "0", "sinceOpen": "0", "sinceChange": "0"},
                },
            }
        )
    value = ex.account_value(acct)
    if acct.abstraction in SPOT_COLLATERAL_MODES:  # the USDC is in spot: perps hold only the PnL
        value -= acct.balance
    summary = {
        "accountValue": num(value.quantize(Decimal("0.000001"))),
        "totalNtlPos": num(total_ntl.quantize(Decimal("0.000001"))),
        "totalRawUsd": num((value - signed_ntl).quantize(Decimal("0.000001"))),
        "totalMarginUsed": num(ex.margin_used(acct).quantize(Decimal("0.000001"))),
    }
    return {
        "marginSummary": summary,
        "crossMarginSummary": dict(summary),
        "crossMaintenanceMarginUsed": num(ex.maintenance_margin(acct).quantize(Decimal("0.000001"))),
        "withdrawable": num(ex.withdrawable(acct).quantize(Decimal("0.000001"))),
        "assetPositions": positions,
        "time": now,
    }


def _spot_clearinghouse(ex: Exchange, user: str) -> dict[str, Any]:
    """Spot balances: USDC only, and only for an account whose collateral lives in spot."""
    acct = ex.accounts.get(user)
    if acct is None or acct.abstraction not in SPOT_COLLATERAL_MODES:
        return {"balances": []}
    hold = ex.margin_used(acct).quantize(Decimal("0.00000001"))
    return {
        "balances": [
            {
                "coin": "USDC",
                "token": 0,
                "total": num(acct.balance.quantize(Decimal("0.00000001"))),
                "hold": num(hold),
                "entryNtl": "0.0",
            }
        ]
    }


def _fill_json(fill: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "coin": fill.coin,
        "px": num(fill.px),
        "sz": num(fill.size),
        "side": "B" if fill.is_buy else "A",
        "time": fill.time_ms,
        "startPosition": num(fill.start_position),
        "dir": fill.direction,
        "closedPnl": num(fill.closed_pnl),
        "hash": fill.hash,
        "oid": fill.oid or 0,
        "crossed": fill.crossed,
        "fee": num(fill.fee),
        "tid": fill.tid,
        "feeToken": "USDC",
    }
    if fill.client_id:
        out["cloid"] = fill.client_id
    if fill.liquidation:
        out["liquidation"] = {"liquidatedUser": fill.account, "markPx": num(fill.px), "method": "market"}
    return out


def _info(state: HyperliquidState, kind: str, payload: dict[str, Any]) -> Any:
    ex = state.ex
    if kind == "meta":
        return _meta(ex)
    if kind == "spotMeta":
        return {"universe": [], "tokens": []}
    if kind == "spotMetaAndAssetCtxs":
        return [{"universe": [], "tokens": []}, []]
    if kind == "perpDexs":
        return [None]
    if kind == "metaAndAssetCtxs":
        meta = _meta(ex)
        return [meta, [_asset_ctx(ex, u["name"]) for u in meta["universe"]]]
    if kind == "allMids":
        return {coin: num(ex.marks[coin]) for coin in ex.markets}
    if kind == "l2Book":
        coin = payload.get("coin")
        if not isinstance(coin, str) or coin not in ex.markets:
            return None
        bids, asks = ex.book(coin, 20)
        return {
            "coin": coin,
            "time": ex.now_ms(),
            "levels": [
                [{"px": num(px), "sz": num(sz), "n": 1} for px, sz in bids],
                [{"px": num(px), "sz": num(sz), "n": 1} for px, sz in asks],
            ],
        }
    if kind == "clearinghouseState":
        return _clearinghouse(ex, _user(payload))
    if kind == "spotClearinghouseState":
        return _spot_clearinghouse(ex, _user(payload))
    if kind == "userAbstraction":
        acct = ex.accounts.get(_user(payload))
        return acct.abstraction if acct is not None else "default"
    if kind == "openOrders":
        return [basic_order_json(o) for o in reversed(ex.open_orders(_user(payload)))]
    if kind == "frontendOpenOrders":
        return [frontend_order_json(o) for o in reversed(ex.open_orders(_user(payload)))]
    if kind == "orderStatus":
        user = _user(payload)
        oid = payload.get("oid")
        order = None
        if isinstance(oid, int) and not isinstance(oid, bool):
            order = ex.order_by_id(user, oid) if user in ex.accounts else None
        elif _is_cloid(oid):
            order = ex.order_by_client_id(user, oid) if user in ex.accounts else None
        else:
            raise BadRequest(f"{DESERIALIZE}: oid must be an integer or a cloid")
        if order is None:
            return {"status": "unknownOid"}
        return {
            "status": "order",
            "order": {
                "order": frontend_order_json(order),
                "status": _status_name(order),
                "statusTimestamp": order.status_ms,
            },
        }
    if kind == "historicalOrders":
        user = _user(payload)
        orders = [o for o in ex.orders.values() if o.account == user]
        return [
            {"order": frontend_order_json(o), "status": _status_name(o), "statusTimestamp": o.status_ms}
            for o in reversed(orders[-2000:])
        ]
    if kind == "userFills":
        user = _user(payload)
        return [_fill_json(f) for f in reversed(ex.fills(user)[-2000:])]
    if kind == "userFillsByTime":
        user = _user(payload)
        start = payload.get("startTime")
        end = payload.get("endTime")
        if not isinstance(start, int) or (end is not None and not isinstance(end, int)):
            raise BadRequest(f"{DESERIALIZE}: startTime/endTime must be integers")
        return [_fill_json(f) for f in ex.fills(user, start, end)[:2000]]
    if kind == "userRateLimit":
        user = _user(payload)
        acct = ex.accounts.get(user)
        volume = acct.volume if acct is not None else Decimal(0)
        return {
            "cumVlm": num(volume.quantize(Decimal("0.01"))),
            "nRequestsUsed": state.address_requests.get(user),
            "nRequestsCap": state.sim.config.hl_address_base_budget + int(volume),
            "nRequestsSurplus": 0,
        }
    if kind == "userRole":
        user = _user(payload)
        if user in ex.accounts:
            return {"role": "user"}
        owner = ex.signer_owner.get(user)
        if owner is not None:
            return {"role": "agent", "data": {"user": owner}}
        return {"role": "missing"}
    if kind == "extraAgents":
        user = _user(payload)
        acct = ex.accounts.get(user)
        if acct is None:
            return []
        return [
            {"name": state.agent_names.get((user, a), ""), "address": a, "validUntil": 4102444800000}
            for a in sorted(acct.signers)
        ]
    if kind == "userFunding" or kind == "fundingHistory":
        return []
    raise BadRequest(f"{DESERIALIZE}: unknown info type {kind}")


# ----- /exchange -----------------------------------------------------------------------------


def _stranger(payload_bytes: bytes) -> str:
    """A deterministic 'random' address for signatures that recover nothing at all."""
    return "0x" + bytes(keccak(payload_bytes))[-20:].hex()


def _batch_len(action: dict[str, Any]) -> int:
    for key in ("orders", "cancels", "modifies"):
        if isinstance(action.get(key), list):
            return len(action[key])
    return 1


def _exchange(state: HyperliquidState, payload: Any, ip: str) -> Response:
    sim = state.sim
    ex = state.ex
    if not isinstance(payload, dict) or not isinstance(payload.get("action"), dict):
        raise BadRequest(DESERIALIZE)
    action: dict[str, Any] = payload["action"]
    nonce = payload.get("nonce")
    vault = payload.get("vaultAddress")
    expires = payload.get("expiresAfter")
    if not isinstance(nonce, int) or isinstance(nonce, bool) or nonce < 0:
        raise BadRequest(f"{DESERIALIZE}: nonce must be an integer")
    if vault is not None and (not isinstance(vault, str) or len(vault) != 42 or not vault.startswith("0x")):
        raise BadRequest(f"{DESERIALIZE}: vaultAddress")
    if expires is not None and (not isinstance(expires, int) or isinstance(expires, bool)):
        raise BadRequest(f"{DESERIALIZE}: expiresAfter")
    kind = action.get("type")
    user_signed = kind in USER_SIGNED_TYPES
    if kind not in L1_ACTIONS and not user_signed:
        raise BadRequest(f"{DESERIALIZE}: unknown action type {kind}")
    n = _batch_len(action)
    if not state.ip_limiter.try_spend(ip, 1 + n // 40):
        return _too_many()
    sim.stats.charge(VENUE, f"exchange:{kind}", 1 + n // 40)
    state.housekeeping()
    now = sim.now_ms()

    sources = sim.config.hl_sources()
    try:
        if user_signed:
            if kind != "approveAgent":
                return _err(f"Action {kind} is not supported by the simulator")
            if expires is not None:
                return _err("expiresAfter is not supported on user-signed actions")
            chains = tuple({"a": "Mainnet", "b": "Testnet"}[src] for src in sources)
            if action.get("hyperliquidChain") not in chains:
                return _err(f"Invalid hyperliquidChain {action.get('hyperliquidChain')!r}")
            if action.get("nonce") != nonce:
                return _err("Action nonce does not match the request nonce")
            signer = recover_user_signed(action, payload.get("signature"))
        else:
            signed = canonical_action(action)
            signer = ""
            for src in sources:
                signer = recover_l1_signer(signed, payload.get("signature"), vault, nonce, expires, src)
                if ex.owner_of_signer(signer) is not None:
                    break
    except SignatureError:
        return _err(f"L1 error: User or API Wallet {_stranger(json.dumps(payload).encode())} does not exist.")

    owner = ex.owner_of_signer(signer)
    if owner is None:
        return _err(f"L1 error: User or API Wallet {signer} does not exist.")
    account = owner
    if vault is not None:
        target = ex.accounts.get(vault.lower())
        if target is None or (owner != target.address and owner not in target.signers):
            return _err(f"L1 error: User or API Wallet {signer} is not authorized for {vault.lower()}.")
        account = target.address
    if user_signed and signer not in ex.accounts:
        return _err(f"Must deposit before performing actions. User: {signer}")

    if expires is not None and expires < now:
        # Refused unexecuted, after the signer is known: the venue charges a stale action 5x
        # the address budget (docs "Exchange endpoint", Expires After).
        if sim.config.rate_limits:
            state.address_requests.add(account, EXPIRED_ACTION_COST * n)
        return _err(EXPIRED_ACTION)
    if not now - sim.config.hl_nonce_back_ms < nonce < now + sim.config.hl_nonce_ahead_ms:
        return _err(f"Invalid nonce: nonce {nonce} is too far from the current time {now}")
    nonce_error = state.nonces.check(signer, nonce)
    if nonce_error is not None:
        return _err(nonce_error)

    if sim.config.rate_limits and kind not in ("noop", "approveAgent"):
        volume = ex.accounts[account].volume
        cap = sim.config.hl_address_base_budget + int(volume)
        if kind in ("cancel", "cancelByCloid"):
            cap = min(cap + 100_000, 2 * cap)
        used = state.address_requests.get(account)
        if used + n > cap:
            return _err(
                f"Too many cumulative requests sent ({used + n} > {cap}) for cumulative volume traded "
                f"${num(volume.quantize(Decimal('0.01')))}. "
                "Place taker orders to free up 1 request per USDC traded."
            )
    state.nonces.record(signer, nonce)
    state.address_requests.add(account, n)
    return _dispatch(state, account, signer, str(kind), action, now)


def _dispatch(
    state: HyperliquidState, account: str, signer: str, kind: str, action: dict[str, Any], now: int
) -> Response:
    ex = state.ex
    if kind == "noop":
        return _ok_default()
    if kind == "approveAgent":
        agent = action.get("agentAddress")
        if not isinstance(agent, str) or len(agent) != 42 or not agent.startswith("0x"):
            raise BadRequest(f"{DESERIALIZE}: agentAddress")
        if agent.lower() in ex.accounts:
            return _err("Agent address is already a user")
        name = str(action.get("agentName", ""))
        # As on the venue, a new approval under a name (or unnamed) replaces the agent held there.
        for (owner, old_agent), old_name in list(state.agent_names.items()):
            if owner == account and old_name == name and old_agent != agent.lower():
                ex.remove_signer(account, old_agent)
                state.nonces.forget(old_agent)
                del state.agent_names[(owner, old_agent)]
        ex.add_signer(account, agent)
        state.agent_names[(account, agent.lower())] = name
        return _ok_default()
    if kind == "updateLeverage":
        asset, is_cross, leverage = action.get("asset"), action.get("isCross"), action.get("leverage")
        if not isinstance(asset, int) or not isinstance(is_cross, bool) or not isinstance(leverage, int):
            raise BadRequest(DESERIALIZE)
        try:
            ex.set_leverage(account, ex.coin_for_asset(asset), leverage, is_cross)
        except UnknownMarket:
            return _err(f"Invalid asset {asset}.")
        except InvalidRequest:
            return _err("Invalid leverage value")
        return _ok_default()
    if kind == "scheduleCancel":
        due = action.get("time")
        if due is None:
            state.scheduled_cancel.pop(account, None)
            return _ok_default()
        if not isinstance(due, int) or isinstance(due, bool):
            raise BadRequest(DESERIALIZE)
        if due < now + SCHEDULE_CANCEL_MIN_AHEAD_MS:
            return _err("Scheduled cancel time too early, must be at least 5 seconds from now.")
        state.scheduled_cancel[account] = due
        return _ok_default()
    if kind in ("cancel", "cancelByCloid"):
        return _cancel(state, account, kind, action)
    if kind == "order":
        return _order(state, account, action)
    if kind == "batchModify":
        return _modify(state, account, action)
    raise BadRequest(DESERIALIZE)


def _cancel(state: HyperliquidState, account: str, kind: str, action: dict[str, Any]) -> Response:
    ex = state.ex
    cancels = action.get("cancels")
    if not isinstance(cancels, list):
        raise BadRequest(DESERIALIZE)
    if len(cancels) > CANCEL_LIMIT:
        return _err(f"Signed action over weight limit of {CANCEL_LIMIT}.")
    statuses: list[Any] = []
    for item in cancels:
        if not isinstance(item, dict):
            raise BadRequest(DESERIALIZE)
        if kind == "cancel":
            asset, oid = item.get("a"), item.get("o")
            if not isinstance(asset, int) or not isinstance(oid, int):
                raise BadRequest(DESERIALIZE)
            order = ex.order_by_id(account, oid)
        else:
            asset, cloid = item.get("asset"), item.get("cloid")
            if not isinstance(asset, int) or not _is_cloid(cloid):
                raise BadRequest(DESERIALIZE)
            order = ex.order_by_client_id(account, cloid)
        try:
            coin = ex.coin_for_asset(asset)
        except UnknownMarket:
            coin = None
        if order is None or order.coin != coin or not order.is_open:
            statuses.append({"error": f"{MISSING_ORDER} asset={asset}"})
            continue
        ex.cancel(account, order.oid)
        state.waiting_children.pop(order.oid, None)
        statuses.append("success")
    return JSONResponse({"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}})


def _order(state: HyperliquidState, account: str, action: dict[str, Any]) -> Response:
    canonical = canonical_action(action)
    wires: list[dict[str, Any]] = canonical["orders"]
    grouping = canonical["grouping"]
    if grouping not in ("na", "normalTpsl", "positionTpsl"):
        raise BadRequest(f"{DESERIALIZE}: grouping")
    if not wires:
        return _err("Order list is empty.")
    if grouping != "na":
        for i, wire in enumerate(wires):
            if "trigger" in wire["t"] and not wire["r"] and not (grouping == "normalTpsl" and i == 0):
                return _err("TP/SL orders must be reduce only.")
    for wire in wires:  # pre-validation: one price too far refuses the whole action, as on the venue
        far = state.far_from_reference(wire)
        if far is not None:
            return _err(far)
    statuses: list[Any] = []
    parent: OrderRecord | None = None
    for i, wire in enumerate(wires):
        is_child = grouping == "normalTpsl" and i > 0 and "trigger" in wire["t"]
        if is_child and parent is not None:
            if parent.status == OPEN and parent.filled_size == 0:
                state.waiting_children.setdefault(parent.oid, []).append((account, wire))
                statuses.append("waitingForFill")
                continue
            if parent.filled_size == 0:
                statuses.append({"error": "Parent order was not placed."})
                continue
            result = state.place_wire(account, wire, grouping, cap=parent.filled_size)
        elif is_child:
            statuses.append({"error": "Parent order was not placed."})
            continue
        else:
            result = state.place_wire(account, wire, grouping)
        if isinstance(result, str):
            statuses.append({"error": result})
            if grouping == "normalTpsl" and i == 0:
                parent = None
            continue
        if grouping == "normalTpsl" and i == 0:
            parent = result
        statuses.append(order_status_json(result))
    return JSONResponse({"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}})


def _modify(state: HyperliquidState, account: str, action: dict[str, Any]) -> Response:
    ex = state.ex
    canonical = canonical_action(action)
    statuses: list[Any] = []
    for item in canonical["modifies"]:
        if not isinstance(item, dict):
            raise BadRequest(DESERIALIZE)
        oid = item.get("oid")
        if isinstance(oid, int) and not isinstance(oid, bool):
            existing = ex.order_by_id(account, oid)
        elif _is_cloid(oid):
            existing = ex.order_by_client_id(account, oid)
        else:
            raise BadRequest(DESERIALIZE)
        if existing is None or not existing.is_open:
            statuses.append({"error": "Cannot modify canceled or filled order"})
            continue
        ex.cancel(account, existing.oid)
        wire = dict(item["order"])
        if wire.get("c") == existing.client_id and existing.client_id is not None:
            # The replacement keeps the cloid: release it from the cancelled order first.
            ex.release_client_id(account, existing.client_id)
        result = state.place_wire(account, wire, "na")
        statuses.append({"error": result} if isinstance(result, str) else order_status_json(result))
    return JSONResponse({"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}})
