"""The one matching engine under both simulated venues.

An `Exchange` holds one venue's markets, accounts, orders, fills and mark prices. The API
modules (`hyperliquid_api`, `aster_api`) only translate their wire protocol to the calls
below; every trading rule lives here so both venues behave alike.

Conventions (the interface the API modules code against):

- Every amount is a `Decimal`. A position size is signed (> 0 long). Times are ms integers
  taken from `Exchange.now_ms()` (wall clock unless a clock is injected).
- Coins are keyed by their Hyperliquid name on **both** exchanges (`BTC`, `kPEPE`). Each
  `MarketSpec` also carries the venue symbol: Hyperliquid uses the coin itself; Aster uses
  `<COIN>USDT`, and a `k` prefix (1000 units: kPEPE, kBONK, kSHIB) maps to `1000<BASE>USDT`
  (`kPEPE` ↔ `1000PEPEUSDT`, base asset `1000PEPE`): same contract size and price on both.
  `Exchange.coin_for_symbol()` maps back.
- Addresses are stored lowercase. An account may approve extra signers (agent/API wallets)
  and, on Aster, legacy HMAC API keys.
- `place_order()` never raises for a trading rejection: it returns an `OrderRecord` whose
  `status` is `"rejected"` and whose `reject_reason` names why (Hyperliquid vocabulary:
  `tickRejected`, `minTradeNtlRejected`, `perpMarginRejected`, `reduceOnlyRejected`,
  `badAloPxRejected`, `iocCancelRejected`, `badTriggerPxRejected`, `sizeRejected`,
  `duplicateClientId`, `wouldImmediatelyTrigger`). Unknown coins or accounts raise
  `UnknownMarket` / `UnknownAccount` (both `SimError`).
- Order statuses use the Hyperliquid vocabulary: `open`, `filled`, `canceled`, `triggered`
  (a fired trigger whose execution rested), `rejected`, and the system cancels
  `reduceOnlyCanceled`, `siblingFilledCanceled`, `liquidatedCanceled`, `scheduledCancel`.
  An IOC that fills partly is `filled` with `filled_size < size` and `remaining == 0`.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

ZERO = Decimal(0)
ONE = Decimal(1)
MICRO = Decimal("0.000001")  # money (fees, realized PnL) is kept to 6 places
ENTRY_QUANTUM = Decimal("1e-10")  # average entry prices

VenueName = Literal["hyperliquid", "aster"]
Tif = Literal["gtc", "ioc", "alo"]
TriggerKindName = Literal["tp", "sl"]

OPEN = "open"
FILLED = "filled"
CANCELED = "canceled"
TRIGGERED = "triggered"
REJECTED = "rejected"
FINAL_CANCEL_STATUSES = frozenset(
    {CANCELED, "reduceOnlyCanceled", "siblingFilledCanceled", "liquidatedCanceled", "scheduledCancel"}
)


class SimError(Exception):
    """A request the engine cannot act on at all (not a trading rejection)."""


class UnknownMarket(SimError):
    """No market for that coin or symbol."""


class UnknownAccount(SimError):
    """No account with that address."""


class InvalidRequest(SimError):
    """A malformed argument, e.g. leverage out of range."""


# (coin, szDecimals, maxLeverage, price) — the ~50 most traded Hyperliquid perps, late-2025 levels.
# fmt: off
DEFAULT_MARKETS: tuple[tuple[str, int, int, str], ...] = (
    ("BTC", 5, 40, "95000"),
    ("ETH", 4, 25, "3200"),
    ("SOL", 2, 20, "140"),
    ("HYPE", 2, 10, "35"),
    ("XRP", 0, 20, "2.2"),
    ("DOGE", 0, 10, "0.16"),
    ("kPEPE", 0, 10, "0.0055"),
    ("SUI", 1, 10, "1.7"),
    ("WIF", 0, 10, "0.45"),
    ("AVAX", 2, 10, "15"),
    ("LINK", 1, 10, "14"),
    ("BNB", 3, 10, "900"),
    ("ADA", 0, 10, "0.45"),
    ("LTC", 2, 10, "90"),
    ("TRX", 0, 10, "0.28"),
    ("DOT", 1, 10, "2.5"),
    ("NEAR", 1, 10, "2.1"),
    ("APT", 2, 10, "2.8"),
    ("ARB", 1, 10, "0.22"),
    ("OP", 1, 10, "0.35"),
    ("TIA", 1, 10, "0.7"),
    ("SEI", 0, 10, "0.15"),
    ("INJ", 1, 10, "6.5"),
    ("ATOM", 2, 10, "2.6"),
    ("FIL", 1, 10, "1.6"),
    ("AAVE", 2, 10, "180"),
    ("UNI", 1, 10, "6.5"),
    ("LDO", 1, 10, "0.75"),
    ("CRV", 1, 10, "0.42"),
    ("ENA", 0, 10, "0.28"),
    ("ONDO", 0, 10, "0.5"),
    ("TAO", 3, 5, "300"),
    ("FET", 0, 10, "0.25"),
    ("RENDER", 1, 10, "1.8"),
    ("WLD", 1, 10, "0.6"),
    ("JUP", 0, 10, "0.25"),
    ("PYTH", 0, 10, "0.08"),
    ("kBONK", 0, 10, "0.011"),
    ("kSHIB", 0, 10, "0.0085"),
    ("POPCAT", 0, 10, "0.12"),
    ("FARTCOIN", 1, 10, "0.3"),
    ("TRUMP", 1, 10, "6"),
    ("PENGU", 0, 5, "0.012"),
    ("VIRTUAL", 1, 5, "0.9"),
    ("BCH", 3, 10, "520"),
    ("ETC", 2, 10, "13"),
    ("XLM", 0, 10, "0.25"),
    ("HBAR", 0, 10, "0.14"),
    ("TON", 1, 10, "1.6"),
    ("ZEC", 2, 10, "500"),
)
# fmt: on


def plain(value: Decimal) -> Decimal:
    """The value without trailing zeros and never in exponent form (95000, not 9.5E+4)."""
    if value == value.to_integral_value():
        return value.quantize(ONE)
    return value.normalize()


def sig_fig_round(price: Decimal, figures: int, max_decimals: int) -> Decimal:
    """Round a price to the Hyperliquid rule: N significant figures, at most `max_decimals` places."""
    if price <= 0:
        return price
    exponent = max(price.adjusted() - figures + 1, -max_decimals)
    exponent = min(exponent, 0)  # integers are always valid
    return plain(price.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """Trading rules of one coin on one venue.

    `price_rule` is `"sigfig"` (Hyperliquid: ≤ 5 significant figures and ≤ 6 − szDecimals
    places; integers always valid) or `"tick"` (Aster: a multiple of `tick_size`).
    """

    coin: str
    symbol: str
    asset_id: int
    sz_decimals: int
    max_leverage: int
    min_notional: Decimal
    tick_size: Decimal
    price_rule: Literal["sigfig", "tick"]
    initial_price: Decimal
    base_asset: str = ""

    @property
    def size_step(self) -> Decimal:
        return Decimal(1).scaleb(-self.sz_decimals)

    @property
    def max_price_decimals(self) -> int:
        return 6 - self.sz_decimals

    def size_ok(self, size: Decimal) -> bool:
        """True when `size` is a positive multiple of the size step."""
        return size > 0 and size == size.quantize(self.size_step, rounding=ROUND_DOWN)

    def price_ok(self, price: Decimal) -> bool:
        """True when `price` satisfies the venue's price rule."""
        if price <= 0:
            return False
        if self.price_rule == "tick":
            return (price / self.tick_size) == (price / self.tick_size).to_integral_value()
        if price == price.to_integral_value():
            return True
        decimals = -price.normalize().as_tuple().exponent  # type: ignore[operator]
        digits = len(price.normalize().as_tuple().digits)
        return decimals <= self.max_price_decimals and digits <= 5

    def round_price(self, price: Decimal) -> Decimal:
        """The nearest valid price (used for marks and the synthetic book)."""
        if self.price_rule == "tick":
            return plain(
                (price / self.tick_size).to_integral_value(rounding=ROUND_HALF_EVEN) * self.tick_size
            )
        return sig_fig_round(price, 5, self.max_price_decimals)

    def to_dict(self) -> dict[str, Any]:
        return {
            "coin": self.coin,
            "symbol": self.symbol,
            "asset_id": self.asset_id,
            "sz_decimals": self.sz_decimals,
            "size_step": str(self.size_step),
            "max_leverage": self.max_leverage,
            "min_notional": str(self.min_notional),
            "tick_size": str(self.tick_size),
            "price_rule": self.price_rule,
        }


