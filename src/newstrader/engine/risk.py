"""Sizing: how much of a coin a signal asks for on one venue, or why it asks for nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from newstrader.domain import Market, Signal

_SECTION = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False, frozen=True)


class CoinSizing(BaseModel):
    """Per-coin overrides of the default size and leverage (`[sizing.per_coin.<COIN>]`)."""

    model_config = _SECTION

    notional_usd: Decimal | None = Field(default=None, gt=0, allow_inf_nan=False)
    leverage: int | None = Field(default=None, ge=1, le=200)


class SizingSettings(BaseModel):
    """How large a position a signal opens (the `[sizing]` section)."""

    model_config = _SECTION

    notional_usd: Decimal = Field(default=Decimal(100), gt=0, allow_inf_nan=False)
    leverage: int = Field(default=3, ge=1, le=200)
    equity_fraction: Decimal | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    per_coin: dict[str, CoinSizing] = Field(default_factory=dict)

    @field_validator("per_coin")
    @classmethod
    def _upper_coins(cls, value: dict[str, CoinSizing]) -> dict[str, CoinSizing]:
        return {coin.upper(): sizing for coin, sizing in value.items()}


_DEFAULTS = SizingSettings()


@dataclass(frozen=True, slots=True)
class SizePlan:
    """The signed target size on one venue, or the reason there is none."""

    target_size: Decimal
    leverage: int
    notional_usd: Decimal
    skip_reason: str | None = None


class Sizer:
    """notional_usd / mark, rounded down to the venue's step, with per-coin overrides."""

    def __init__(
        self,
        notional_usd: Decimal = _DEFAULTS.notional_usd,
        leverage: int = _DEFAULTS.leverage,
        overrides: Mapping[str, CoinSizing] | None = None,
        equity_fraction: Decimal | None = None,
    ) -> None:
        if notional_usd <= 0:
            raise ValueError("sizing.notional_usd must be positive")
        if equity_fraction is not None and not (0 < equity_fraction <= 1):
            raise ValueError("sizing.equity_fraction must be in (0, 1]")
        if leverage < 1:
            raise ValueError("sizing.leverage must be at least 1")
        self.notional_usd = notional_usd
        self.leverage = leverage
        self.overrides = {coin.upper(): o for coin, o in (overrides or {}).items()}
        self.equity_fraction = equity_fraction

    @classmethod
    def from_settings(cls, sizing: SizingSettings) -> Sizer:
        """Build from the `[sizing]` section."""
        return cls(
            notional_usd=sizing.notional_usd,
            leverage=sizing.leverage,
            overrides=sizing.per_coin,
            equity_fraction=sizing.equity_fraction,
        )

    def leverage_for(self, signal: Signal, market: Market) -> int:
        """Signal's leverage, else the coin's override, else the default; capped by the venue."""
        override = self.overrides.get(signal.coin.upper())
        wanted = (
            signal.leverage
            or (override.leverage if override and override.leverage else None)
            or self.leverage
        )
        return max(1, min(wanted, market.max_leverage)) if market.max_leverage >= 1 else wanted

    def needs_equity(self, signal: Signal) -> bool:
        """True when this signal is sized as a fraction of the venue account's equity."""
        override = self.overrides.get(signal.coin.upper())
        return (
            self.equity_fraction is not None
            and signal.notional_usd is None
            and (override is None or override.notional_usd is None)
        )

    def notional_for(self, signal: Signal, equity: Decimal | None = None) -> Decimal:
        """Signal's notional, else the coin's override, else equity × fraction, else the default."""
        override = self.overrides.get(signal.coin.upper())
        if signal.notional_usd is not None:
            return signal.notional_usd
        if override is not None and override.notional_usd is not None:
            return override.notional_usd
        if self.equity_fraction is not None and equity is not None:
            return equity * self.equity_fraction
        return self.notional_usd

    def plan(self, signal: Signal, market: Market, mark: Decimal, equity: Decimal | None = None) -> SizePlan:
        """The signed target for `signal` on a venue with `market` rules at price `mark`.

        With `equity_fraction` set, `equity` (the venue account's value in USD) is required.
        """
        notional = self.notional_for(signal, equity)
        leverage = self.leverage_for(signal, market)
        if self.needs_equity(signal) and (equity is None or equity <= 0):
            reason = "sizing.equity_fraction needs the account's equity"
            detail = "; the venue did not report it" if equity is None else f"; it is {equity}"
            return SizePlan(Decimal(0), leverage, notional, reason + detail)
        if mark <= 0:
            return SizePlan(Decimal(0), leverage, notional, f"no usable mark price for {signal.coin}")
        size = market.round_size(notional / mark)
        if size == 0 or size < market.min_size:
            return SizePlan(
                Decimal(0),
                leverage,
                notional,
                f"{notional} USD at {mark} rounds to {size} (step {market.size_step})",
            )
        if market.min_notional and size * mark < market.min_notional:
            return SizePlan(
                Decimal(0),
                leverage,
                notional,
                f"{size * mark:.2f} USD is below the venue's min notional {market.min_notional}",
            )
        return SizePlan(size * signal.side.sign, leverage, notional)
