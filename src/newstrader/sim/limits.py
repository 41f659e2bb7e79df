"""A weight-per-window rate limiter both simulated APIs use (per IP, per address).

Each key (an IP, an address) has a budget of `capacity` weight per `window_ms`. A request
that would overspend is refused and costs nothing, as on Hyperliquid and Binance-style venues.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Usage:
    events: deque[tuple[int, int]] = field(default_factory=deque)  # (time_ms, weight)
    used: int = 0


class WeightLimiter:
    """Sliding-window weight budget per key; deterministic with an injected clock."""

    def __init__(
        self, capacity: int, window_ms: int = 60_000, clock: Callable[[], int] | None = None
    ) -> None:
        self.capacity = capacity
        self.window_ms = window_ms
        self.enabled = True
        self._clock = clock or (lambda: int(time.monotonic() * 1000))
        self._usage: dict[str, _Usage] = {}

    def _expire(self, usage: _Usage, now: int) -> None:
        while usage.events and usage.events[0][0] <= now - self.window_ms:
            _, weight = usage.events.popleft()
            usage.used -= weight

    def used(self, key: str) -> int:
        """Weight spent by `key` in the current window."""
        usage = self._usage.get(key)
        if usage is None:
            return 0
        self._expire(usage, self._clock())
        return usage.used

    def try_spend(self, key: str, weight: int) -> bool:
        """Spend `weight` for `key` if the budget allows; False (and nothing spent) otherwise."""
        if not self.enabled:
            return True
        now = self._clock()
        usage = self._usage.setdefault(key, _Usage())
        self._expire(usage, now)
        if usage.used + weight > self.capacity:
            return False
        usage.events.append((now, weight))
        usage.used += weight
        return True

    def retry_after_s(self, key: str, weight: int = 1) -> float:
        """Seconds until `weight` more would fit for `key` (0 when it fits now)."""
        usage = self._usage.get(key)
        if usage is None:
            return 0.0
        now = self._clock()
        self._expire(usage, now)
        excess = usage.used + weight - self.capacity
        for at, spent in usage.events:
            if excess <= 0:
                break
            excess -= spent
            if excess <= 0:
                return max(0.0, (at + self.window_ms - now) / 1000)
        return 0.0 if usage.used + weight <= self.capacity else self.window_ms / 1000

    def reset(self) -> None:
        self._usage.clear()


class Counter:
    """A cumulative per-key counter with a cap (Hyperliquid's per-address action budget)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, key: str, n: int) -> int:
        self.counts[key] = self.counts.get(key, 0) + n
        return self.counts[key]

    def get(self, key: str) -> int:
        return self.counts.get(key, 0)

    def reset(self) -> None:
        self.counts.clear()
