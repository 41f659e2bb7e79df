"""The one rule for an order whose outcome is not known: it is *in flight* until proven otherwise.

An intent is journaled before every send. When the reply is lost (`Ambiguous`), when a
redelivered operation finds its leg already sent, when a crash left the intent `pending`,
and when reconciliation finds one, the same question is asked: what became of it? The
venue is asked by client id; "not found" is only final once the order's validity window
(`Venue.order_validity_s`, from the intent's journal time) plus a grace has passed: before
that, a request delayed on the way may still execute, and sending the missing size would
double the position. While an intent is in flight its (venue, coin) lock stays held, so
nothing new is decided for that coin on that venue.

The venue enforces the same window: every order carries `valid_until(intent time)` as its
`not_after`, so a send held up after its intent was journaled (a paused owner woken after a
cluster takeover, a stalled limiter) is refused by the exchange once this rule may have
declared it never sent. The intent time is taken before the journal write, so the venue's
window closes no later than `deadline()` of the journaled `created_at` minus the grace.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import structlog

from newstrader.domain import OrderResult, OrderStatus, utcnow
from newstrader.engine.locks import VenueCoinState
from newstrader.engine.ports import ExecutionJournal
from newstrader.venues.base import Streaming, Venue, VenueError

log = structlog.get_logger("newstrader.engine")

UNRESOLVED = ("pending", "ambiguous")
NOT_SEEN = "venue never saw the order within its validity window"
# Asked again with backoff: every signed read spends venue budget (and, on Aster v3, a nonce).
POLL_FIRST_S = 0.1
POLL_MAX_S = 1.0


def intent_status(result: OrderResult) -> str:
    """The journal's status for what the venue said about an order."""
    if result.status is OrderStatus.REJECTED:
        return "rejected"
    if result.filled_size > 0:
        return "filled"
    return "acked"


class InFlightRule:
    """Decides what an intent with an unknown outcome became, waiting while it may still land."""

    def __init__(self, journal: ExecutionJournal, state: VenueCoinState, grace_s: float) -> None:
        self.journal = journal
        self.state = state
        self.grace_s = grace_s

    @staticmethod
    def valid_until(venue: Venue, intent_at: datetime) -> datetime:
        """The last instant the venue may accept an order whose intent was journaled at `intent_at`."""
        return intent_at + timedelta(seconds=venue.order_validity_s)

    def deadline(self, venue: Venue, sent_at: datetime) -> datetime:
        """After this instant an order journaled at `sent_at` can no longer execute: its venue
        window (`valid_until`) plus a grace for clock skew and a venue still processing it."""
        return self.valid_until(venue, sent_at) + timedelta(seconds=self.grace_s)

    def in_flight(self, venue: Venue, sent_at: datetime, now: datetime | None = None) -> bool:
        """True while an unanswered order journaled at `sent_at` may still reach the venue."""
        return (now or utcnow()) < self.deadline(venue, sent_at)

    async def resolve(
        self,
        venue: Venue,
        coin: str,
        client_id: str,
        sent_at: datetime,
        *,
        signal_id: str = "",
    ) -> OrderResult | None:
        """What became of `client_id`: the venue's answer, or None once it provably never executes.

        The result (or "never seen") is journaled on the intent. Errors while asking are
        logged and asked again; they never shorten the wait.
        """
        self.state.mark_in_flight(venue.name, coin, client_id)
        try:
            found = await self._resolve(venue, coin, client_id, sent_at, signal_id)
        finally:
            self.state.settle(venue.name, coin, client_id)
        if isinstance(venue, Streaming):
            # The account stream waits for this order's report before it counts as current for the
            # coin: now the venue has answered (a snapshot from here on shows it), or it never ran.
            if found is None:
                venue.stream.state.forget_order(client_id)
            else:
                venue.stream.state.order_answered(client_id)
        return found

    async def _resolve(
        self, venue: Venue, coin: str, client_id: str, sent_at: datetime, signal_id: str
    ) -> OrderResult | None:
        deadline = self.deadline(venue, sent_at)
        delay = POLL_FIRST_S
        order_log = log.bind(venue=venue.name, coin=coin, signal_id=signal_id, client_id=client_id)
        while True:
            try:
                found = await venue.order_status(client_id, coin)
            except VenueError as exc:
                order_log.warning("order_status_failed", error=str(exc))
                found = None
            if found is not None:
                await self.journal.update_intent(client_id, intent_status(found), result=found)
                order_log.info("intent_resolved", status=found.status.value, filled=str(found.filled_size))
                return found
            now = utcnow()
            if now >= deadline:
                await self.journal.update_intent(client_id, "failed", error=NOT_SEEN)
                order_log.warning("intent_expired", message=NOT_SEEN)
                return None
            await asyncio.sleep(min(delay, (deadline - now).total_seconds()))
            delay = min(delay * 2, POLL_MAX_S)
