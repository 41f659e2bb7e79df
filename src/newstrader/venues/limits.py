"""Rate limits: the one place that knows each venue's published weights and how fast we may spend them.

A `TokenBucket` holds half the venue's per-minute budget and refills the other half over the
minute, so no 60-second window (sliding or fixed) ever sees more than the published limit. A caller
over budget waits, it never fails; a 429's Retry-After empties the bucket and holds every caller.

Observation never starves execution: every request has a `Priority` (orders, then pre-trade reads,
then reconciliation, then the rest). Waiters are served highest priority first (FIFO within one),
and each priority below orders must leave a reserve of the bucket untouched (`RESERVE`), so a
burst of dashboard or reconciliation reads can never spend what the next order needs. Orders are
`Priority.ORDER` by construction; a read takes the priority of the `request_priority(...)` block
it runs in (default `PRE_TRADE`, so an unmarked read is never demoted below reconciliation).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger(__name__)

# Hyperliquid (docs §7): 1200 weight/min per IP.
HL_IP_WEIGHT_PER_MIN = 1200
_HL_INFO_LIGHT = frozenset(
    {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState", "exchangeStatus"}
)
# Aster (docs §7): 2400 request weight/min per IP, 1200 orders/min per account.
ASTER_IP_WEIGHT_PER_MIN = 2400
ASTER_ORDERS_PER_MIN = 1200
_ASTER_WEIGHTS = {
    "exchangeInfo": 1,
    "ticker/price": 1,
    "premiumIndex": 1,
    "time": 1,
    "order": 1,
    "allOpenOrders": 1,
    "openOrders": 1,
    "allOrders": 5,
    "batchOrders": 5,
    "countdownCancelAll": 10,
    "leverage": 1,
    "marginType": 1,
    "balance": 5,
    "account": 5,
    "accountWithJoinMargin": 5,  # the v3 name of `account`
    "positionRisk": 5,
    "userTrades": 5,
    "leverageBracket": 1,
    "commissionRate": 20,
    "listenKey": 1,
}


# Info replies whose weight grows with their length (docs "Rate limits"): +1 per 20 items
# (`candleSnapshot`: per 60), charged after the reply.
HL_PER_ITEM_INFO = frozenset(
    {
        "recentTrades",
        "historicalOrders",
        "userFills",
        "userFillsByTime",
        "fundingHistory",
        "userFunding",
        "nonUserFundingUpdates",
        "twapHistory",
        "userTwapSliceFills",
        "userTwapSliceFillsByTime",
        "delegatorHistory",
        "delegatorRewards",
        "validatorStats",
    }
)
HL_ITEMS_PER_WEIGHT = 20
HL_CANDLES_PER_WEIGHT = 60


class Priority(enum.IntEnum):
    """Who may spend a venue's request budget first (lower value first)."""

    ORDER = 0
    PRE_TRADE = 1
    RECONCILE = 2
    BACKGROUND = 3


# Fraction of a bucket's capacity each priority must leave unspent: the reserve kept for trading.
# Pre-trade reads share it with the orders they precede (after a 429 empties the bucket they must
# not wait for a reserve to refill: that would age the signal); they still queue behind orders.
RESERVE: dict[Priority, float] = {
    Priority.ORDER: 0.0,
    Priority.PRE_TRADE: 0.0,
    Priority.RECONCILE: 0.15,
    Priority.BACKGROUND: 0.3,
}
HEAD_NAP_S = 0.25  # a waiting head re-checks this often whether a higher priority arrived
_PRIORITY: ContextVar[Priority] = ContextVar("request_priority", default=Priority.PRE_TRADE)


@contextlib.contextmanager
def request_priority(priority: Priority) -> Iterator[None]:
    """Reads made inside this block (in this task) spend the budget at `priority`."""
    token = _PRIORITY.set(priority)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


def current_priority() -> Priority:
    return _PRIORITY.get()


