"""Prometheus metrics on a registry of our own, fed from the bot's bus and journal, with hooks.

What feeds what, so nothing is counted twice:
- The web app subscribes to the bot's bus (`feed_from_bus`) and counts what the rooms
  already publish: `decision` (news by outcome), `outcome` (per-venue signal outcomes, and
  venue errors by class from a failed outcome's reason), `order` (orders by venue and result),
  `fill`, `drift`, `alert` (quarantine / release) and `control` (pause).
- At each scrape, `LatencySync.sync(journal)` observes the latency ledger of outcomes journaled
  since the last scrape (histogram per stage pair and venue).
- At each scrape, the venues' rate-limit buckets (`venues.limits.REGISTRY`) give waits, wait
  seconds, weight spent and 429 holds per bucket.
- Rooms call the hooks below for what never reaches the bus, e.g. `venue_error(venue, class)`
  for errors that do not end in a failed outcome (a read during reconcile). A room that
  starts calling a hook for something the bus already carries must remove it from
  `observe_bus_event`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from newstrader.domain import VenueOutcome
from newstrader.venues.base import VenueError

if TYPE_CHECKING:
    from newstrader.botapi import EventBus
    from newstrader.journal import Journal

log = structlog.get_logger("newstrader.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)

# Stage pairs of the latency ledger reported as histograms (start stage, end stage).
LEDGER_STAGES: tuple[tuple[str, str], ...] = (
    ("published", "received"),
    ("received", "parsed"),
    ("parsed", "decided"),
    ("decided", "sent"),
    ("sent", "acked"),
    ("acked", "filled"),
    ("received", "filled"),
    ("published", "filled"),
)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

NEWS = Counter(
    "newstrader_news_total", "News items by the pipeline's decision.", ["outcome"], registry=REGISTRY
)
SIGNALS = Counter(
    "newstrader_signals_total",
    "Signal outcomes per venue: ok / skipped / failed.",
    ["venue", "outcome"],
    registry=REGISTRY,
)
ORDERS = Counter(
    "newstrader_orders_total", "Orders by venue and result.", ["venue", "result"], registry=REGISTRY
)
LATENCY = Histogram(
    "newstrader_stage_latency_seconds",
    "Latency of each stage of a signal, per venue.",
    ["stage", "venue"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
DRIFT = Counter(
    "newstrader_drift_events_total",
    "Differences found between exchange and cache.",
    ["venue", "kind"],
    registry=REGISTRY,
)
VENUE_ERRORS = Counter(
    "newstrader_venue_errors_total", "Venue errors by class.", ["venue", "error_class"], registry=REGISTRY
)
QUARANTINES = Counter(
    "newstrader_quarantines_total", "Times a venue was quarantined.", ["venue"], registry=REGISTRY
)
QUARANTINED = Gauge(
    "newstrader_venue_quarantined", "1 while a venue is quarantined.", ["venue"], registry=REGISTRY
)
PAUSED = Gauge("newstrader_paused", "1 while the operator has paused trading.", registry=REGISTRY)
FILLS = Counter("newstrader_fills_total", "Exchange fills seen, by venue.", ["venue"], registry=REGISTRY)


def news_decided(outcome: str) -> None:
    """Count one news item by the pipeline's decision (signal, ignored, duplicate, stale, ...)."""
    NEWS.labels(outcome=outcome or "unknown").inc()


def signal_outcome(venue: str, outcome: str) -> None:
    """Count one signal's outcome on one venue."""
    SIGNALS.labels(venue=venue, outcome=outcome or "unknown").inc()


def order_result(venue: str, result: str) -> None:
    """Count one order by venue and result."""
    ORDERS.labels(venue=venue, result=result or "unknown").inc()


def stage_latency(stage: str, seconds: float, venue: str = "") -> None:
    """Observe one stage's latency in seconds."""
    if seconds >= 0:
        LATENCY.labels(stage=stage, venue=venue).observe(seconds)


def ledger_latency(venue: str, stamps: dict[str, float]) -> None:
    """Observe every known stage pair of one latency ledger (stage → monotonic seconds)."""
    for start, end in LEDGER_STAGES:
        if start in stamps and end in stamps:
            stage_latency(f"{start}_to_{end}", float(stamps[end]) - float(stamps[start]), venue)


def venue_outcome(outcome: VenueOutcome) -> None:
    """Record what one per-venue outcome carries (for callers holding the object, e.g. benches)."""
    signal_outcome(outcome.venue, str(outcome.status))
    for order in outcome.orders:
        order_result(outcome.venue, str(order.status))
    ledger_latency(outcome.venue, outcome.latency.stamps)


def drift_event(venue: str, kind: str) -> None:
    """Count one reconciliation difference."""
    DRIFT.labels(venue=venue, kind=kind).inc()


def venue_error(venue: str, error_class: str) -> None:
    """Count one venue error by its class name (Transient, RateLimited, Rejected, AuthError, Ambiguous)."""
    VENUE_ERRORS.labels(venue=venue, error_class=error_class).inc()


def _count_retried(details: RetryDetails) -> None:
    """A venue read the transport retried (a stamina hook): counted like any venue error."""
    error = details.caused_by
    if isinstance(error, VenueError) and error.venue:
        venue_error(error.venue, type(error).__name__)


