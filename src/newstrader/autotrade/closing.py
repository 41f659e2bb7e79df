"""Closing a position with reduce-only orders, reading the exchange before every attempt.

Shared by the kill switch (flatten, close), the time exit and the protection-failure policy,
so there is one way to close: read the exchange, send a reduce-only market order for what it
holds, re-read on any doubt. A reduce-only order can never open or grow a position, so a retry
after an ambiguous send cannot double anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from newstrader.domain import ZERO, OrderRequest, OrderResult, OrderStatus, OrderType, TimeInForce
from newstrader.venues.base import Ambiguous, AuthError, Rejected, Transient, Venue, VenueError

if TYPE_CHECKING:
    from newstrader.journal import Journal

log = structlog.get_logger("newstrader.autotrade")

LockFor = Callable[[str, str], AbstractAsyncContextManager[Any]]
OrderDone = Callable[[str, str], None]


def autotrade_client_id(tag: str, venue: str, coin: str, salt: str = "") -> str:
    """A client id for an order the auto trader sends (≤ 36 chars, Aster's charset)."""
    nonce = salt or str(time.time_ns())
    digest = hashlib.sha256(f"{tag}\n{venue}\n{coin}\n{nonce}".encode()).hexdigest()[:20]
    return f"nt-{tag[:4]}-{digest}"


@dataclass(slots=True)
class CloseReport:
    """What one close did: the size found, the orders sent, what the exchange holds afterwards."""

    venue: str
    coin: str
    size_before: Decimal
    remaining: Decimal | None  # None when the final read failed
    orders: list[OrderResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def flat(self) -> bool:
        return self.remaining == ZERO

    def as_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "coin": self.coin,
            "size_before": str(self.size_before),
            "remaining": None if self.remaining is None else str(self.remaining),
            "flat": self.flat,
            "orders": [
                {
                    "client_id": o.client_id,
                    "status": str(o.status),
                    "filled_size": str(o.filled_size),
                    "avg_price": None if o.avg_price is None else str(o.avg_price),
                    "error": o.error,
                }
                for o in self.orders
            ],
            "errors": list(self.errors),
        }


async def read_size(venue: Venue, coin: str) -> Decimal:
    """The exchange's signed size of `coin` (0 when flat), from a fresh read."""
    position = (await venue.positions()).get(coin)
    return ZERO if position is None else position.size


async def close_position(
    venue: Venue,
    coin: str,
    *,
    journal: Journal | None,
    tag: str,
    reason: str,
    attempts: int = 3,
) -> CloseReport:
    """Close whatever `venue` holds in `coin` with reduce-only market orders; re-read to confirm."""
    report = CloseReport(venue=venue.name, coin=coin, size_before=ZERO, remaining=None)
    for attempt in range(attempts):
        try:
            size = await read_size(venue, coin)
        except AuthError as exc:
            report.errors.append(f"read: {exc}")
            break
        except VenueError as exc:
            report.errors.append(f"read: {exc}")
            await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
            continue
        if attempt == 0:
            report.size_before = size
        if size == ZERO:
            report.remaining = ZERO
            break
        req = OrderRequest(
            coin=coin,
            is_buy=size < 0,
            size=abs(size),
            client_id=autotrade_client_id(tag, venue.name, coin, salt=f"{time.time_ns()}-{attempt}"),
            order_type=OrderType.MARKET,
            reduce_only=True,
            tif=TimeInForce.IOC,
            max_slippage=Decimal("0.05") * (attempt + 1),
        )
        await _journal_intent(journal, tag, venue.name, coin, attempt, req)
        log.warning(
            "autotrade_close_send",
            venue=venue.name,
            coin=coin,
            size=str(size),
            reason=reason,
            client_id=req.client_id,
        )
        try:
            result = await venue.place_order(req)
        except Ambiguous as exc:
            # Outcome unknown: the next loop turn re-reads the exchange before sending anything.
            report.errors.append(f"ambiguous: {exc}")
            await _journal_intent_result(journal, req.client_id, "ambiguous", error=str(exc))
            continue
        except Transient as exc:
            report.errors.append(f"transient: {exc}")
            await _journal_intent_result(journal, req.client_id, "failed", error=str(exc))
            await asyncio.sleep(exc.retry_after or min(0.2 * 2**attempt, 2.0))
            continue
        except (Rejected, AuthError, VenueError) as exc:
            report.errors.append(f"{type(exc).__name__}: {exc}")
            await _journal_intent_result(journal, req.client_id, "rejected", error=str(exc))
            if isinstance(exc, AuthError):
                break
            continue
        report.orders.append(result)
        await _journal_intent_result(journal, req.client_id, _intent_status(result), result=result)
    if report.remaining is None:
        try:
            report.remaining = await read_size(venue, coin)
        except VenueError as exc:
            report.errors.append(f"final read: {exc}")
    if report.remaining == ZERO and journal is not None:
        with contextlib.suppress(Exception):
            await journal.clear_cached_position(venue.name, coin)
    log.info(
        "autotrade_close_done",
        venue=venue.name,
        coin=coin,
        size_before=str(report.size_before),
        remaining=None if report.remaining is None else str(report.remaining),
        reason=reason,
        errors=report.errors or None,
    )
    return report


def _intent_status(result: OrderResult) -> str:
    """The journal's intent status for a close order's result."""
    if result.filled_size > 0:
        return "filled"
    if result.status is OrderStatus.REJECTED:
        return "rejected"
    return "failed"  # an IOC close that found nothing to match: the next attempt re-reads


async def _journal_intent(
    journal: Journal | None, tag: str, venue: str, coin: str, attempt: int, req: OrderRequest
) -> None:
    """Write the order to the journal before sending it; a journal problem never blocks a close."""
    if journal is None:
        return
    try:
        await journal.record_intent(
            f"{tag}:{venue}:{coin}", venue, coin, f"{tag}{attempt}", req.client_id, req
        )
    except Exception as exc:  # a close must go out even if the record cannot be written
        log.error("autotrade_journal_intent_failed", venue=venue, coin=coin, error=str(exc))


async def _journal_intent_result(
    journal: Journal | None,
    client_id: str,
    status: str,
    *,
    result: OrderResult | None = None,
    error: str | None = None,
) -> None:
    if journal is None:
        return
    try:
        await journal.update_intent(client_id, status, result=result, error=error)
    except Exception as exc:
        log.error("autotrade_journal_update_failed", client_id=client_id, error=str(exc))