def aster_symbol(coin: str) -> tuple[str, str]:
    """(symbol, base asset) on Aster for a Hyperliquid coin name: kPEPE → 1000PEPEUSDT."""
    base = f"1000{coin[1:]}" if coin.startswith("k") and coin[1:].isupper() else coin
    return f"{base}USDT", base


def default_markets(venue: VenueName) -> dict[str, MarketSpec]:
    """The default market list for a venue (same coins on both, venue-specific filters)."""
    return build_markets(venue, DEFAULT_MARKETS)


def build_markets(venue: VenueName, rows: Iterable[tuple[str, int, int, str]]) -> dict[str, MarketSpec]:
    """Markets from (coin, szDecimals, maxLeverage, price) rows; asset ids follow row order.

    Hyperliquid: 5 significant figures, ≤ 6 − szDecimals places, $10 minimum. Aster: the same coin
    as `<COIN>USDT` (k-prefixed coins as `1000<BASE>USDT`), a tick of ~5 significant figures at
    the start price, $5 minimum.
    """
    markets: dict[str, MarketSpec] = {}
    for index, (coin, sz_decimals, max_leverage, px) in enumerate(rows):
        price = Decimal(px)
        # A tick that gives ~5-6 significant figures at today's price, never finer than HL allows.
        tick = max(Decimal(1).scaleb(price.adjusted() - 5), Decimal(1).scaleb(-(6 - sz_decimals)))
        if venue == "hyperliquid":
            symbol, base = coin, coin
            spec = MarketSpec(
                coin, symbol, index, sz_decimals, max_leverage, Decimal(10), tick, "sigfig", price, base
            )
        else:
            symbol, base = aster_symbol(coin)
            spec = MarketSpec(
                coin, symbol, index, sz_decimals, max_leverage, Decimal(5), tick, "tick", price, base
            )
        markets[coin] = spec
    return markets


@dataclass(slots=True)
class ExchangeConfig:
    """Knobs of one simulated venue; all have realistic defaults."""

    spread_bps: Decimal = Decimal(2)  # full bid/ask spread around the mark
    # A thin book: no liquidity within this many bps of the mark on either side (a news gap).
    book_gap_bps: Decimal = Decimal(0)
    depth_levels: int = 20
    level_notional_usd: Decimal = Decimal(2_000_000)  # size of each synthetic book level
    partial_fill_probability: float = 0.0  # chance that an IOC fills only part of what it could
    taker_fee: Decimal = Decimal("0.00045")
    maker_fee: Decimal = Decimal("0.00015")
    default_leverage: int = 20
    walk_volatility: float = 0.002  # per tick(), log-normal
    immediate_trigger: Literal["fire", "reject"] = "fire"  # Aster rejects (-2021), HL fires
    # The price an order's value is measured at for the min-notional rule. "limit": its limit
    # price (Aster MIN_NOTIONAL: price × quantity, the mark only for a MARKET order). "lower":
    # Hyperliquid documents no basis, so a marketable order is held to the lower of its limit and
    # the mark (whichever rule the venue uses, the simulator is not the more lenient of the two).
    notional_price: Literal["limit", "lower"] = "lower"
    max_open_orders: int = 1000


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """A TP/SL trigger: fires when the mark crosses `trigger_px`."""

    kind: TriggerKindName
    trigger_px: Decimal
    is_market: bool = True


@dataclass(slots=True)
class PositionState:
    """One account's position in one coin."""

    size: Decimal = ZERO
    entry_px: Decimal = ZERO
    cum_funding: Decimal = ZERO