if _count_retried not in get_on_retry_hooks():
    set_on_retry_hooks([*get_on_retry_hooks(), _count_retried])


def quarantine(venue: str, active: bool) -> None:
    """Mark a venue as quarantined (counted once per entry) or healthy again."""
    if active:
        QUARANTINES.labels(venue=venue).inc()
    QUARANTINED.labels(venue=venue).set(1 if active else 0)


OWNED = Gauge(
    "newstrader_account_owned",
    "1 for each configured account this instance owns now, 0 while it stands by (shared journal).",
    ["instance", "venue"],
    registry=REGISTRY,
)
BUS_LAG = Gauge(
    "newstrader_bus_lag_items",
    "News-stream items not yet acked by an owned account's consumer.",
    ["venue"],
    registry=REGISTRY,
)


def set_cluster(
    instance: str, configured: Sequence[str], owned: Sequence[str], lag: Mapping[str, int]
) -> None:
    """Expose account ownership and per-account bus lag (only while owned: a standby has none)."""
    for venue in configured:
        OWNED.labels(instance=instance, venue=venue).set(1 if venue in owned else 0)
    BUS_LAG.clear()
    for venue, items in lag.items():
        BUS_LAG.labels(venue=venue).set(items)


def set_paused(paused: bool) -> None:
    """Expose the pause switch."""
    PAUSED.set(1 if paused else 0)


_ERROR_CLASSES = ("RateLimited", "Transient", "Rejected", "AuthError", "Ambiguous", "GiveUp", "Timeout")


def error_class_of(reason: str) -> str:
    """The error class a failed outcome's reason names ("Rejected: HTTP 404 ..." → "Rejected")."""
    head = reason.split(":", 1)[0].strip()
    for name in _ERROR_CLASSES:
        if head == name or head.startswith(name):
            return name
    return "other"


def observe_bus_event(event: dict[str, Any]) -> None:
    """Count one event the bot published on its bus (see the module docstring)."""
    kind = str(event.get("type") or "")
    venue = str(event.get("venue") or "")
    if kind == "decision":
        news_decided(str(event.get("outcome") or ""))
    elif kind == "outcome":
        status = str(event.get("status") or "")
        signal_outcome(venue, status)
        if status == "failed":
            venue_error(venue, error_class_of(str(event.get("reason") or "")))
    elif kind == "order":
        order_result(venue, str(event.get("status") or ""))
    elif kind == "fill":
        FILLS.labels(venue=venue).inc()
    elif kind == "drift":
        drift_event(venue, str(event.get("kind") or "drift"))
    elif kind == "alert" and event.get("kind") in ("venue_quarantined", "venue_released"):
        quarantine(venue, event.get("kind") == "venue_quarantined")
    elif kind == "control" and "paused" in event:
        set_paused(bool(event["paused"]))


async def feed_from_bus(bus: EventBus) -> None:
    """Count every bus event until cancelled (the web server runs this while it serves)."""
    queue = bus.subscribe()
    try:
        while True:
            event = await queue.get()
            if isinstance(event, dict):
                try:
                    observe_bus_event(event)
                except Exception as exc:  # metrics never break the feed
                    log.warning("metrics_event_failed", error=repr(exc))
    finally:
        bus.unsubscribe(queue)


class LatencySync:
    """Observes the latency ledgers of outcomes journaled since the previous scrape."""

    def __init__(self) -> None:
        self._last_id: int | None = None

    async def sync(self, journal: Journal, limit: int = 2000) -> int:
        rows = await journal.recent_outcomes(limit)
        ids = [int(r["id"]) for r in rows if r.get("id") is not None]
        if self._last_id is None and not ids:
            self._last_id = 0
            return 0
        new = [r for r in rows if self._last_id is None or int(r.get("id") or 0) > self._last_id]
        for row in new:
            ledger_latency(str(row.get("venue") or ""), dict(row.get("latency") or {}))
        if ids:
            self._last_id = max(max(ids), self._last_id or 0)
        return len(new)


class RateLimitCollector:
    """Reads the venues' rate-limit buckets at scrape time (`venues.limits.REGISTRY.snapshot()`)."""

    _FAMILIES = (
        ("waits", "newstrader_rate_limit_waits", "Times a request waited for its rate-limit bucket."),
        (
            "wait_seconds",
            "newstrader_rate_limit_wait_seconds",
            "Seconds spent waiting for rate-limit buckets.",
        ),
        ("spent", "newstrader_rate_limit_spent", "Weight spent from each rate-limit bucket."),
        ("throttled", "newstrader_rate_limit_throttled", "Times a venue said 429 and the bucket was held."),
    )

    def collect(self) -> Iterator[CounterMetricFamily]:
        try:
            from newstrader.venues.limits import REGISTRY as LIMITS

            snapshot = LIMITS.snapshot()
        except Exception as exc:  # the other metrics are still worth serving
            log.warning("metrics_rate_limits_unreadable", error=repr(exc))
            snapshot = {}
        for key, name, help_text in self._FAMILIES:
            family = CounterMetricFamily(name, help_text, labels=["bucket"])
            for bucket, counters in sorted(snapshot.items()):
                family.add_metric([bucket], float(counters.get(key, 0)))
            yield family


REGISTRY.register(RateLimitCollector())


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
