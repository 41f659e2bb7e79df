"""Which venues are quarantined (auth errors, 429 storms) and when to probe them again."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class _VenueHealth:
    reason: str | None = None
    since: float = 0.0
    last_probe: float = 0.0
    rate_limited_at: deque[float] = field(default_factory=deque)


class Quarantine:
    """A venue here gets no new orders until a health read succeeds.

    Auth errors quarantine at once; `rate_limit_count` RateLimited errors within
    `rate_limit_window_s` do too. A probe is allowed every `probe_interval_s`.
    """

    def __init__(
        self,
        *,
        rate_limit_count: int = 5,
        rate_limit_window_s: float = 10.0,
        probe_interval_s: float = 5.0,
    ) -> None:
        self.rate_limit_count = rate_limit_count
        self.rate_limit_window_s = rate_limit_window_s
        self.probe_interval_s = probe_interval_s
        self._health: dict[str, _VenueHealth] = {}

    def _of(self, venue: str) -> _VenueHealth:
        health = self._health.get(venue)
        if health is None:
            health = self._health[venue] = _VenueHealth()
        return health

    def reason(self, venue: str) -> str | None:
        """Why the venue is quarantined, or None when it is healthy."""
        return self._of(venue).reason

    def is_quarantined(self, venue: str) -> bool:
        return self._of(venue).reason is not None

    def quarantine(self, venue: str, reason: str, now: float | None = None) -> bool:
        """Quarantine `venue`; True when it was healthy until now."""
        health = self._of(venue)
        stamp = time.monotonic() if now is None else now
        newly = health.reason is None
        health.reason = reason
        if newly:
            health.since = stamp
            health.last_probe = stamp
        return newly

    def note_rate_limited(self, venue: str, now: float | None = None) -> bool:
        """Count one 429; True when this one tips the venue into quarantine."""
        stamp = time.monotonic() if now is None else now
        hits = self._of(venue).rate_limited_at
        hits.append(stamp)
        while hits and stamp - hits[0] > self.rate_limit_window_s:
            hits.popleft()
        if len(hits) >= self.rate_limit_count and not self.is_quarantined(venue):
            hits.clear()
            return self.quarantine(
                venue, f"{self.rate_limit_count} rate limits within {self.rate_limit_window_s:g}s", stamp
            )
        return False

    def probe_due(self, venue: str, now: float | None = None) -> bool:
        """Whether a health read may be tried now (and, if so, stamp it as tried)."""
        health = self._of(venue)
        stamp = time.monotonic() if now is None else now
        if health.reason is None:
            return False
        if stamp - health.last_probe >= self.probe_interval_s:
            health.last_probe = stamp
            return True
        return False

    def release(self, venue: str) -> bool:
        """Lift the quarantine after a good health read; True when it was quarantined."""
        health = self._of(venue)
        was = health.reason is not None
        health.reason = None
        health.rate_limited_at.clear()
        return was

    def quarantined(self) -> dict[str, str]:
        """Venue → reason, for every venue currently quarantined."""
        return {name: h.reason for name, h in self._health.items() if h.reason is not None}