@dataclass(slots=True)
class Account:
    """Collateral (USD), positions, leverage settings and approved signers of one address."""

    address: str
    balance: Decimal
    positions: dict[str, PositionState] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    cross: dict[str, bool] = field(default_factory=dict)
    signers: set[str] = field(default_factory=set)  # agent / API-wallet addresses (lowercase)
    revoked: set[str] = field(default_factory=set)  # signers once approved, since withdrawn
    # Hyperliquid account abstraction (`userAbstraction`): in "unifiedAccount" / "portfolioMargin"
    # the collateral sits in spot, so the perp clearinghouse shows (almost) no account value.
    abstraction: str = "default"
    api_keys: dict[str, str] = field(default_factory=dict)  # Aster legacy: api key → HMAC secret
    created_ms: int = 0
    volume: Decimal = ZERO  # cumulative traded notional (USD), e.g. for Hyperliquid's address budget


@dataclass(slots=True)
class OrderRecord:
    """One order as the exchange knows it, from placement to its final status."""

    oid: int
    account: str
    coin: str
    is_buy: bool
    size: Decimal  # original size as requested (after shrink-to-fit for reduce-only)
    limit_px: Decimal | None  # None: a market order (no limit)
    tif: Tif
    reduce_only: bool
    client_id: str | None
    trigger: TriggerSpec | None
    close_position: bool
    status: str
    created_ms: int
    status_ms: int
    reject_reason: str | None = None
    filled_size: Decimal = ZERO
    avg_px: Decimal | None = None
    remaining: Decimal = ZERO
    triggered: bool = False
    requested_size: Decimal = ZERO
    fill_ids: list[int] = field(default_factory=list)
    tags: dict[str, Any] = field(default_factory=dict)  # free use by the API modules (e.g. Aster type)

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    def to_dict(self) -> dict[str, Any]:
        return {
            "oid": self.oid,
            "account": self.account,
            "coin": self.coin,
            "side": "buy" if self.is_buy else "sell",
            "size": str(self.size),
            "limit_px": None if self.limit_px is None else str(self.limit_px),
            "tif": self.tif,
            "reduce_only": self.reduce_only,
            "client_id": self.client_id,
            "trigger": None
            if self.trigger is None
            else {
                "kind": self.trigger.kind,
                "trigger_px": str(self.trigger.trigger_px),
                "is_market": self.trigger.is_market,
            },
            "close_position": self.close_position,
            "status": self.status,
            "reject_reason": self.reject_reason,
            "filled_size": str(self.filled_size),
            "avg_px": None if self.avg_px is None else str(self.avg_px),
            "remaining": str(self.remaining),
            "created_ms": self.created_ms,
        }


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One execution: fee and realized (closed) PnL as the venue reports them."""

    tid: int
    oid: int | None
    account: str
    coin: str
    is_buy: bool
    size: Decimal
    px: Decimal
    fee: Decimal
    closed_pnl: Decimal
    start_position: Decimal
    direction: str  # "Open Long", "Close Short", "Long > Short", ...
    crossed: bool  # taker
    time_ms: int
    hash: str
    client_id: str | None = None
    liquidation: bool = False
    outside: bool = False  # a trade made outside the API (admin /position)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tid": self.tid,
            "oid": self.oid,
            "account": self.account,
            "coin": self.coin,
            "side": "buy" if self.is_buy else "sell",
            "size": str(self.size),
            "px": str(self.px),
            "fee": str(self.fee),
            "closed_pnl": str(self.closed_pnl),
            "start_position": str(self.start_position),
            "dir": self.direction,
            "crossed": self.crossed,
            "time": self.time_ms,
            "hash": self.hash,
            "client_id": self.client_id,
            "liquidation": self.liquidation,
            "outside": self.outside,
        }


def _direction(start: Decimal, is_buy: bool, size: Decimal) -> str:
    end = start + (size if is_buy else -size)
    if start == 0 or (start > 0 and end > 0 and is_buy) or (start < 0 and end < 0 and not is_buy):
        return "Open Long" if is_buy else "Open Short"
    if start > 0 and end < 0:
        return "Long > Short"
    if start < 0 and end > 0:
        return "Short > Long"
    return "Close Short" if is_buy else "Close Long"


ChangeKind = Literal["order", "fill", "mark", "account"]
# kind, then the OrderRecord / FillRecord / coin / account address that changed
ChangeListener = Callable[[ChangeKind, "OrderRecord | FillRecord | str"], None]


class Exchange:
    """One simulated venue: markets, marks, accounts, orders and fills. Deterministic per seed.

    All methods are synchronous and run on the server's event loop, so each call is atomic.
    `on_change`, when set, hears every state change (the websocket push hub listens there).
    """

    def __init__(
        self,
        name: VenueName,
        seed: int = 1,
        markets: dict[str, MarketSpec] | None = None,
        config: ExchangeConfig | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.name: VenueName = name
        self.seed = seed
        self.config = config or ExchangeConfig()
        self.markets: dict[str, MarketSpec] = markets if markets is not None else default_markets(name)
        self._clock = clock or (lambda: int(time.time() * 1000))
        self._symbols = {spec.symbol: coin for coin, spec in self.markets.items()}
        self._assets = {spec.asset_id: coin for coin, spec in self.markets.items()}
        venue_salt = 0 if name == "hyperliquid" else 1
        self.rng = random.Random(seed * 2 + venue_salt)
        self.marks: dict[str, Decimal] = {coin: spec.initial_price for coin, spec in self.markets.items()}
        self.accounts: dict[str, Account] = {}
        self.signer_owner: dict[str, str] = {}  # signer address → account address
        self.api_key_owner: dict[str, str] = {}  # Aster legacy api key → account address
        self.orders: dict[int, OrderRecord] = {}
        self.fill_log: list[FillRecord] = []
        # Indexes so reads stay cheap as history grows: orders that may still be open (pruned
        # lazily, oldest first) and each account's fills.
        self._maybe_open: dict[int, OrderRecord] = {}
        self._fills_by_account: dict[str, list[FillRecord]] = {}
        self._next_oid = 1_000_000 + (seed % 1000) * 1000 + venue_salt * 500_000_000
        self._next_tid = 1
        self._by_client_id: dict[tuple[str, str], int] = {}
        self.on_change: ChangeListener | None = None
        # `after_next_fill`: (account, coin) → the size an outside trade moves it to (None: liquidate).
        self.armed: dict[tuple[str, str], Decimal | None] = {}
        self.fired: list[dict[str, Any]] = []  # what the armed changes did, for the admin API

    def _changed(self, kind: ChangeKind, item: OrderRecord | FillRecord | str) -> None:
        if self.on_change is not None:
            self.on_change(kind, item)

    # ----- clock, lookups -------------------------------------------------------------

    def now_ms(self) -> int:
        """Current exchange time in ms."""
        return self._clock()

    def market(self, coin: str) -> MarketSpec:
        """The spec of `coin`; raises UnknownMarket."""
        try:
            return self.markets[coin]
        except KeyError:
            raise UnknownMarket(f"unknown coin {coin!r}") from None

    def coin_for_symbol(self, symbol: str) -> str:
        """The coin of a venue symbol (`1000PEPEUSDT` → `kPEPE`); raises UnknownMarket."""
        try:
            return self._symbols[symbol]
        except KeyError:
            raise UnknownMarket(f"unknown symbol {symbol!r}") from None

    def coin_for_asset(self, asset_id: int) -> str:
        """The coin of a Hyperliquid asset id (its index in `meta.universe`); raises UnknownMarket."""
        try:
            return self._assets[asset_id]
        except KeyError:
            raise UnknownMarket(f"unknown asset {asset_id}") from None

    def mark(self, coin: str) -> Decimal:
        self.market(coin)
        return self.marks[coin]

    def best_bid_ask(self, coin: str) -> tuple[Decimal, Decimal]:
        """Top of the synthetic book: the mark ± half the spread, on valid prices, bid < ask."""
        spec = self.market(coin)
        mark = self.marks[coin]
        half = mark * (self.config.spread_bps / 2 + self.config.book_gap_bps) / Decimal(10000)
        step = self._book_step(spec, mark)
        bid = self._floor_to(spec, mark - half, step)
        ask = self._ceil_to(spec, mark + half, step)
        if ask <= bid:
            ask = bid + step
        return bid, ask

    def book(
        self, coin: str, levels: int | None = None
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """Synthetic L2 book: (bids, asks) as (price, size) lists, best first."""
        spec = self.market(coin)
        n = min(levels or self.config.depth_levels, self.config.depth_levels)
        bid, ask = self.best_bid_ask(coin)
        step = max(self._book_step(spec, self.marks[coin]), ask - bid)
        bids, asks = [], []
        for i in range(n):
            bpx, apx = bid - step * i, ask + step * i
            if bpx > 0:
                bids.append((bpx, self._level_size(spec, bpx)))
            asks.append((apx, self._level_size(spec, apx)))
        return bids, asks

    def _book_step(self, spec: MarketSpec, mark: Decimal) -> Decimal:
        if spec.price_rule == "tick":
            return spec.tick_size
        exponent = max(mark.adjusted() - 4, -spec.max_price_decimals)
        return Decimal(1).scaleb(exponent)

    @staticmethod
    def _floor_to(spec: MarketSpec, px: Decimal, step: Decimal) -> Decimal:
        return plain((px / step).to_integral_value(rounding="ROUND_FLOOR") * step)

    @staticmethod
    def _ceil_to(spec: MarketSpec, px: Decimal, step: Decimal) -> Decimal:
        return plain((px / step).to_integral_value(rounding="ROUND_CEILING") * step)

    def _level_size(self, spec: MarketSpec, px: Decimal) -> Decimal:
        return (self.config.level_notional_usd / px).quantize(spec.size_step, rounding=ROUND_DOWN)

    # ----- accounts ---------------------------------------------------------------------

    def create_account(
        self,
        address: str,
        usd: Decimal,
        signers: Iterable[str] = (),
        api_key: str | None = None,
        secret: str | None = None,
    ) -> Account:
        """Create an account, or add `usd` to an existing one; register extra signers / API key."""
        addr = address.lower()
        account = self.accounts.get(addr)
        if account is None:
            account = Account(address=addr, balance=Decimal(usd), created_ms=self.now_ms())
            self.accounts[addr] = account
        else:
            account.balance += Decimal(usd)
        for signer in signers:
            self.add_signer(addr, signer)
        if api_key is not None:
            if secret is None:
                raise InvalidRequest("api_key needs a secret")
            account.api_keys[api_key] = secret
            self.api_key_owner[api_key] = addr
        self._changed("account", addr)
        return account

    def account(self, address: str) -> Account:
        """The account of `address` (any case); raises UnknownAccount."""
        try:
            return self.accounts[address.lower()]
        except KeyError:
            raise UnknownAccount(f"unknown account {address}") from None

    def add_signer(self, address: str, signer: str) -> None:
        """Approve `signer` (an agent / API wallet) to act for the account at `address`."""
        account = self.account(address)
        s = signer.lower()
        account.signers.add(s)
        account.revoked.discard(s)
        self.signer_owner[s] = account.address

    def remove_signer(self, address: str, signer: str) -> None:
        """Withdraw `signer`'s approval for the account at `address` (no-op when absent)."""
        account = self.account(address)
        s = signer.lower()
        if s in account.signers:
            account.revoked.add(s)
        account.signers.discard(s)
        if self.signer_owner.get(s) == account.address:
            del self.signer_owner[s]

    def owner_of_signer(self, signer: str) -> str | None:
        """The account a signer may act for: itself if it is an account, else its approver."""
        s = signer.lower()
        if s in self.accounts:
            return s
        return self.signer_owner.get(s)

    def set_leverage(self, address: str, coin: str, leverage: int, cross: bool = True) -> None:
        """Set leverage (1..max) and margin mode for new exposure in `coin`."""
        account = self.account(address)
        spec = self.market(coin)
        if not 1 <= leverage <= spec.max_leverage:
            raise InvalidRequest(f"leverage {leverage} outside 1..{spec.max_leverage} for {coin}")
        account.leverage[coin] = leverage
        account.cross[coin] = cross
        self._changed("account", account.address)

    def leverage_of(self, account: Account, coin: str) -> int:
        spec = self.market(coin)
        return account.leverage.get(coin, min(self.config.default_leverage, spec.max_leverage))

    def is_cross(self, account: Account, coin: str) -> bool:
        return account.cross.get(coin, True)

    def position(self, address: str, coin: str) -> PositionState:
        """The position (possibly flat) of an account in a coin."""
        account = self.account(address)
        return account.positions.get(coin, PositionState())

    # ----- margin -----------------------------------------------------------------------

    def unrealized_pnl(self, account: Account, coin: str) -> Decimal:
        pos = account.positions.get(coin)
        if pos is None or pos.size == 0:
            return ZERO
        return pos.size * (self.marks[coin] - pos.entry_px)

    def account_value(self, account: Account) -> Decimal:
        """Collateral plus unrealized PnL of every position."""
        return account.balance + sum((self.unrealized_pnl(account, c) for c in account.positions), ZERO)

    def position_margin(self, account: Account, coin: str) -> Decimal:
        pos = account.positions.get(coin)
        if pos is None or pos.size == 0:
            return ZERO
        return abs(pos.size) * self.marks[coin] / self.leverage_of(account, coin)

    def margin_used(self, account: Account) -> Decimal:
        """Initial margin held by positions and by resting opening orders."""
        used = sum((self.position_margin(account, c) for c in account.positions), ZERO)
        for order in self.open_orders(account.address):
            if order.reduce_only or order.trigger is not None or order.limit_px is None:
                continue
            used += order.remaining * order.limit_px / self.leverage_of(account, order.coin)
        return used

    def maintenance_margin(self, account: Account) -> Decimal:
        """Half the initial margin at max leverage, per position (Hyperliquid's rule)."""
        total = ZERO
        for coin, pos in account.positions.items():
            if pos.size != 0:
                total += abs(pos.size) * self.marks[coin] / (2 * self.market(coin).max_leverage)
        return total

    def withdrawable(self, account: Account) -> Decimal:
        return max(ZERO, self.account_value(account) - self.margin_used(account))

    def liquidation_price(self, account: Account, coin: str) -> Decimal | None:
        """Mark at which the account falls to maintenance margin, others held still; None if never."""
        pos = account.positions.get(coin)
        if pos is None or pos.size == 0:
            return None
        spec = self.market(coin)
        others_value = self.account_value(account) - self.unrealized_pnl(account, coin)
        others_maint = self.maintenance_margin(account) - abs(pos.size) * self.marks[coin] / (
            2 * spec.max_leverage
        )
        rate = ONE / (2 * spec.max_leverage)
        # others_value + size*(p - entry) = others_maint + |size|*p*rate
        denom = pos.size - abs(pos.size) * rate
        if denom == 0:
            return None
        px = (others_maint - others_value + pos.size * pos.entry_px) / denom
        if px <= 0:
            return None
        return spec.round_price(px)

    # ----- orders -----------------------------------------------------------------------

    def _new_oid(self) -> int:
        oid = self._next_oid
        self._next_oid += 1
        return oid

    def place_order(
        self,
        account: str,
        coin: str,
        is_buy: bool,
        size: Decimal,
        price: Decimal | None,
        tif: Tif = "gtc",
        reduce_only: bool = False,
        client_id: str | None = None,
        trigger: TriggerSpec | None = None,
        close_position: bool = False,
        market_order: bool = False,
    ) -> OrderRecord:
        """Validate, match and/or rest one order; returns its record (status `rejected` on refusal).

        `price` None means a market order (IOC against the book, no limit). `trigger` makes it a
        TP/SL that rests until the mark crosses `trigger.trigger_px`; `close_position` (with a
        trigger) closes the whole position when it fires, whatever `size` says. `market_order`:
        `price` is only the venue's take bound of a market order, so its value is taken at the mark.
        """
        acct = self.account(account)
        spec = self.market(coin)
        now = self.now_ms()
        size = Decimal(size)
        order = OrderRecord(
            oid=self._new_oid(),
            account=acct.address,
            coin=coin,
            is_buy=is_buy,
            size=size,
            limit_px=None if price is None else Decimal(price),
            tif=tif,
            reduce_only=reduce_only or close_position,
            client_id=client_id,
            trigger=trigger,
            close_position=close_position,
            status=OPEN,
            created_ms=now,
            status_ms=now,
            remaining=size,
            requested_size=size,
        )
        if market_order:
            order.tags["market_order"] = True
        self.orders[order.oid] = order
        self._maybe_open[order.oid] = order
        reason = self._validate(acct, spec, order)
        if reason is not None:
            self._reject(order, reason)
        else:
            if client_id is not None:
                self._by_client_id[(acct.address, client_id)] = order.oid
            if trigger is not None:
                self._place_trigger(acct, order)
            else:
                self._execute(acct, spec, order)
        self._changed("order", order)
        if order.filled_size > 0 and order.trigger is None:
            self._fire_armed(acct.address, coin)
        return order

    def after_next_fill(self, account: str, coin: str, size: Decimal | None) -> None:
        """Arm a one-shot outside change: right after the next API order of `account` on `coin`
        fills, move its position to `size` (a manual trade) or liquidate it (`size` None). It runs
        just after the order's call, as its own change: pushed after the fill, before any read
        the order's sender starts once answered."""
        self.account(account)
        self.market(coin)
        self.armed[(account.lower(), coin)] = size

    def _fire_armed(self, account: str, coin: str) -> None:
        if (account, coin) not in self.armed:
            return
        size = self.armed.pop((account, coin))

        def fire() -> None:
            before = self.position(account, coin).size
            fill = self.liquidate(account, coin) if size is None else self.set_position(account, coin, size)
            after = self.position(account, coin).size
            self.fired.append(
                {
                    "account": account,
                    "coin": coin,
                    "liquidation": size is None,
                    "before": str(before),
                    "after": str(after),
                    "changed": fill is not None,
                }
            )

        try:
            # After the order's own changes are pushed (the push hub flushes with call_soon too).
            asyncio.get_running_loop().call_soon(fire)
        except RuntimeError:  # a synchronous caller (unit tests of the exchange): at once
            fire()

    def _validate(self, acct: Account, spec: MarketSpec, order: OrderRecord) -> str | None:
        if order.client_id is not None:
            existing = self._by_client_id.get((acct.address, order.client_id))
            if existing is not None and self.orders[existing].status != REJECTED:
                return "duplicateClientId"
        if not order.close_position and not spec.size_ok(order.size):
            return "sizeRejected"
        if order.limit_px is not None and not spec.price_ok(order.limit_px):
            return "tickRejected"
        if order.trigger is not None:
            if not spec.price_ok(order.trigger.trigger_px):
                return "tickRejected"
            if self._trigger_hit(order, self.marks[order.coin]) and self.config.immediate_trigger == "reject":
                return "wouldImmediatelyTrigger"
        if order.tif == "alo" and order.limit_px is not None:
            bid, ask = self.best_bid_ask(order.coin)
            if (order.is_buy and order.limit_px >= ask) or (not order.is_buy and order.limit_px <= bid):
                order.tags["bbo"] = (bid, ask)
                return "badAloPxRejected"
        pos = acct.positions.get(order.coin, PositionState()).size
        if order.reduce_only and order.trigger is None:
            if pos == 0 or (pos > 0) == order.is_buy:
                return "reduceOnlyRejected"
            if order.size > abs(pos):
                order.size = order.remaining = abs(pos)
        if not order.reduce_only:
            if order.size * self._notional_price(order) < spec.min_notional:
                return "minTradeNtlRejected"
            increase = self._increase(pos, order.is_buy, order.size)
            if increase > 0 and order.trigger is None:
                need = increase * self.marks[order.coin] / self.leverage_of(acct, order.coin)
                if self.margin_used(acct) + need > self.account_value(acct):
                    return "perpMarginRejected"
        if len(self.open_orders(acct.address)) >= self.config.max_open_orders:
            return "maxOpenOrdersRejected"
        return None

    def _notional_price(self, order: OrderRecord) -> Decimal:
        """The price the min-notional rule values `order` at (see `ExchangeConfig.notional_price`)."""
        mark = self.marks[order.coin]
        if order.limit_px is None or order.tags.get("market_order"):
            return mark  # a market order has no price of its own
        if self.config.notional_price == "limit" or not self._marketable(order):
            return order.limit_px
        return min(order.limit_px, mark)

    @staticmethod
    def _increase(pos: Decimal, is_buy: bool, size: Decimal) -> Decimal:
        """How much of an order adds to |position| (the part beyond closing the current one)."""
        if pos == 0 or (pos > 0) == is_buy:
            return size
        return max(ZERO, size - abs(pos))

    def _marketable(self, order: OrderRecord) -> bool:
        if order.limit_px is None:
            return True
        bid, ask = self.best_bid_ask(order.coin)
        return order.limit_px >= ask if order.is_buy else order.limit_px <= bid

    def _reject(self, order: OrderRecord, reason: str) -> OrderRecord:
        order.status = REJECTED
        order.reject_reason = reason
        order.remaining = ZERO
        order.status_ms = self.now_ms()
        return order

    def _place_trigger(self, acct: Account, order: OrderRecord) -> OrderRecord:
        if self._trigger_hit(order, self.marks[order.coin]):
            self._fire_trigger(acct, order)
        return order

    def _execute(self, acct: Account, spec: MarketSpec, order: OrderRecord) -> OrderRecord:
        """Take liquidity up to the limit; the rest rests (GTC/ALO) or is cancelled (IOC)."""
        self._take(acct, spec, order)
        if order.remaining > 0 and order.tif != "ioc" and order.limit_px is not None:
            order.status = OPEN
        elif order.filled_size > 0:
            order.status = FILLED
            order.remaining = ZERO
        else:
            order.remaining = ZERO
            reason = "iocCancelRejected" if order.limit_px is not None else "marketOrderNoLiquidityRejected"
            return self._reject(order, reason)
        order.status_ms = self.now_ms()
        return order

    def _take(self, acct: Account, spec: MarketSpec, order: OrderRecord) -> Decimal:
        """Walk the synthetic book as taker; returns the size filled now."""
        if not self._marketable(order):
            return ZERO
        bids, asks = self.book(order.coin)
        levels = asks if order.is_buy else bids
        want = order.remaining
        if order.reduce_only:
            pos = acct.positions.get(order.coin, PositionState()).size
            if pos == 0 or (pos > 0) == order.is_buy:
                return ZERO
            want = min(want, abs(pos))
        partial = self.config.partial_fill_probability
        # Only client IOCs are cut short; a fired TP/SL executes in full as the venue's market order.
        if order.tif == "ioc" and not order.triggered and partial > 0 and self.rng.random() < partial:
            fraction = Decimal(str(round(self.rng.uniform(0.2, 0.8), 4)))
            part = (want * fraction).quantize(spec.size_step, rounding=ROUND_DOWN)
            want = max(part, spec.size_step) if want > spec.size_step else want
        done = ZERO
        cost = ZERO
        for px, level_size in levels:
            if order.limit_px is not None and (px > order.limit_px if order.is_buy else px < order.limit_px):
                break
            take = min(level_size, want - done)
            if take <= 0:
                break
            done += take
            cost += take * px
        if done == 0:
            return ZERO
        # One fill per order match at the volume-weighted price, as Hyperliquid reports per level
        # only when several makers are hit; a single fill keeps the ledger easy to read.
        avg = plain((cost / done).quantize(Decimal("1e-8")))
        self._fill(acct, order, done, avg, crossed=True)
        return done

    def _fill(
        self,
        acct: Account,
        order: OrderRecord | None,
        size: Decimal,
        px: Decimal,
        *,
        crossed: bool,
        coin: str | None = None,
        is_buy: bool | None = None,
        liquidation: bool = False,
        outside: bool = False,
        fee_rate: Decimal | None = None,
    ) -> FillRecord:
        """Apply one execution to the account: position, entry, realized PnL, fee, ledger."""
        coin = order.coin if order is not None else coin
        is_buy = order.is_buy if order is not None else is_buy
        assert coin is not None and is_buy is not None
        pos = acct.positions.setdefault(coin, PositionState())
        start = pos.size
        signed = size if is_buy else -size
        closed_pnl = ZERO
        if start != 0 and (start > 0) != is_buy:
            closing = min(size, abs(start))
            # Money is kept to the micro-dollar, like the fee, so the ledger adds up exactly.
            closed_pnl = (closing * (px - pos.entry_px) * (1 if start > 0 else -1)).quantize(MICRO)
        end = start + signed
        if end == 0:
            pos.entry_px = ZERO
        elif start == 0 or (start > 0) != (end > 0):
            pos.entry_px = px
        elif abs(end) > abs(start):
            pos.entry_px = plain(((abs(start) * pos.entry_px + size * px) / abs(end)).quantize(ENTRY_QUANTUM))
        pos.size = end
        rate = (
            fee_rate
            if fee_rate is not None
            else (self.config.taker_fee if crossed else self.config.maker_fee)
        )
        fee = (size * px * rate).quantize(MICRO)
        acct.balance += closed_pnl - fee
        acct.volume += size * px
        tid = self._next_tid
        self._next_tid += 1
        digest = hashlib.sha256(f"{self.name}:{self.seed}:{tid}".encode()).hexdigest()
        fill = FillRecord(
            tid=tid,
            oid=order.oid if order is not None else None,
            account=acct.address,
            coin=coin,
            is_buy=is_buy,
            size=size,
            px=px,
            fee=fee,
            closed_pnl=closed_pnl,
            start_position=start,
            direction=_direction(start, is_buy, size),
            crossed=crossed,
            time_ms=self.now_ms(),
            hash="0x" + digest,
            client_id=order.client_id if order is not None else None,
            liquidation=liquidation,
            outside=outside,
        )
        self.fill_log.append(fill)
        self._fills_by_account.setdefault(acct.address, []).append(fill)
        if order is not None:
            prev = order.filled_size
            order.filled_size = prev + size
            order.avg_px = (
                px if order.avg_px is None else (order.avg_px * prev + px * size) / order.filled_size
            )
            order.remaining = max(ZERO, order.remaining - size)
            order.fill_ids.append(tid)
        if end == 0:
            del acct.positions[coin]
        self._changed("fill", fill)
        self._after_position_change(acct, coin)
        return fill

    def _after_position_change(self, acct: Account, coin: str) -> None:
        """Shrink or cancel resting reduce-only orders that no longer reduce the position."""
        pos = acct.positions.get(coin, PositionState()).size
        for order in self.open_orders(acct.address, coin):
            if not order.reduce_only:
                continue
            reduces = pos != 0 and (pos > 0) != order.is_buy
            if not reduces:
                self._cancel(order, "reduceOnlyCanceled")
            elif order.trigger is None and order.remaining > abs(pos):
                order.remaining = abs(pos)

    def cancel(
        self, account: str, oid: int | None = None, client_id: str | None = None
    ) -> OrderRecord | None:
        """Cancel one open order of `account` by oid or client id; None when none is open."""
        order = self.order_by_id(account, oid) if oid is not None else None
        if order is None and client_id is not None:
            order = self.order_by_client_id(account, client_id)
        if order is None or not order.is_open:
            return None
        return self._cancel(order, CANCELED)

    def cancel_all(self, account: str, coin: str | None = None, status: str = CANCELED) -> list[OrderRecord]:
        """Cancel every open order of `account` (optionally one coin); returns them."""
        return [self._cancel(o, status) for o in self.open_orders(account, coin)]

    def _cancel(self, order: OrderRecord, status: str) -> OrderRecord:
        order.status = status
        order.remaining = ZERO
        order.status_ms = self.now_ms()
        self._changed("order", order)
        return order

    def release_client_id(self, account: str, client_id: str) -> None:
        """Let a new order reuse `client_id` (e.g. a modify that keeps the cloid)."""
        self._by_client_id.pop((account.lower(), client_id), None)

    def order_by_id(self, account: str, oid: int) -> OrderRecord | None:
        """The order `oid` if it belongs to `account`."""
        order = self.orders.get(oid)
        if order is None or order.account != account.lower():
            return None
        return order

    def order_by_client_id(self, account: str, client_id: str) -> OrderRecord | None:
        """The latest order of `account` with that client id (rejected ones included)."""
        oid = self._by_client_id.get((account.lower(), client_id))
        if oid is None:
            # A rejected order never claims its client id; find it anyway for status queries.
            for order in reversed(self.orders.values()):
                if order.account == account.lower() and order.client_id == client_id:
                    return order
            return None
        return self.orders[oid]

    def open_orders(self, account: str, coin: str | None = None) -> list[OrderRecord]:
        """Open orders of `account` (triggers included), oldest first."""
        addr = account.lower()
        return [o for o in self._open_now() if o.account == addr and (coin is None or o.coin == coin)]

    def _open_now(self) -> list[OrderRecord]:
        """Every open order, oldest first; drops closed ones from the index."""
        closed = [oid for oid, o in self._maybe_open.items() if not o.is_open]
        for oid in closed:
            del self._maybe_open[oid]
        return list(self._maybe_open.values())

    def fills(
        self, account: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[FillRecord]:
        """Executions of `account`, oldest first, optionally within [since_ms, until_ms]."""
        addr = account.lower()
        return [
            f
            for f in self._fills_by_account.get(addr, [])
            if (since_ms is None or f.time_ms >= since_ms) and (until_ms is None or f.time_ms <= until_ms)
        ]

    # ----- marks, triggers, liquidation ----------------------------------------------------

    def set_mark(self, coin: str, px: Decimal) -> None:
        """Move the mark; resting limits that are now crossed fill, triggers fire, liquidations run."""
        spec = self.market(coin)
        px = Decimal(px)
        if px <= 0:
            raise InvalidRequest("price must be positive")
        self.marks[coin] = spec.round_price(px) if spec.price_rule == "sigfig" else px
        self._changed("mark", coin)
        self._on_mark_move(coin)

    def _on_mark_move(self, coin: str) -> None:
        mark = self.marks[coin]
        bid, ask = self.best_bid_ask(coin)
        for order in self._open_now():
            if order.coin != coin or not order.is_open:
                continue
            acct = self.accounts[order.account]
            if order.trigger is not None and not order.triggered:
                if self._trigger_hit(order, mark):
                    self._fire_trigger(acct, order)
            elif order.limit_px is not None and (
                (order.is_buy and ask <= order.limit_px) or (not order.is_buy and bid >= order.limit_px)
            ):
                self._fill_resting(acct, order)
        self._check_liquidations()

    def _fill_resting(self, acct: Account, order: OrderRecord) -> None:
        size = order.remaining
        if order.reduce_only:
            pos = acct.positions.get(order.coin, PositionState()).size
            size = min(size, abs(pos))
        if size <= 0:
            return
        assert order.limit_px is not None
        self._fill(acct, order, size, order.limit_px, crossed=False)
        if order.remaining == 0 and order.is_open:
            order.status = FILLED
            order.status_ms = self.now_ms()
        self._changed("order", order)

    @staticmethod
    def _trigger_hit(order: OrderRecord, mark: Decimal) -> bool:
        assert order.trigger is not None
        px = order.trigger.trigger_px
        if order.trigger.kind == "tp":
            return mark <= px if order.is_buy else mark >= px
        return mark >= px if order.is_buy else mark <= px

    def _fire_trigger(self, acct: Account, order: OrderRecord) -> None:
        """A trigger fired: execute as market (or as a limit at its price), reduce-only shrinks."""
        spec = self.market(order.coin)
        order.triggered = True
        pos = acct.positions.get(order.coin, PositionState()).size
        if order.reduce_only:
            if pos == 0 or (pos > 0) == order.is_buy:
                self._cancel(order, "reduceOnlyCanceled")
                return
            if order.close_position or order.remaining > abs(pos):
                order.remaining = abs(pos)
                order.size = max(order.size, abs(pos)) if not order.close_position else abs(pos)
        assert order.trigger is not None
        if order.trigger.is_market:
            order.tif = "ioc"
        self._take(acct, spec, order)
        if order.remaining > 0 and order.tif != "ioc" and order.limit_px is not None:
            order.status = OPEN  # a triggered limit rests like a plain limit now
        elif order.filled_size > 0:
            order.status = FILLED
            order.remaining = ZERO
        else:
            self._cancel(order, CANCELED)
        order.status_ms = self.now_ms()
        self._changed("order", order)

    def _check_liquidations(self) -> None:
        for acct in list(self.accounts.values()):
            if not any(p.size != 0 for p in acct.positions.values()):
                continue
            if self.account_value(acct) < self.maintenance_margin(acct):
                for coin in list(acct.positions):
                    self.liquidate(acct.address, coin)

    def liquidate(self, account: str, coin: str) -> FillRecord | None:
        """Close the position at the mark as a liquidation fill; cancel that coin's reduce-only orders."""
        acct = self.account(account)
        self.market(coin)
        pos = acct.positions.get(coin)
        if pos is None or pos.size == 0:
            return None
        for order in self.open_orders(acct.address, coin):
            if order.reduce_only:
                self._cancel(order, "liquidatedCanceled")
        fill = self._fill(
            acct,
            None,
            abs(pos.size),
            self.marks[coin],
            crossed=True,
            coin=coin,
            is_buy=pos.size < 0,
            liquidation=True,
        )
        return fill

    def set_position(self, account: str, coin: str, size: Decimal) -> FillRecord | None:
        """A trade made outside the API (by hand on the website): move the position to `size` at the mark."""
        acct = self.account(account)
        self.market(coin)
        current = acct.positions.get(coin, PositionState()).size
        delta = Decimal(size) - current
        if delta == 0:
            return None
        return self._fill(
            acct,
            None,
            abs(delta),
            self.marks[coin],
            crossed=True,
            coin=coin,
            is_buy=delta > 0,
            outside=True,
        )

    def tick(self, steps: int = 1) -> dict[str, Decimal]:
        """Advance the seeded random walk of every mark by `steps`; returns the new marks."""
        for _ in range(steps):
            for coin in self.markets:
                shock = math.exp(self.rng.gauss(0.0, self.config.walk_volatility))
                self.set_mark(coin, self.marks[coin] * Decimal(repr(shock)))
        return dict(self.marks)

    def state(self) -> dict[str, Any]:
        """A JSON-ready snapshot: marks, accounts (balance, value, positions), open orders."""
        accounts = {}
        for addr, acct in self.accounts.items():
            accounts[addr] = {
                "balance": str(acct.balance),
                "account_value": str(self.account_value(acct)),
                "signers": sorted(acct.signers),
                # Masked: an API key is a credential too; the HMAC secret never leaves the engine.
                "api_keys": sorted(f"{key[:4]}…" for key in acct.api_keys),
                "positions": {
                    coin: {
                        "size": str(p.size),
                        "entry_px": str(p.entry_px),
                        "leverage": self.leverage_of(acct, coin),
                        "cross": self.is_cross(acct, coin),
                        "unrealized_pnl": str(self.unrealized_pnl(acct, coin)),
                    }
                    for coin, p in acct.positions.items()
                    if p.size != 0
                },
                "open_orders": [o.to_dict() for o in self.open_orders(addr)],
                "fills": len(self.fills(addr)),
            }
        return {
            "venue": self.name,
            "time": self.now_ms(),
            "marks": {c: str(p) for c, p in self.marks.items()},
            "accounts": accounts,
        }

    def copy_config(self, **changes: Any) -> None:
        """Replace config fields (e.g. partial_fill_probability) at run time."""
        self.config = replace(self.config, **changes)
