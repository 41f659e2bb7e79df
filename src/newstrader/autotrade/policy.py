"""The auto trader's settings as one immutable value, and the journal control keys it owns.

Built from the config's `[exits]` section (or directly in tests), so every part of the
auto trader reads the same numbers and the journal keys are spelled in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from newstrader.config import ExitsSettings

ProtectionFailurePolicy = Literal["close", "keep"]

PAUSED_KEY = "paused"  # the news pipeline checks this key before acting
PAUSED_REASON_KEY = "paused_reason"
PAUSED_SINCE_KEY = "paused_since"  # ISO UTC time of the pause, for the start-up warning and the page
LOSS_RESUME_BASELINE_KEY = "daily_loss_resume_baseline"


def hold_deadline_key(venue: str, coin: str) -> str:
    """Journal control key holding the time-exit deadline of one position."""
    return f"hold_deadline:{venue}:{coin}"


def fills_cursor_key(venue: str) -> str:
    """Journal control key holding the time of the newest fill ingested from a venue."""
    return f"fills_cursor:{venue}"


@dataclass(frozen=True, slots=True)
class ExitPolicy:
    """Take-profit / stop-loss distances (percent of the fill price), hold limit and loss limit."""

    take_profit_pct: Decimal | None = Decimal(2)
    stop_loss_pct: Decimal | None = Decimal(1)
    max_hold_s: float | None = None
    daily_loss_limit_usd: Decimal | None = None
    on_protection_failure: ProtectionFailurePolicy = "close"
    dead_man_switch_s: float | None = None
    check_interval_s: float = 5.0  # how often the monitor loop reads the exchanges

    def __post_init__(self) -> None:
        for name, value in (("take_profit_pct", self.take_profit_pct), ("stop_loss_pct", self.stop_loss_pct)):
            if value is not None and value <= 0:
                raise ValueError(f"exits.{name}: must be a positive percent, got {value}")
        if self.on_protection_failure not in ("close", "keep"):
            raise ValueError(
                f"exits.on_protection_failure: must be 'close' or 'keep', got {self.on_protection_failure!r}"
            )
        if self.max_hold_s is not None and self.max_hold_s <= 0:
            raise ValueError(f"exits.max_hold_s: must be positive, got {self.max_hold_s}")
        if self.daily_loss_limit_usd is not None and self.daily_loss_limit_usd <= 0:
            raise ValueError(f"exits.daily_loss_limit_usd: must be positive, got {self.daily_loss_limit_usd}")
        if self.check_interval_s <= 0:
            raise ValueError(f"exits.check_interval_s: must be positive, got {self.check_interval_s}")
        if self.dead_man_switch_s is not None and self.dead_man_switch_s <= 0:
            # Below Hyperliquid's 5 s minimum the switch schedules at that minimum (deadman.py).
            raise ValueError(f"exits.dead_man_switch_s: must be positive, got {self.dead_man_switch_s}")

    @property
    def protects(self) -> bool:
        """True when at least one of TP or SL is configured."""
        return self.take_profit_pct is not None or self.stop_loss_pct is not None

    @classmethod
    def from_settings(cls, exits: ExitsSettings | Mapping[str, Any], **overrides: Any) -> ExitPolicy:
        """Build from the config's `[exits]` section (a mapping is validated as that section first,
        so a bad key is named); `overrides` set what the section does not hold (check_interval_s)."""
        section = exits if isinstance(exits, ExitsSettings) else ExitsSettings.model_validate(exits)
        return cls(**{**section.model_dump(), **overrides})
