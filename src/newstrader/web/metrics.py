"""Prometheus metrics on a registry of our own, with small hook functions any room may call.

Hooks (all cheap, safe to call from any task; labels are plain strings):

- `news_received(source, outcome)`         one per news item, with the pipeline's decision
- `signal_outcome(outcome)`                one per signal: ok / skipped / failed / superseded / ...
- `venue_outcome(outcome: VenueOutcome)`   per venue result: status, every order's result, stage latencies
- `order_result(venue, result)`            filled / partially_filled / resting / rejected / ambiguous / failed
- `stage_latency(stage, seconds, venue)`   one observation of one stage (e.g. "received_to_filled")
- `drift_event(venue, kind)`               stale_local_cleared / missing_local_adopted / size_mismatch
- `venue_error(venue, error_class)`        Transient / RateLimited / Rejected / AuthError / Ambiguous
- `rate_limit_wait(venue, seconds)`        time spent waiting for a rate-limit token or a 429 back-off
- `quarantine(venue, active)`              a venue entering (True) or leaving (False) quarantine
- `set_paused(paused)`                     the operator's pause switch

The web app also counts what it sees on the bot's bus (see `observe_bus_event`), so the
page's numbers and the metrics agree even before a room calls these hooks itself.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from newstrader.domain import VenueOutcome

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
)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

NEWS = Counter(
    "newstrader_news_total",
    "News items received, by source and outcome.",
    ["source", "outcome"],
    registry=REGISTRY,
)
SIGNALS = Counter("newstrader_signals_total", "Signals by outcome.", ["outcome"], registry=REGISTRY)
VENUE_OUTCOMES = Counter(
    "newstrader_venue_outcomes_total",
    "Per-venue results of acting on a signal.",
    ["venue", "status"],
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
RATE_LIMIT_WAITS = Counter(
    "newstrader_rate_limit_waits_total",
    "Times a request waited for the rate limiter.",
    ["venue"],
    registry=REGISTRY,
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "newstrader_rate_limit_wait_seconds_total",
    "Seconds spent waiting for the rate limiter.",
    ["venue"],
    registry=REGISTRY,
)
QUARANTINES = Counter(
    "newstrader_quarantines_total", "Times a venue was quarantined.", ["venue"], registry=REGISTRY
)
QUARANTINED = Gauge(
    "newstrader_venue_quarantined", "1 while a venue is quarantined.", ["venue"], registry=REGISTRY
)
PAUSED = Gauge("newstrader_paused", "1 while the operator has paused trading.", registry=REGISTRY)
FILLS = Counter("newstrader_fills_total", "Exchange fills seen, by venue.", ["venue"], registry=REGISTRY)


def news_received(source: str, outcome: str) -> None:
    """Count one news item with the pipeline's decision (signal, ignored, duplicate, ...)."""
    NEWS.labels(source=source or "unknown", outcome=outcome or "unknown").inc()


def signal_outcome(outcome: str) -> None:
    """Count one signal by its overall outcome."""
    SIGNALS.labels(outcome=outcome or "unknown").inc()


def order_result(venue: str, result: str) -> None:
    """Count one order by venue and result."""
    ORDERS.labels(venue=venue, result=result or "unknown").inc()


def stage_latency(stage: str, seconds: float, venue: str = "") -> None:
    """Observe one stage's latency in seconds."""
    if seconds >= 0:
        LATENCY.labels(stage=stage, venue=venue).observe(seconds)


def venue_outcome(outcome: VenueOutcome) -> None:
    """Record everything one per-venue outcome carries: status, order results, ledger stages."""
    VENUE_OUTCOMES.labels(venue=outcome.venue, status=str(outcome.status)).inc()
    for order in outcome.orders:
        order_result(outcome.venue, str(order.status))
    for start, end in LEDGER_STAGES:
        ms = outcome.latency.ms_between(start, end)
        if ms is not None:
            stage_latency(f"{start}_to_{end}", ms / 1000.0, outcome.venue)


def drift_event(venue: str, kind: str) -> None:
    """Count one reconciliation difference."""
    DRIFT.labels(venue=venue, kind=kind).inc()


def venue_error(venue: str, error_class: str) -> None:
    """Count one venue error by its class name (Transient, RateLimited, Rejected, AuthError, Ambiguous)."""
    VENUE_ERRORS.labels(venue=venue, error_class=error_class).inc()


def rate_limit_wait(venue: str, seconds: float) -> None:
    """Count one wait for the rate limiter and its duration."""
    RATE_LIMIT_WAITS.labels(venue=venue).inc()
    RATE_LIMIT_WAIT_SECONDS.labels(venue=venue).inc(max(seconds, 0.0))


def quarantine(venue: str, active: bool) -> None:
    """Mark a venue as quarantined (counted once per entry) or healthy again."""
    if active:
        QUARANTINES.labels(venue=venue).inc()
    QUARANTINED.labels(venue=venue).set(1 if active else 0)


def set_paused(paused: bool) -> None:
    """Expose the pause switch."""
    PAUSED.set(1 if paused else 0)


def observe_bus_event(kind: str, data: dict[str, Any]) -> None:
    """Count an event the bot published on its bus (the web app forwards each one here)."""
    venue = str(data.get("venue") or "")
    if kind == "drift":
        drift_event(venue, str(data.get("kind") or "drift"))
    elif kind == "fill":
        FILLS.labels(venue=venue).inc()


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
