"""The engine's pure parts: client ids, sizing, drift classification, quarantine rules."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from newstrader.domain import Market, Side, Signal
from newstrader.engine.client_ids import client_id
from newstrader.engine.quarantine import Quarantine
from newstrader.engine.reconcile import classify
from newstrader.engine.risk import CoinSizing, Sizer, SizingSettings
from newstrader.engine.settings import EngineSettings

ASTER_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
BTC = Market(
    coin="BTC",
    symbol="BTC",
    size_step=Decimal("0.00001"),
    price_tick=Decimal(1),
    min_notional=Decimal(10),
    max_leverage=40,
)


@given(st.text(min_size=1, max_size=200), st.sampled_from(["hl", "aster", "x" * 40]), st.text(max_size=30))
def test_client_ids_are_deterministic_and_valid_everywhere(news_id: str, venue: str, leg: str) -> None:
    first = client_id(news_id, venue, leg)
    assert first == client_id(news_id, venue, leg)
    assert ASTER_CLIENT_ID.match(first), first
    assert first.startswith("nt-")


def test_client_ids_differ_by_news_venue_and_leg() -> None:
    ids = {client_id(n, v, leg) for n in ("a", "b") for v in ("hl", "aster") for leg in ("t0", "t1")}
    assert len(ids) == 8


def _signal(side: Side = Side.LONG, **kw: object) -> Signal:
    return Signal(id="s1", news_id="n1", coin="BTC", side=side, **kw)  # type: ignore[arg-type]


def test_sizer_rounds_down_to_the_step_and_signs_by_side() -> None:
    sizer = Sizer(notional_usd=Decimal(100), leverage=5)
    long_plan = sizer.plan(_signal(), BTC, Decimal("60000"))
    assert long_plan.target_size == Decimal("0.00166")
    assert sizer.plan(_signal(Side.SHORT), BTC, Decimal("60000")).target_size == Decimal("-0.00166")
    assert long_plan.leverage == 5


def test_sizer_overrides_and_caps() -> None:
    sizer = Sizer(Decimal(100), 5, {"btc": CoinSizing(notional_usd=Decimal(600), leverage=100)})
    plan = sizer.plan(_signal(), BTC, Decimal("60000"))
    assert plan.target_size == Decimal("0.01")
    assert plan.leverage == 40  # capped at the venue's maximum
    assert sizer.plan(_signal(notional_usd=Decimal(60)), BTC, Decimal(60000)).target_size == Decimal("0.001")


def test_sizer_skips_below_min_notional_with_reason() -> None:
    plan = Sizer(Decimal(5), 1).plan(_signal(), BTC, Decimal("60000"))
    assert plan.skip_reason is not None and "min notional" in plan.skip_reason
    assert plan.target_size == 0


def test_sizer_from_the_sizing_section() -> None:
    section = {"notional_usd": "250", "leverage": 2, "per_coin": {"eth": {"notional_usd": 50}}}
    sizer = Sizer.from_settings(SizingSettings.model_validate(section))
    assert sizer.notional_usd == Decimal(250)
    assert sizer.overrides["ETH"].notional_usd == Decimal(50)


def test_drift_classification() -> None:
    assert classify(Decimal(0), Decimal("0.1")) == "stale_local_cleared"
    assert classify(Decimal("-0.1"), None) == "missing_local_adopted"
    assert classify(Decimal("0.2"), Decimal("0.1")) == "size_mismatch"
    assert classify(Decimal("0.1"), Decimal("0.1")) is None
    assert classify(Decimal(0), None) is None


def test_quarantine_on_rate_limit_storm_and_release() -> None:
    q = Quarantine(rate_limit_count=3, rate_limit_window_s=10, probe_interval_s=5)
    assert not q.note_rate_limited("hl", now=0)
    assert not q.note_rate_limited("hl", now=1)
    assert not q.note_rate_limited("aster", now=1)
    assert q.note_rate_limited("hl", now=2)
    assert q.is_quarantined("hl") and not q.is_quarantined("aster")
    assert not q.probe_due("hl", now=3)
    assert q.probe_due("hl", now=8)
    assert q.release("hl") and not q.is_quarantined("hl")


def test_quarantine_window_forgets_old_rate_limits() -> None:
    q = Quarantine(rate_limit_count=2, rate_limit_window_s=1)
    q.note_rate_limited("hl", now=0)
    assert not q.note_rate_limited("hl", now=5)


def test_engine_settings_name_a_bad_mode() -> None:
    try:
        EngineSettings.model_validate({"mode": "yolo"})
    except ValueError as exc:
        assert "mode" in str(exc) and "close_then_open" in str(exc)
    else:
        raise AssertionError("a bad mode was accepted")
    assert EngineSettings.model_validate({"mode": "close_then_open"}).mode == "close_then_open"


def test_one_default_per_engine_setting() -> None:
    """The config file's `[engine]` and the engine read one model (no second set of defaults)."""
    from newstrader.config import Settings

    assert Settings.model_fields["engine"].annotation is EngineSettings
    assert Settings().engine == EngineSettings()
