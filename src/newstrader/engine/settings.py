"""The `[engine]` settings section: one model, one set of defaults, read by config and engine.

`config.Settings.engine` is this model, and the executor, reconciler and bot take it as is:
no second dataclass with its own defaults, no probing of settings objects by name.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EngineSettings(BaseModel):
    """How signals become orders (see the design's "engine")."""

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False, frozen=True)

    mode: Literal["target", "close_then_open"] = "target"
    max_signal_age_s: float = Field(default=30.0, gt=0)
    reconcile_interval_s: float = Field(default=30.0, gt=0)
    position_cache_ttl_ms: float = Field(default=0.0, ge=0)
    conflict_window_s: float = Field(default=0.0, ge=0)
    order_timeout_s: float = Field(default=5.0, gt=0)
    # Where a signal's decision reads the position: "stream" decides from the venue's account
    # stream while it is current (the REST read goes out once the order is answered; a stream that
    # was behind is corrected with one more order and journaled as `stream_lag`, a change after our
    # fill stands as `outside_change_after_fill`); "rest" reads before ordering.
    position_source: Literal["stream", "rest"] = "stream"
    # The venues' account streams (positions view, dashboard, drift from pushes) count as current
    # only while heard from within this long.
    stream_max_silence_ms: float = Field(default=5000.0, gt=0)
    # Advanced: how hard one operation tries. Sends per operation and venue (the age limit
    # usually ends it sooner), the backoff between sends after a transient refusal, and the
    # grace added to a venue's order validity window before an unseen order counts as never sent.
    max_attempts: int = Field(default=25, ge=1)
    backoff_base_s: float = Field(default=0.05, gt=0)
    backoff_max_s: float = Field(default=2.0, gt=0)
    ambiguous_grace_s: float = Field(default=1.0, ge=0)
    # Advanced: rate limits in a row that quarantine a venue, within this window; probe interval.
    rate_limit_quarantine_count: int = Field(default=5, ge=1)
    rate_limit_window_s: float = Field(default=10.0, gt=0)
    quarantine_probe_s: float = Field(default=5.0, gt=0)

    @property
    def in_flight_grace_s(self) -> float:
        """Added to a venue's validity window (which runs from the intent's time: the venue itself
        refuses the order after it): clock skew between us and the venue, and a request accepted
        at the window's end that the venue is still processing (bounded by the timeout)."""
        return self.ambiguous_grace_s + self.order_timeout_s
