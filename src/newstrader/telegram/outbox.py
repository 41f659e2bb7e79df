"""One chat's outgoing alerts: bounded, coalesced, rate-limited, and never in the trader's way.

`put()` is synchronous and O(1): it files the alert (merging by key) and returns; a full
outbox drops its oldest alert and counts it. The chat's own task (`run`) waits for the first
alert, lets `coalesce_s` more arrive, waits out the chat's rate limit, and sends them all as one
message. A 429 puts the batch back and waits the `retry_after` the Bot API asked for; a timeout
or network failure puts it back and backs off. So a burst of headlines becomes a few messages,
and a Telegram outage costs the trader nothing but this task's memory, which is bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import structlog

from newstrader.telegram.alerts import Alert, render

log = structlog.get_logger("newstrader.telegram")

GROUP_MIN_INTERVAL_S = 3.0  # the Bot API allows a group 20 messages a minute
MAX_BACKOFF_S = 30.0


class SendError(Exception):
    """Sending one message failed."""


class RetryLater(SendError):
    """The Bot API said 429: wait `seconds`, then send again."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"rate limited: retry after {seconds} s")
        self.seconds = seconds


class SendFailed(SendError):
    """A timeout or network failure: the message may be sent again later."""


class SendRejected(SendError):
    """The Bot API refused the message itself (bad request, blocked by the user): not retried."""


Send = Callable[[int, str], Awaitable[None]]


class ChatOutbox:
    """The alerts waiting for one chat, and the task that sends them."""

    def __init__(
        self,
        chat_id: int,
        send: Send,
        *,
        min_interval_s: float = 1.0,
        coalesce_s: float = 0.5,
        max_items: int = 500,
    ) -> None:
        self.chat_id = chat_id
        self._send = send
        # Negative ids are groups and channels: the Bot API allows them fewer messages.
        self.min_interval_s = max(min_interval_s, GROUP_MIN_INTERVAL_S) if chat_id < 0 else min_interval_s
        self.coalesce_s = coalesce_s
        self.max_items = max_items
        self._pending: OrderedDict[str, Alert] = OrderedDict()
        self._dropped = 0
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._next_send = 0.0
        self.sent = 0
        self.failures = 0

    def put(self, alert: Alert) -> None:
        """File an alert; never blocks, never raises."""
        known = self._pending.get(alert.key)
        if known is not None:
            known.merge(alert)
        else:
            self._pending[alert.key] = Alert(alert.category, alert.key, alert.head, list(alert.parts))
            if len(self._pending) > self.max_items:
                self._pending.popitem(last=False)
                self._dropped += 1
        self._idle.clear()
        self._ready.set()

    def _take(self) -> tuple[list[Alert], int]:
        alerts, dropped = list(self._pending.values()), self._dropped
        self._pending.clear()
        self._dropped = 0
        self._ready.clear()
        return alerts, dropped

    def _put_back(self, alerts: list[Alert], dropped: int) -> None:
        """Return an unsent batch ahead of what arrived meanwhile (still bounded)."""
        newer = self._pending
        self._pending = OrderedDict((a.key, a) for a in alerts)
        for key, alert in newer.items():
            if key in self._pending:
                self._pending[key].merge(alert)
            else:
                self._pending[key] = alert
        while len(self._pending) > self.max_items:
            self._pending.popitem(last=False)
            dropped += 1
        self._dropped += dropped
        self._ready.set()

    async def run(self) -> None:
        """Send until cancelled: one message per coalescing window, spaced by the rate limit."""
        backoff = 1.0
        while True:
            if not self._pending:
                self._idle.set()
            await self._ready.wait()
            await asyncio.sleep(self.coalesce_s)  # the coalescing window: let the burst arrive
            wait = self._next_send - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # the chat's rate limit
            alerts, dropped = self._take()
            if not alerts and not dropped:
                continue
            try:
                await self._send(self.chat_id, render(alerts, dropped))
            except RetryLater as exc:
                self.failures += 1
                log.warning("telegram_rate_limited", chat_id=self.chat_id, retry_after_s=exc.seconds)
                self._put_back(alerts, dropped)
                self._next_send = time.monotonic() + exc.seconds
                continue
            except SendFailed as exc:
                self.failures += 1
                log.warning("telegram_send_failed", chat_id=self.chat_id, error=str(exc), retry_in_s=backoff)
                self._put_back(alerts, dropped)
                self._next_send = time.monotonic() + backoff
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            except SendRejected as exc:
                self.failures += 1
                log.error(
                    "telegram_message_rejected", chat_id=self.chat_id, error=str(exc), alerts=len(alerts)
                )
            else:
                self.sent += 1
                backoff = 1.0
            self._next_send = time.monotonic() + self.min_interval_s

    async def drain(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until everything filed so far was sent; True if it was."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
