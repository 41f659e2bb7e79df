"""The Aster futures REST API (a Binance USDⓈ-M clone) on top of the simulator's matching engine.

Mounted at `/aster` by `sim.app`. Paths, params, JSON shapes and `{code, msg}` errors follow
`docs/venue-aster.md`; both auth generations are served:

* `/fapi/v1/*`, `/fapi/v2/*`, `/fapi/v4/account`: legacy API key + HMAC-SHA256 (keys are created
  with `POST /admin/accounts {venue:"aster", address, api_key, secret}`).
* `/fapi/v3/*`: EIP-712 signatures by the user's own key or an approved API wallet (signer).
* `/api/v1|v3/{ping,time,exchangeInfo}`: the minimal spot shapes ccxt reads on `load_markets`.

Simulator choices the real docs leave open are listed in `sim/aster_auth.py`. Further ones:
hedge mode (`positionSide/dual`) can be switched on so clients can be tested against it; in
that mode positionRisk shows LONG/SHORT rows and orders must name LONG/SHORT, but both sides
still net into the engine's single position per coin. FOK is served as IOC. Trailing stops
are refused (-1116). Every string decimal is formatted to the market's tick / step. Limit prices
must pass PERCENT_PRICE (mark × 0.85 .. 1.15, -4016/-4024); a MARKET order fills no further
than `marketTakeBound` (5 %) from the mark and its rest expires.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from newstrader.sim.aster_auth import (
    AsterAuthError,
    NonceBook,
    api_key_owner,
    check_timestamp,
    hmac_payload,
    parse_params,
    v3_payload,
    v3_signers,
    verify_hmac,
)
from newstrader.sim.market import (
    CANCELED,
    FILLED,
    FINAL_CANCEL_STATUSES,
    OPEN,
    REJECTED,
    TRIGGERED,
    Account,
    Exchange,
    InvalidRequest,
    MarketSpec,
    OrderRecord,
    SimError,
    TriggerKindName,
    TriggerSpec,
    UnknownAccount,
    UnknownMarket,
    plain,
)

if TYPE_CHECKING:
    from newstrader.sim.app import Sim

log = structlog.get_logger("newstrader.sim.aster")

ZERO = Decimal(0)
IP_WEIGHT_PER_MIN = 2400
ORDERS_PER_MIN = 1200
MAX_ALGO_ORDERS = 100
MAX_PRICE = Decimal(1_000_000)
MAX_QTY = Decimal(100_000_000)
NOTIONAL_CAP = Decimal(50_000_000)
# PERCENT_PRICE: a limit BUY may be at most mark × up, a SELL at least mark × down (docs' example).
PERCENT_UP = Decimal("1.15")
PERCENT_DOWN = Decimal("0.85")
# marketTakeBound: a MARKET order fills no further than this fraction from the mark.
MARKET_TAKE_BOUND = Decimal("0.05")
CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
TRUE_WORDS = {"true", "True", "TRUE"}
FALSE_WORDS = {"false", "False", "FALSE"}
ORDER_TYPES = {
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
}
TIF_TO_ENGINE = {"GTC": "gtc", "IOC": "ioc", "FOK": "ioc", "GTX": "alo", "HIDDEN": "gtc"}
# An IOC/market order that could take nothing is not an error on Binance-style venues: it expires.
EXPIRE_REASONS = frozenset({"iocCancelRejected", "marketOrderNoLiquidityRejected"})

# Engine rejection reason → (Binance code, message).
REJECT_CODES: dict[str, tuple[int, str]] = {
    "tickRejected": (-4014, "Price not increased by tick size."),
    "sizeRejected": (-1111, "Precision is over the maximum defined for this asset."),
    "minTradeNtlRejected": (
        -4164,
        "Order's notional must be no smaller than 5.0 (unless you choose reduce only)",
    ),
    "perpMarginRejected": (-2019, "Margin is insufficient."),
    "reduceOnlyRejected": (-2022, "ReduceOnly Order is rejected."),
    "badAloPxRejected": (
        -5022,
        "Due to the order could not be executed as maker, the Post Only order will be rejected.",
    ),
    "duplicateClientId": (-4116, "ClientOrderId is duplicated."),
    "wouldImmediatelyTrigger": (-2021, "Order would immediately trigger."),
    "maxOpenOrdersRejected": (-2025, "Reach max open order limit."),
}


class ApiError(Exception):
    """A Binance-style refusal: HTTP status plus `{code, msg}`."""

    def __init__(self, code: int, msg: str, http_status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.headers = headers or {}


def _mandatory(name: str) -> ApiError:
    return ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _decimals(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _fmt(value: Decimal, places: int) -> str:
    """A decimal as Aster prints it: fixed places, never exponent form."""
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN):f}"


def _plain(value: Decimal) -> str:
    return f"{plain(value):f}"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a signed request acts for, and through which auth generation."""

    address: str
    scheme: str  # "hmac" | "v3"


Handler = Callable[["AsterApi", dict[str, str], Caller | None], Any]


