"""The one retry policy for venue reads, and the rule that orders are never retried here.

Retries live in exactly one layer per kind of request: a read (positions, marks, markets,
order status) is asked again by the transport, here, with stamina's jittered exponential
backoff, honouring a venue's Retry-After; an order is never resent by the transport, because
only the engine may decide to send again, after re-reading the exchange (`engine/executor.py`).
So the engine never retries a read, and the transport never retries an order.

Every retry stamina schedules goes through its instrumentation hooks (the web room counts
them as `newstrader_venue_errors_total`); the venue layer imports nothing of the web.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import stamina

from newstrader.venues.base import RateLimited, Transient

READ_ATTEMPTS = 3
READ_WAIT_INITIAL_S = 0.05
READ_WAIT_MAX_S = 2.0
RATE_LIMITED_WAIT_S = 0.001  # the address bucket already holds for the Retry-After


def read_backoff(exc: Exception) -> bool | float:
    """stamina's backoff hook: retry transient read failures; a stated Retry-After is the wait."""
    if isinstance(exc, RateLimited):
        return RATE_LIMITED_WAIT_S  # the limiter's hold delays the next request already
    if isinstance(exc, Transient):
        return exc.retry_after if exc.retry_after else True
    return False


def read_retries() -> AsyncIterator[stamina.Attempt]:
    """`async for attempt in read_retries(): with attempt: ...` around one read."""
    return stamina.retry_context(
        on=read_backoff,
        attempts=READ_ATTEMPTS,
        timeout=None,
        wait_initial=READ_WAIT_INITIAL_S,
        wait_max=READ_WAIT_MAX_S,
        wait_jitter=READ_WAIT_INITIAL_S,
    )