def hyperliquid_items_weight(request_type: str, items: int) -> int:
    """The extra weight of a per-item info reply (`userFills` & co.): +1 per 20 items (candles: 60)."""
    if request_type == "candleSnapshot":
        return items // HL_CANDLES_PER_WEIGHT
    return items // HL_ITEMS_PER_WEIGHT if request_type in HL_PER_ITEM_INFO else 0


def hyperliquid_info_weight(request_type: str) -> int:
    """Weight of one POST /info by its `type`."""
    if request_type in _HL_INFO_LIGHT:
        return 2
    return 60 if request_type == "userRole" else 20


def hyperliquid_exchange_weight(batch_length: int) -> int:
    """Weight of one POST /exchange action carrying `batch_length` orders or cancels."""
    return 1 + batch_length // 40


def aster_request_weight(path: str, method: str = "GET", params: dict[str, str] | None = None) -> int:
    """Request weight of one Aster call, from the last path segment (e.g. /fapi/v3/positionRisk)."""
    name = path.rstrip("/").split("/fapi/", 1)[-1].split("/", 1)[-1]
    if name == "positionSide/dual":
        return 30 if method == "GET" else 1
    if name == "openOrders" and not (params or {}).get("symbol"):
        return 40
    if name == "ticker/price" and not (params or {}).get("symbol"):
        return 2
    return _ASTER_WEIGHTS.get(name, 1)


def aster_is_order(path: str, method: str) -> bool:
    """Does this call count against Aster's per-account ORDERS limit?"""
    return method == "POST" and path.rstrip("/").endswith(("/order", "/batchOrders"))


@dataclass
class TokenBucket:
    """A weighted token bucket: `capacity` tokens, refilled at `refill_per_s`; waits rather than fails."""

    name: str
    capacity: float
    refill_per_s: float
    clock: Callable[[], float] = time.monotonic
    waits: int = 0
    wait_seconds: float = 0.0
    spent: float = 0.0
    throttled: int = 0  # 429s / Retry-After seen
    _tokens: float = field(init=False)
    _stamp: float = field(init=False)
    _blocked_until: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._tokens = self.capacity
        self._stamp = self.clock()

    @classmethod
    def per_minute(
        cls, name: str, limit: float, *, clock: Callable[[], float] = time.monotonic
    ) -> TokenBucket:
        """Half the limit as burst, half refilled over 60 s: any minute stays within `limit`."""
        return cls(name, capacity=limit / 2, refill_per_s=limit / 2 / 60.0, clock=clock)

    def refill(self) -> None:
        """Back to a full burst now (see `LimitRegistry.refill`)."""
        self._tokens = self.capacity
        self._stamp = self.clock()
        self._blocked_until = 0.0

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.refill_per_s)
        self._stamp = now

    def delay_for(self, weight: float, priority: Priority = Priority.ORDER) -> float:
        """Seconds until `weight` tokens are available at `priority`, its reserve left untouched."""
        now = self.clock()
        self._refill(now)
        blocked = max(0.0, self._blocked_until - now)
        reserve = self.capacity * RESERVE[priority]
        need = min(weight + reserve, self.capacity) - self._tokens
        return max(blocked, need / self.refill_per_s if need > 0 else 0.0)

    def charge(self, weight: float) -> None:
        """Pay weight known only after the reply (Hyperliquid's per-item info weight)."""
        if weight > 0:
            self.take(weight)

    def observe_used(self, used: float, limit: float) -> None:
        """The venue said how much of this minute's `limit` is used (Aster `X-MBX-USED-WEIGHT-1M`):
        never believe in more tokens than the venue has left (others may share the IP)."""
        self._refill(self.clock())
        self._tokens = min(self._tokens, max(0.0, limit - used))

    @property
    def tokens(self) -> float:
        self._refill(self.clock())
        return self._tokens

    def take(self, weight: float) -> None:
        self._refill(self.clock())
        self._tokens -= min(weight, self.capacity)
        self.spent += weight

    def hold(self, seconds: float) -> None:
        """The venue said slow down (429 / Retry-After): empty the bucket and hold callers `seconds`."""
        now = self.clock()
        self._refill(now)
        self._tokens = min(self._tokens, 0.0)
        self._blocked_until = max(self._blocked_until, now + seconds)
        self.throttled += 1

    def snapshot(self) -> dict[str, float]:
        """Counters for metrics."""
        return {
            "waits": self.waits,
            "wait_seconds": round(self.wait_seconds, 6),
            "spent": self.spent,
            "throttled": self.throttled,
        }