class AsterApi:
    """Protocol state of the simulated Aster (nonce books, hedge-mode flags) and its handlers."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.nonces = NonceBook()
        self.hedge_mode: dict[str, bool] = {}
        self.chain_ids: tuple[int, ...] = sim.config.aster_chains()
        self.ip_weight = sim.new_limiter(IP_WEIGHT_PER_MIN)
        self.order_count = sim.new_limiter(ORDERS_PER_MIN)
        self._auto_client_id = 0
        sim.on_reset(self.reset)

    def reset(self) -> None:
        self.nonces.reset()
        self.hedge_mode.clear()
        self._auto_client_id = 0

    @property
    def ex(self) -> Exchange:
        # Looked up per call: an admin reset replaces the Exchange object.
        return self.sim.aster

    # ----- helpers ------------------------------------------------------------------------

    def spec_for(self, params: dict[str, str]) -> MarketSpec:
        """The market `symbol` names: -1102 when it is missing, -1121 when the venue has none."""
        symbol = params.get("symbol")
        if not symbol:
            raise _mandatory("symbol")
        try:
            return self.ex.market(self.ex.coin_for_symbol(symbol))
        except UnknownMarket:
            raise ApiError(-1121, "Invalid symbol.") from None

    def account_of(self, caller: Caller | None) -> Account:
        assert caller is not None
        try:
            return self.ex.account(caller.address)
        except UnknownAccount:
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401) from None

    @staticmethod
    def boolean(params: dict[str, str], name: str, default: bool = False) -> bool:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        if raw in TRUE_WORDS:
            return True
        if raw in FALSE_WORDS:
            return False
        raise ApiError(-1130, f"Data sent for parameter '{name}' is not valid.")

    @staticmethod
    def decimal(params: dict[str, str], name: str) -> Decimal | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ApiError(-1130, f"Data sent for parameter '{name}' is not valid.") from None
        if not value.is_finite():
            raise ApiError(-1130, f"Data sent for parameter '{name}' is not valid.")
        return value

    @staticmethod
    def integer(params: dict[str, str], name: str) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            raise ApiError(-1130, f"Data sent for parameter '{name}' is not valid.") from None

    def price_places(self, spec: MarketSpec) -> int:
        return _decimals(spec.tick_size)

    # ----- auth ---------------------------------------------------------------------------

    def authenticate(self, version: str, request: Request, raw_query: str, raw_body: str) -> Caller:
        """Verify a signed request and return whom it acts for; raises the exchange's refusal."""
        if version == "v3":
            return self._auth_v3(raw_query, raw_body)
        return self._auth_hmac(request, raw_query, raw_body)

    def _auth_hmac(self, request: Request, raw_query: str, raw_body: str) -> Caller:
        api_key = request.headers.get("x-mbx-apikey", "")
        owner = api_key_owner(self.ex.api_key_owner, api_key)
        secret = self.ex.accounts[owner].api_keys[api_key]
        payload, signature = hmac_payload(raw_query, raw_body)
        verify_hmac(secret, payload, signature)
        check_timestamp(parse_params(raw_query, raw_body), self.ex.now_ms())
        return Caller(owner, "hmac")

    def _auth_v3(self, raw_query: str, raw_body: str) -> Caller:
        msg, signature = v3_payload(raw_query, raw_body)
        params = parse_params(raw_query, raw_body)
        user, signer = params.get("user"), params.get("signer")
        if not user:
            raise _mandatory("user")
        if not signer:
            raise _mandatory("signer")
        if not signature:
            raise _mandatory("signature")
        user, signer = user.lower(), signer.lower()
        if signer not in v3_signers(msg, signature, self.chain_ids):
            raise ApiError(-1022, "Signature for this request is not valid.")
        account = self.ex.accounts.get(user)
        if account is not None and signer in account.revoked:
            # an API wallet whose approval was withdrawn (docs: -1002 UNAUTHORIZED)
            raise ApiError(-1002, "You are not authorized to execute this request.", 401)
        if account is None or (signer != user and signer not in account.signers):
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        # Only a genuine request may spend a nonce, so a forger cannot burn the user's window.
        self.nonces.spend(user, params.get("nonce"), self.ex.now_ms() * 1000)
        return Caller(user, "v3")

    # ----- public market data -------------------------------------------------------------

    def symbol_info(self, spec: MarketSpec) -> dict[str, Any]:
        tick = _plain(spec.tick_size)
        step = _plain(spec.size_step)
        notional = _plain(spec.min_notional)
        return {
            "symbol": spec.symbol,
            "pair": spec.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000,
            "status": "TRADING",
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": spec.base_asset or spec.coin,
            "quoteAsset": "USDT",
            "marginAsset": "USDT",
            "pricePrecision": self.price_places(spec),
            "quantityPrecision": spec.sz_decimals,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "settlePlan": 0,
            "triggerProtect": "0.0500",
            "liquidationFee": "0.015000",
            "marketTakeBound": _plain(MARKET_TAKE_BOUND),
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": tick,
                    "maxPrice": _plain(MAX_PRICE),
                    "tickSize": tick,
                },
                {"filterType": "LOT_SIZE", "minQty": step, "maxQty": _plain(MAX_QTY), "stepSize": step},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": step,
                    "maxQty": _plain(MAX_QTY),
                    "stepSize": step,
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": self.ex.config.max_open_orders},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": MAX_ALGO_ORDERS},
                {"filterType": "MIN_NOTIONAL", "notional": notional, "minNotional": notional},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": f"{PERCENT_UP:.4f}",
                    "multiplierDown": f"{PERCENT_DOWN:.4f}",
                    "multiplierDecimal": 4,
                },
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        }

    def rate_limits(self) -> list[dict[str, Any]]:
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": IP_WEIGHT_PER_MIN,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": ORDERS_PER_MIN},
        ]

    def exchange_info(self, params: dict[str, str], caller: Caller | None) -> Any:
        return {
            "timezone": "UTC",
            "serverTime": self.ex.now_ms(),
            "futuresType": "U_MARGINED",
            "rateLimits": self.rate_limits(),
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": [self.symbol_info(spec) for spec in self.ex.markets.values()],
        }

    def spot_exchange_info(self, params: dict[str, str], caller: Caller | None) -> Any:
        # No spot markets are simulated; ccxt only needs a valid, empty listing.
        return {
            "timezone": "UTC",
            "serverTime": self.ex.now_ms(),
            "rateLimits": self.rate_limits(),
            "exchangeFilters": [],
            "assets": [{"asset": "USDT"}],
            "symbols": [],
        }

    def server_time(self, params: dict[str, str], caller: Caller | None) -> Any:
        return {"serverTime": self.ex.now_ms()}

    def ping(self, params: dict[str, str], caller: Caller | None) -> Any:
        return {}

    def _specs(self, params: dict[str, str]) -> list[MarketSpec]:
        spec = self.spec_for(params) if params.get("symbol") else None
        return [spec] if spec is not None else list(self.ex.markets.values())

    def ticker_price(self, params: dict[str, str], caller: Caller | None) -> Any:
        now = self.ex.now_ms()
        rows = [
            {"symbol": s.symbol, "price": _fmt(self.ex.marks[s.coin], self.price_places(s)), "time": now}
            for s in self._specs(params)
        ]
        return rows[0] if "symbol" in params else rows

    def book_ticker(self, params: dict[str, str], caller: Caller | None) -> Any:
        now = self.ex.now_ms()
        rows = []
        for s in self._specs(params):
            (bids, asks) = self.ex.book(s.coin, 1)
            places = self.price_places(s)
            rows.append(
                {
                    "symbol": s.symbol,
                    "bidPrice": _fmt(bids[0][0], places),
                    "bidQty": _fmt(bids[0][1], s.sz_decimals),
                    "askPrice": _fmt(asks[0][0], places),
                    "askQty": _fmt(asks[0][1], s.sz_decimals),
                    "time": now,
                }
            )
        return rows[0] if "symbol" in params else rows

    def premium_index(self, params: dict[str, str], caller: Caller | None) -> Any:
        now = self.ex.now_ms()
        rows = []
        for s in self._specs(params):
            mark = _fmt(self.ex.marks[s.coin], self.price_places(s) + 2)
            rows.append(
                {
                    "symbol": s.symbol,
                    "markPrice": mark,
                    "indexPrice": mark,
                    "estimatedSettlePrice": mark,
                    "lastFundingRate": "0.00010000",
                    "interestRate": "0.00010000",
                    "nextFundingTime": (now // 3_600_000 + 1) * 3_600_000,
                    "time": now,
                }
            )
        return rows[0] if "symbol" in params else rows

    def depth(self, params: dict[str, str], caller: Caller | None) -> Any:
        spec = self.spec_for(params)
        limit = self.integer(params, "limit") or 20
        bids, asks = self.ex.book(spec.coin, limit)
        places = self.price_places(spec)
        now = self.ex.now_ms()
        return {
            "lastUpdateId": now,
            "E": now,
            "T": now,
            "bids": [[_fmt(p, places), _fmt(q, spec.sz_decimals)] for p, q in bids],
            "asks": [[_fmt(p, places), _fmt(q, spec.sz_decimals)] for p, q in asks],
        }

    # ----- account reads ------------------------------------------------------------------

    def position_rows(self, acct: Account, spec: MarketSpec) -> list[dict[str, Any]]:
        ex = self.ex
        pos = acct.positions.get(spec.coin)
        size = pos.size if pos is not None else ZERO
        entry = pos.entry_px if pos is not None and size != 0 else ZERO
        mark = ex.marks[spec.coin]
        cross = ex.is_cross(acct, spec.coin)
        margin = ex.position_margin(acct, spec.coin)
        upnl = ex.unrealized_pnl(acct, spec.coin)
        liq = ex.liquidation_price(acct, spec.coin) or ZERO
        places = self.price_places(spec)
        base = {
            "symbol": spec.symbol,
            "markPrice": _fmt(mark, places + 2),
            "leverage": str(ex.leverage_of(acct, spec.coin)),
            "maxNotionalValue": _plain(NOTIONAL_CAP),
            "marginType": "cross" if cross else "isolated",
            "isAutoAddMargin": "false",
            "updateTime": acct.created_ms,
        }

        def row(amount: Decimal, side: str) -> dict[str, Any]:
            held = amount != 0
            return {
                **base,
                "positionAmt": _fmt(amount, spec.sz_decimals),
                "entryPrice": _fmt(entry, places + 2) if held else "0.0",
                "unRealizedProfit": _fmt(upnl if held else ZERO, 8),
                "liquidationPrice": _fmt(liq, places) if held and liq else "0",
                "isolatedMargin": _fmt(margin + upnl if held and not cross else ZERO, 8),
                "isolatedWallet": _fmt(margin if held and not cross else ZERO, 8),
                "notional": _fmt(amount * mark if held else ZERO, 8),
                "positionSide": side,
            }

        if not self.hedge_mode.get(acct.address):
            return [row(size, "BOTH")]
        return [row(size if size > 0 else ZERO, "LONG"), row(size if size < 0 else ZERO, "SHORT")]

    def position_risk(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct = self.account_of(caller)
        rows: list[dict[str, Any]] = []
        for spec in self._specs(params):
            rows.extend(self.position_rows(acct, spec))
        return rows

    def _totals(self, acct: Account) -> dict[str, Decimal]:
        ex = self.ex
        upnl = sum((ex.unrealized_pnl(acct, c) for c in acct.positions), ZERO)
        position_im = sum((ex.position_margin(acct, c) for c in acct.positions), ZERO)
        used = ex.margin_used(acct)
        return {
            "wallet": acct.balance,
            "upnl": upnl,
            "margin_balance": ex.account_value(acct),
            "initial": used,
            "position_initial": position_im,
            "open_order_initial": used - position_im,
            "maint": ex.maintenance_margin(acct),
            "available": ex.withdrawable(acct),
        }

    def balance(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct = self.account_of(caller)
        t = self._totals(acct)
        return [
            {
                "accountAlias": "SgsR",
                "asset": "USDT",
                "balance": _fmt(t["wallet"], 8),
                "crossWalletBalance": _fmt(t["wallet"], 8),
                "crossUnPnl": _fmt(t["upnl"], 8),
                "availableBalance": _fmt(t["available"], 8),
                "maxWithdrawAmount": _fmt(t["available"], 8),
                "marginAvailable": True,
                "updateTime": self.ex.now_ms(),
            }
        ]

    def account(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct = self.account_of(caller)
        t = self._totals(acct)
        now = self.ex.now_ms()
        f8 = {k: _fmt(v, 8) for k, v in t.items()}
        positions = []
        for spec in self.ex.markets.values():
            for row in self.position_rows(acct, spec):
                positions.append(
                    {
                        "symbol": spec.symbol,
                        "initialMargin": _fmt(self.ex.position_margin(acct, spec.coin), 8),
                        "maintMargin": "0",
                        "unrealizedProfit": row["unRealizedProfit"],
                        "positionInitialMargin": _fmt(self.ex.position_margin(acct, spec.coin), 8),
                        "openOrderInitialMargin": "0",
                        "leverage": row["leverage"],
                        "isolated": row["marginType"] == "isolated",
                        "entryPrice": row["entryPrice"],
                        "maxNotional": row["maxNotionalValue"],
                        "positionSide": row["positionSide"],
                        "positionAmt": row["positionAmt"],
                        "notional": row["notional"],
                        "isolatedWallet": row["isolatedWallet"],
                        "updateTime": row["updateTime"],
                    }
                )
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": False,
            "totalInitialMargin": f8["initial"],
            "totalMaintMargin": f8["maint"],
            "totalWalletBalance": f8["wallet"],
            "totalUnrealizedProfit": f8["upnl"],
            "totalMarginBalance": f8["margin_balance"],
            "totalPositionInitialMargin": f8["position_initial"],
            "totalOpenOrderInitialMargin": f8["open_order_initial"],
            "totalCrossWalletBalance": f8["wallet"],
            "totalCrossUnPnl": f8["upnl"],
            "availableBalance": f8["available"],
            "maxWithdrawAmount": f8["available"],
            "assets": [
                {
                    "asset": "USDT",
                    "walletBalance": f8["wallet"],
                    "unrealizedProfit": f8["upnl"],
                    "marginBalance": f8["margin_balance"],
                    "maintMargin": f8["maint"],
                    "initialMargin": f8["initial"],
                    "positionInitialMargin": f8["position_initial"],
                    "openOrderInitialMargin": f8["open_order_initial"],
                    "crossWalletBalance": f8["wallet"],
                    "crossUnPnl": f8["upnl"],
                    "availableBalance": f8["available"],
                    "maxWithdrawAmount": f8["available"],
                    "marginAvailable": True,
                    "updateTime": now,
                }
            ],
            "positions": positions,
        }

    def leverage_bracket(self, params: dict[str, str], caller: Caller | None) -> Any:
        self.account_of(caller)
        rows = []
        for spec in self._specs(params):
            rows.append(
                {
                    "symbol": spec.symbol,
                    "brackets": [
                        {
                            "bracket": 1,
                            "initialLeverage": spec.max_leverage,
                            "notionalCap": int(NOTIONAL_CAP),
                            "notionalFloor": 0,
                            "maintMarginRatio": float(Decimal(1) / (2 * spec.max_leverage)),
                            "cum": 0.0,
                        }
                    ],
                }
            )
        return rows

    def commission_rate(self, params: dict[str, str], caller: Caller | None) -> Any:
        spec = self.spec_for(params)
        return {
            "symbol": spec.symbol,
            "makerCommissionRate": _plain(self.ex.config.maker_fee),
            "takerCommissionRate": _plain(self.ex.config.taker_fee),
        }

    def user_trades(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct = self.account_of(caller)
        spec = self.spec_for(params)
        start = self.integer(params, "startTime")
        end = self.integer(params, "endTime")
        from_id = self.integer(params, "fromId")
        limit = min(self.integer(params, "limit") or 500, 1000)
        places = self.price_places(spec)
        hedge = self.hedge_mode.get(acct.address, False)
        rows = []
        for fill in self.ex.fills(acct.address, start, end):
            if fill.coin != spec.coin or (from_id is not None and fill.tid < from_id):
                continue
            if hedge:
                long_side = fill.start_position > 0 or (fill.start_position == 0 and fill.is_buy)
                position_side = "LONG" if long_side else "SHORT"
            else:
                position_side = "BOTH"
            rows.append(
                {
                    "buyer": fill.is_buy,
                    # Negative, as in the v3 docs' example; replies recorded on the venue carry it
                    # positive. A client must book |commission| as the cost (ccxt does).
                    "commission": _fmt(-fill.fee, 8),
                    "commissionAsset": "USDT",
                    "id": fill.tid,
                    "maker": not fill.crossed,
                    "orderId": fill.oid if fill.oid is not None else 0,
                    "price": _fmt(fill.px, places),
                    "qty": _fmt(fill.size, spec.sz_decimals),
                    "quoteQty": _fmt(fill.size * fill.px, 8),
                    "realizedPnl": _fmt(fill.closed_pnl, 8),
                    "marginAsset": "USDT",
                    "side": "BUY" if fill.is_buy else "SELL",
                    "positionSide": position_side,
                    "symbol": spec.symbol,
                    "time": fill.time_ms,
                }
            )
        return rows[:limit] if from_id is not None or start is not None else rows[-limit:]

    # ----- orders -------------------------------------------------------------------------

    def order_json(self, order: OrderRecord, ack: bool = False) -> dict[str, Any]:
        spec = self.ex.market(order.coin)
        places = self.price_places(spec)
        tags = order.tags
        aster_type = tags.get("aster_type") or ("MARKET" if order.limit_px is None else "LIMIT")
        if ack:
            status = "NEW"
            executed, avg, cum_quote = ZERO, ZERO, ZERO
        else:
            status = self.status_of(order)
            executed = order.filled_size
            avg = order.avg_px or ZERO
            cum_quote = executed * avg
        trigger_px = order.trigger.trigger_px if order.trigger is not None else ZERO
        orig_qty = ZERO if order.close_position and not order.triggered else order.size
        return {
            "orderId": order.oid,
            "symbol": spec.symbol,
            "status": status,
            "clientOrderId": order.client_id or "",
            "price": _fmt(order.limit_px or ZERO, places) if tags.get("aster_limit") else "0",
            "avgPrice": _fmt(avg, max(places, 5)),
            "origQty": _fmt(orig_qty, spec.sz_decimals),
            "executedQty": _fmt(executed, spec.sz_decimals),
            "cumQty": _fmt(executed, spec.sz_decimals),
            "cumQuote": _fmt(cum_quote, 5),
            "timeInForce": tags.get("aster_tif", "GTC"),
            "type": aster_type,
            "origType": aster_type,
            "side": "BUY" if order.is_buy else "SELL",
            "positionSide": tags.get("aster_position_side", "BOTH"),
            "reduceOnly": order.reduce_only and not order.close_position,
            "closePosition": order.close_position,
            "stopPrice": _fmt(trigger_px, places) if order.trigger is not None else "0",
            "workingType": tags.get("aster_working_type", "CONTRACT_PRICE"),
            "priceProtect": tags.get("aster_price_protect", False),
            "time": order.created_ms,
            "updateTime": order.status_ms,
        }

    @staticmethod
    def status_of(order: OrderRecord) -> str:
        if order.status in (OPEN, TRIGGERED):
            return "PARTIALLY_FILLED" if order.filled_size > 0 else "NEW"
        if order.status == FILLED:
            # An IOC/market remainder that found no liquidity expires, as on Binance.
            return "FILLED" if order.filled_size >= order.size else "EXPIRED"
        if order.status == REJECTED:
            return "EXPIRED" if order.reject_reason in EXPIRE_REASONS else "REJECTED"
        if order.status == CANCELED and order.tags.get("aster_tif") in ("IOC", "FOK"):
            return "EXPIRED"
        if order.status in FINAL_CANCEL_STATUSES:
            return "CANCELED" if order.filled_size == 0 or order.status == CANCELED else "EXPIRED"
        return order.status.upper()

    def _position_side(self, acct: Account, params: dict[str, str]) -> str:
        side = params.get("positionSide", "BOTH") or "BOTH"
        if side not in ("BOTH", "LONG", "SHORT"):
            raise ApiError(-4006, "Invalid position side.")
        hedge = self.hedge_mode.get(acct.address, False)
        if hedge == (side == "BOTH"):
            raise ApiError(-4061, "Order's position side does not match user's setting.")
        return side

    def new_order(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct = self.account_of(caller)
        spec = self.spec_for(params)
        side = params.get("side")
        if not side:
            raise _mandatory("side")
        if side not in ("BUY", "SELL"):
            raise ApiError(-1117, "Invalid side.")
        kind = params.get("type")
        if not kind:
            raise _mandatory("type")
        if kind not in ORDER_TYPES:
            raise ApiError(-1116, "Invalid orderType.")
        if kind == "TRAILING_STOP_MARKET":
            raise ApiError(-1116, "Invalid orderType. TRAILING_STOP_MARKET is not simulated.")
        position_side = self._position_side(acct, params)
        hedge = position_side != "BOTH"
        reduce_only = self.boolean(params, "reduceOnly")
        close_position = self.boolean(params, "closePosition")
        resp_type = params.get("newOrderRespType", "ACK") or "ACK"
        if resp_type not in ("ACK", "RESULT"):
            raise ApiError(-1136, "Invalid newOrderRespType.")
        if hedge and "reduceOnly" in params:
            raise ApiError(-1106, "Parameter 'reduceOnly' sent when not required.")
        client_id = params.get("newClientOrderId")
        if client_id is not None and not CLIENT_ID_RE.match(client_id):
            raise ApiError(-4015, "Client order id is not valid.")
        if client_id is None:
            self._auto_client_id += 1
            client_id = f"sim{self.ex.seed}x{self._auto_client_id:012d}"
        is_trigger = kind in ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET")
        has_limit = kind in ("LIMIT", "STOP", "TAKE_PROFIT")
        quantity = self.decimal(params, "quantity")
        price = self.decimal(params, "price")
        stop_price = self.decimal(params, "stopPrice")
        tif_name = params.get("timeInForce")
        if close_position:
            if kind not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
                raise ApiError(-4136, "Target strategy invalid for orderType " + kind + ",closePosition true")
            if quantity is not None:
                raise ApiError(-4137, "Quantity must be zero with closePosition equals true.")
            if "reduceOnly" in params:
                raise ApiError(-1106, "Parameter 'reduceOnly' sent when not required.")
            quantity = ZERO
        elif quantity is None:
            raise _mandatory("quantity")
        elif quantity <= 0:
            raise ApiError(-4003, "Quantity less than or equal to zero.")
        elif quantity != quantity.quantize(spec.size_step, rounding=ROUND_DOWN):
            raise ApiError(-1111, "Precision is over the maximum defined for this asset.")
        elif quantity > MAX_QTY:  # LOT_SIZE / MARKET_LOT_SIZE maxQty (both published as MAX_QTY)
            raise ApiError(-4005, "Quantity greater than max quantity.")
        if has_limit:
            if price is None:
                raise _mandatory("price")
            if kind == "LIMIT" and not tif_name:
                raise _mandatory("timeInForce")
            self._check_price(spec, price, side, "price")
        elif price is not None and kind == "MARKET":
            raise ApiError(-1106, "Parameter 'price' sent when not required.")
        tif_name = tif_name or "GTC"
        if tif_name not in TIF_TO_ENGINE:
            raise ApiError(-1115, "Invalid timeInForce.")
        trigger = None
        if is_trigger:
            if stop_price is None:
                raise _mandatory("stopPrice")
            if stop_price <= 0 or not spec.price_ok(stop_price):
                raise ApiError(-4014, "Price not increased by tick size.")
            trigger_kind: TriggerKindName = "sl" if kind.startswith("STOP") else "tp"
            trigger = TriggerSpec(trigger_kind, stop_price, is_market=not has_limit)
            if self._would_trigger(trigger, side == "BUY", self.ex.marks[spec.coin]):
                raise ApiError(-2021, "Order would immediately trigger.")
            algo = [o for o in self.ex.open_orders(acct.address, spec.coin) if o.trigger is not None]
            if len(algo) >= MAX_ALGO_ORDERS:
                raise ApiError(-4045, "Reach max stop order limit.")
        if not self.order_count.try_spend(acct.address, 1):
            raise ApiError(
                -1015, f"Too many new orders; current limit is {ORDERS_PER_MIN} orders per MINUTE.", 429
            )
        engine_tif = "ioc" if kind == "MARKET" else TIF_TO_ENGINE[tif_name]
        limit = price if has_limit else None
        if kind == "MARKET":  # the take bound caps how far a market order walks the book
            limit = self.market_take_limit(spec, side == "BUY")
        order = self.ex.place_order(
            acct.address,
            spec.coin,
            side == "BUY",
            quantity,
            limit,
            tif=engine_tif,  # type: ignore[arg-type]
            reduce_only=reduce_only,
            client_id=client_id,
            trigger=trigger,
            close_position=close_position,
            market_order=kind == "MARKET",
        )
        order.tags.update(
            aster_type=kind,
            aster_tif=tif_name if has_limit else "GTC",
            aster_limit=has_limit,
            aster_position_side=position_side,
            aster_working_type=params.get("workingType") or "CONTRACT_PRICE",
            aster_price_protect=self.boolean(params, "priceProtect"),
        )
        if order.status == REJECTED and order.reject_reason not in EXPIRE_REASONS:
            reason = order.reject_reason or ""
            code, msg = REJECT_CODES.get(reason, (-2010, f"NEW_ORDER_REJECTED: {reason}"))
            log.info("aster_order_rejected", venue="aster", coin=spec.coin, code=code, reason=reason)
            raise ApiError(code, msg)
        return self.order_json(order, ack=resp_type == "ACK")

    @staticmethod
    def _would_trigger(trigger: TriggerSpec, is_buy: bool, mark: Decimal) -> bool:
        px = trigger.trigger_px
        if trigger.kind == "tp":
            return mark <= px if is_buy else mark >= px
        return mark >= px if is_buy else mark <= px

    def _check_price(self, spec: MarketSpec, price: Decimal, side: str, name: str) -> None:
        if price <= 0:
            raise ApiError(-4013, "Price less than min price.")
        if price > MAX_PRICE:
            raise ApiError(-4016, f"Limit price can't be higher than {_plain(MAX_PRICE)}.")
        if not spec.price_ok(price):
            raise ApiError(-4014, "Price not increased by tick size.")
        mark = self.ex.marks[spec.coin]
        if side == "BUY" and price > mark * PERCENT_UP:
            raise ApiError(-4016, "Price is higher than mark price multiplier cap.")
        if side == "SELL" and price < mark * PERCENT_DOWN:
            raise ApiError(-4024, "Price is lower than mark price multiplier floor.")

    def market_take_limit(self, spec: MarketSpec, is_buy: bool) -> Decimal:
        """The worst price a MARKET order may fill at: the mark ± marketTakeBound, on the tick."""
        mark = self.ex.marks[spec.coin]
        bound = mark * (1 + MARKET_TAKE_BOUND if is_buy else 1 - MARKET_TAKE_BOUND)
        ticks = (bound / spec.tick_size).to_integral_value(
            rounding="ROUND_FLOOR" if is_buy else "ROUND_CEILING"
        )
        return plain(ticks * spec.tick_size)

    @staticmethod
    def _listed(order: OrderRecord) -> bool:
        """Refused orders never reach the book; an IOC that found nothing to take did (and expired)."""
        return order.status != REJECTED or order.reject_reason in EXPIRE_REASONS

    def _find_order(
        self, params: dict[str, str], caller: Caller | None
    ) -> tuple[Account, OrderRecord | None]:
        """The caller's account and its order on `symbol` named by orderId or origClientOrderId."""
        acct = self.account_of(caller)
        spec = self.spec_for(params)
        oid = self.integer(params, "orderId")
        client_id = params.get("origClientOrderId")
        if oid is None and not client_id:
            raise ApiError(-1102, "Either orderId or origClientOrderId must be sent.")
        order = self.ex.order_by_id(acct.address, oid) if oid is not None else None
        if order is None and client_id:
            order = self.ex.order_by_client_id(acct.address, client_id)
        if order is None or order.coin != spec.coin or not self._listed(order):
            return acct, None
        return acct, order

    def query_order(self, params: dict[str, str], caller: Caller | None) -> Any:
        _, order = self._find_order(params, caller)
        if order is None:
            raise ApiError(-2013, "Order does not exist.")
        return self.order_json(order)

    def query_open_order(self, params: dict[str, str], caller: Caller | None) -> Any:
        _, order = self._find_order(params, caller)
        if order is None or not order.is_open:
            raise ApiError(-2013, "Order does not exist.")
        return self.order_json(order)

    def cancel_order(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct, order = self._find_order(params, caller)
        if order is None or not order.is_open:
            raise ApiError(-2011, "Unknown order sent.")
        canceled = self.ex.cancel(acct.address, oid=order.oid)
        assert canceled is not None
        return self.order_json(canceled)

    def cancel_all(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct = self.account_of(caller)
        spec = self.spec_for(params)
        self.ex.cancel_all(acct.address, spec.coin)
        return {"code": "200", "msg": "The operation of cancel all open order is done."}

    def open_orders(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct = self.account_of(caller)
        spec = self.spec_for(params) if params.get("symbol") else None
        coin = spec.coin if spec is not None else None
        return [self.order_json(o) for o in self.ex.open_orders(acct.address, coin)]

    def all_orders(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct = self.account_of(caller)
        spec = self.spec_for(params)
        limit = min(self.integer(params, "limit") or 500, 1000)
        orders = [
            o
            for o in self.ex.orders.values()
            if o.account == acct.address and o.coin == spec.coin and self._listed(o)
        ]
        return [self.order_json(o) for o in orders[-limit:]]

    # ----- settings -----------------------------------------------------------------------

    def set_leverage(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct = self.account_of(caller)
        spec = self.spec_for(params)
        leverage = self.integer(params, "leverage")
        if leverage is None:
            raise _mandatory("leverage")
        try:
            self.ex.set_leverage(acct.address, spec.coin, leverage, self.ex.is_cross(acct, spec.coin))
        except InvalidRequest:
            raise ApiError(-4028, f"Leverage {leverage} is not valid") from None
        return {"leverage": leverage, "maxNotionalValue": _plain(NOTIONAL_CAP), "symbol": spec.symbol}

    def set_margin_type(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct = self.account_of(caller)
        spec = self.spec_for(params)
        margin_type = params.get("marginType")
        if not margin_type:
            raise _mandatory("marginType")
        if margin_type not in ("ISOLATED", "CROSSED"):
            raise ApiError(-1130, "Data sent for parameter 'marginType' is not valid.")
        cross = margin_type == "CROSSED"
        if self.ex.is_cross(acct, spec.coin) == cross:
            raise ApiError(-4046, "No need to change margin type.")
        if acct.positions.get(spec.coin) is not None or self.ex.open_orders(acct.address, spec.coin):
            raise ApiError(-4048, "Margin type cannot be changed if there exists position.")
        self.ex.set_leverage(acct.address, spec.coin, self.ex.leverage_of(acct, spec.coin), cross)
        return {"code": 200, "msg": "success"}

    def get_dual(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct = self.account_of(caller)
        return {"dualSidePosition": self.hedge_mode.get(acct.address, False)}

    def set_dual(self, params: dict[str, str], caller: Caller | None) -> Any:
        acct = self.account_of(caller)
        if not params.get("dualSidePosition"):
            raise _mandatory("dualSidePosition")
        wanted = self.boolean(params, "dualSidePosition")
        if self.hedge_mode.get(acct.address, False) == wanted:
            raise ApiError(-4059, "No need to change position side.")
        if self.ex.open_orders(acct.address):
            raise ApiError(-4067, "Position side cannot be changed if there exists open orders.")
        if any(p.size != 0 for p in acct.positions.values()):
            raise ApiError(-4068, "Position side cannot be changed if there exists position.")
        self.hedge_mode[acct.address] = wanted
        return {"code": 200, "msg": "success"}

    def builders(self, params: dict[str, str], caller: Caller | None) -> Any:
        self.account_of(caller)
        return []  # no builder is ever approved in the simulator

    def approve_builder(self, params: dict[str, str], caller: Caller | None) -> Any:
        self.account_of(caller)
        return {"code": 200, "msg": "success"}


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    weight: int
    private: bool
    versions: frozenset[str]
    weight_all: int | None = None  # weight when no symbol is given


def _r(handler: Handler, weight: int, private: bool, versions: str, weight_all: int | None = None) -> Route:
    return Route(handler, weight, private, frozenset(versions.split()), weight_all)


# Each path is served only under the generations the docs list it for (asterdex/api-docs: v3 in
# "V3(Recommended)/EN/aster-finance-futures-api-v3.md", legacy in "V1(Legacy)/EN/...futures-api.md"):
# the v3 account read is `accountWithJoinMargin` (no `/fapi/v3/account`), legacy reads `/fapi/v4/account`,
# `/fapi/v2/positionRisk` and `/fapi/v2/balance`. The builder paths come from ccxt's Aster API map.
ALL_PRIVATE = "v1 v3"
FAPI_ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "ping"): _r(AsterApi.ping, 1, False, "v1 v3"),
    ("GET", "time"): _r(AsterApi.server_time, 1, False, "v1 v3"),
    ("GET", "exchangeInfo"): _r(AsterApi.exchange_info, 1, False, "v1 v3"),
    ("GET", "ticker/price"): _r(AsterApi.ticker_price, 1, False, "v1 v3", 2),
    ("GET", "ticker/bookTicker"): _r(AsterApi.book_ticker, 1, False, "v1 v3", 2),
    ("GET", "premiumIndex"): _r(AsterApi.premium_index, 1, False, "v1 v3"),
    ("GET", "depth"): _r(AsterApi.depth, 2, False, "v1 v3"),
    ("GET", "positionRisk"): _r(AsterApi.position_risk, 5, True, "v2 v3"),
    ("GET", "account"): _r(AsterApi.account, 5, True, "v4"),
    ("GET", "accountWithJoinMargin"): _r(AsterApi.account, 5, True, "v3"),
    ("GET", "balance"): _r(AsterApi.balance, 5, True, "v2 v3"),
    ("GET", "leverageBracket"): _r(AsterApi.leverage_bracket, 1, True, ALL_PRIVATE),
    ("GET", "commissionRate"): _r(AsterApi.commission_rate, 20, True, ALL_PRIVATE),
    ("GET", "userTrades"): _r(AsterApi.user_trades, 5, True, ALL_PRIVATE),
    ("POST", "order"): _r(AsterApi.new_order, 1, True, ALL_PRIVATE),
    ("GET", "order"): _r(AsterApi.query_order, 1, True, ALL_PRIVATE),
    ("DELETE", "order"): _r(AsterApi.cancel_order, 1, True, ALL_PRIVATE),
    ("DELETE", "allOpenOrders"): _r(AsterApi.cancel_all, 1, True, ALL_PRIVATE),
    ("GET", "openOrders"): _r(AsterApi.open_orders, 1, True, ALL_PRIVATE, 40),
    ("GET", "openOrder"): _r(AsterApi.query_open_order, 1, True, ALL_PRIVATE),
    ("GET", "allOrders"): _r(AsterApi.all_orders, 5, True, ALL_PRIVATE),
    ("POST", "leverage"): _r(AsterApi.set_leverage, 1, True, ALL_PRIVATE),
    ("POST", "marginType"): _r(AsterApi.set_margin_type, 1, True, ALL_PRIVATE),
    ("GET", "positionSide/dual"): _r(AsterApi.get_dual, 30, True, ALL_PRIVATE),
    ("POST", "positionSide/dual"): _r(AsterApi.set_dual, 1, True, ALL_PRIVATE),
    ("GET", "builder"): _r(AsterApi.builders, 1, True, "v3"),
    ("POST", "approveBuilder"): _r(AsterApi.approve_builder, 1, True, "v3"),
}
SPOT_ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "ping"): _r(AsterApi.ping, 1, False, "v1 v3"),
    ("GET", "time"): _r(AsterApi.server_time, 1, False, "v1 v3"),
    ("GET", "exchangeInfo"): _r(AsterApi.spot_exchange_info, 1, False, "v1 v3"),
}
PATH_RE = re.compile(r"^/?(fapi|api)/(v\d)/(.+?)/?$")


def _json_response(status: int, payload: Any, headers: dict[str, str]) -> Response:
    body = json.dumps(payload, separators=(",", ":"))
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)


def build_router(sim: Sim) -> APIRouter:
    """The `/aster` router: one catch-all route that dispatches by method, generation and path."""
    api = AsterApi(sim)
    sim.aster_api = api
    router = APIRouter()

    async def handle(subpath: str, request: Request) -> Response:
        match = PATH_RE.match(subpath)
        route: Route | None = None
        version = ""
        if match is not None:
            family, version, name = match.groups()
            table = FAPI_ROUTES if family == "fapi" else SPOT_ROUTES
            route = table.get((request.method, name))
            if route is not None and version not in route.versions:
                route = None
        if route is None:
            return _json_response(
                404, {"code": -1000, "msg": f"Unknown path {request.method} /{subpath}"}, {}
            )
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        raw_body = (await request.body()).decode("latin-1")
        params = parse_params(raw_query, raw_body)
        weight = route.weight_all if route.weight_all is not None and "symbol" not in params else route.weight
        ip = request.client.host if request.client is not None else "unknown"
        headers: dict[str, str] = {}
        if not api.ip_weight.try_spend(ip, weight):
            retry = max(1, round(api.ip_weight.retry_after_s(ip, weight)))
            headers = {"X-MBX-USED-WEIGHT-1M": str(api.ip_weight.used(ip)), "Retry-After": str(retry)}
            msg = f"Too many requests; current limit of IP({ip}) is {IP_WEIGHT_PER_MIN} requests per minute."
            return _json_response(429, {"code": -1003, "msg": msg}, headers)
        sim.stats.charge("aster", f"{request.method} /{subpath}", weight)
        headers["X-MBX-USED-WEIGHT-1M"] = str(api.ip_weight.used(ip))
        try:
            caller = api.authenticate(version, request, raw_query, raw_body) if route.private else None
            result = route.handler(api, params, caller)
        except AsterAuthError as err:
            log.info("aster_auth_refused", venue="aster", path=subpath, code=err.code)
            return _json_response(err.http_status, {"code": err.code, "msg": err.msg}, headers)
        except ApiError as err:
            return _json_response(
                err.http_status, {"code": err.code, "msg": err.msg}, {**headers, **err.headers}
            )
        except SimError as err:
            return _json_response(400, {"code": -1000, "msg": str(err)}, headers)
        if request.method == "POST" and subpath.endswith("/order") and caller is not None:
            headers["X-MBX-ORDER-COUNT-1M"] = str(api.order_count.used(caller.address))
        return _json_response(200, result, headers)

    router.add_api_route(
        "/{subpath:path}", handle, methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False
    )
    return router