class RateLimiter:
    """Spends from several buckets at once (e.g. IP weight and account orders), by priority.

    Waiters are served one at a time, highest priority first and in arrival order within one
    priority (a heavy request is not starved by a stream of light ones of its own rank).
    """

    def __init__(self, venue: str, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.venue = venue
        # Injected like the buckets' clock: a test's fake time must not replace asyncio.sleep for
        # every other loop in the process (stream threads would advance its clock).
        self._sleep = sleep
        self._cond = asyncio.Condition()
        self._queue: list[tuple[int, int]] = []
        self._seq = itertools.count()
        self.served: dict[Priority, int] = dict.fromkeys(Priority, 0)

    async def acquire(
        self, costs: Sequence[tuple[TokenBucket, float]], priority: Priority | None = None
    ) -> float:
        """Wait until every bucket can pay its cost at `priority` (default: the context's), then pay;
        returns the seconds waited."""
        rank = current_priority() if priority is None else priority
        if not self._queue and all(bucket.delay_for(weight, rank) <= 0 for bucket, weight in costs):
            # Nobody waits and every bucket can pay: pay now (no await between the check and the
            # payment), without the queue's lock and wake-ups, which cost more than the payment.
            for bucket, weight in costs:
                bucket.take(weight)
            self.served[rank] += 1
            return 0.0
        entry = (int(rank), next(self._seq))
        async with self._cond:
            heapq.heappush(self._queue, entry)
        held: set[int] = set()  # buckets that made this request wait (counted once)
        waited = 0.0
        try:
            while True:
                if self._queue[0] != entry:
                    async with self._cond:
                        await self._cond.wait_for(lambda: self._queue[0] == entry)
                delay = max((bucket.delay_for(weight, rank) for bucket, weight in costs), default=0.0)
                if delay <= 0:
                    break
                for i, (bucket, weight) in enumerate(costs):
                    if i not in held and bucket.delay_for(weight, rank) > 0:
                        held.add(i)
                        bucket.waits += 1
                if not waited:
                    log.info("rate_limit_wait", venue=self.venue, seconds=round(delay, 3), priority=rank.name)
                # Nap in short steps: a higher priority that arrives meanwhile takes the head.
                nap = min(delay, HEAD_NAP_S)
                await self._sleep(nap)
                waited += nap
            for i, (bucket, weight) in enumerate(costs):  # no await between the check and the payment
                if i in held:
                    bucket.wait_seconds += waited
                bucket.take(weight)
            self.served[rank] += 1
        finally:
            async with self._cond:
                self._queue.remove(entry)
                heapq.heapify(self._queue)
                self._cond.notify_all()
        return waited


class LimitRegistry:
    """Buckets shared by every adapter in the process: one per (venue kind, host) and per account."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}

    def bucket(self, key: tuple[str, ...], limit_per_min: float) -> TokenBucket:
        found = self._buckets.get(key)
        if found is None:
            found = self._buckets[key] = TokenBucket.per_minute(":".join(key), limit_per_min)
        return found

    def reset(self) -> None:
        """Forget every bucket (a test whose simulator was just reset starts from full budgets)."""
        self._buckets.clear()

    def refill(self) -> None:
        """Every bucket back to a full burst, counters kept: for adapters that stay up while the
        venue's own windows were just reset (a long-lived test stack between tests)."""
        for bucket in self._buckets.values():
            bucket.refill()

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Every bucket's counters, keyed by its name (for /metrics)."""
        return {bucket.name: bucket.snapshot() for bucket in self._buckets.values()}


REGISTRY = LimitRegistry()
