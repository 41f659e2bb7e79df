"""The executor and reconciler in-process, over the real adapters, journal and simulator server.

What the end-to-end scenarios cannot pin down from outside: shared reads under
`position_cache_ttl_ms`, quarantine on a 429 storm and its release, hooks after every change,
and reconciliation that records drift without ever trading.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.engine.sim_accounts import funded_configs

from newstrader.domain import OutcomeStatus, Position, Side, Signal
from newstrader.engine.executor import Executor
from newstrader.engine.reconcile import Reconciler
from newstrader.engine.risk import Sizer
from newstrader.engine.settings import EngineSettings
from newstrader.journal import Journal
from newstrader.sim.accounts import SimAccounts
from newstrader.venues.factory import build_venue

MARKS = {"ETH": Decimal(2000), "SOL": Decimal(100)}
NOTIONAL = Decimal(1000)
READ_LABEL = {"hyperliquid": "clearinghouseState", "aster": "positionRisk"}


class Rig:
    """Fresh funded accounts on the simulator, both adapters and a journal."""

    def __init__(self, sim: Any, journal: Journal) -> None:
        self.sim = sim
        self.journal = journal
        self.configs, self.address = funded_configs(sim, MARKS, usd=1_000_000)
        self.venues = {name: build_venue(cfg) for name, cfg in self.configs.items()}

    def position(self, venue: str, coin: str) -> Decimal:
        return Decimal(self.sim.admin.position(venue, self.address[venue], coin))

    def reads(self, venue: str) -> int:
        counts = self.sim.admin.stats()["requests"].get(venue, {})
        return sum(n for label, n in counts.items() if READ_LABEL[venue] in label)

    def executor(self, **config: Any) -> Executor:
        return Executor(self.venues, self.journal, EngineSettings(**config), Sizer(NOTIONAL, 3))


@pytest.fixture
async def rig(sim: Any, tmp_path: Path) -> AsyncIterator[Rig]:
    journal = await Journal.open(f"sqlite:///{tmp_path / 'engine.db'}")
    r = Rig(sim, journal)
    yield r
    for venue in r.venues.values():
        await venue.close()
    await journal.close()


def _signal(n: int, coin: str, side: Side) -> Signal:
    return Signal(id=f"s{n}", news_id=f"n{n}-{time.time_ns()}", coin=coin, side=side)


async def test_cache_ttl_shares_only_reads_newer_than_the_signal(rig: Rig) -> None:
    """With a TTL, two signals that arrived before one read may share it; without, each reads."""
    shared = rig.executor(position_cache_ttl_ms=5000)
    before = {v: rig.reads(v) for v in rig.venues}
    arrived = time.monotonic()
    await asyncio.gather(
        shared.execute(_signal(1, "ETH", Side.LONG), received_at=arrived),
        shared.execute(_signal(2, "SOL", Side.SHORT), received_at=arrived),
    )
    assert {v: rig.reads(v) - before[v] for v in rig.venues} == {"hyperliquid": 1, "aster": 1}
    assert rig.position("hyperliquid", "SOL") == -10 and rig.position("aster", "ETH") == Decimal("0.5")

    # A signal that arrives after that read (and after our orders on the coin) never uses it.
    before = {v: rig.reads(v) for v in rig.venues}
    rig.sim.admin.set_position("aster", rig.address["aster"], "ETH", "0")
    outcomes = await shared.execute(_signal(3, "ETH", Side.LONG))
    assert {v: rig.reads(v) - before[v] for v in rig.venues} == {"hyperliquid": 1, "aster": 1}
    assert {o.venue: o.exchange_size_before for o in outcomes}["aster"] == 0
    assert rig.position("aster", "ETH") == Decimal("0.5")

    fresh = rig.executor()  # default: TTL off, one read per signal and venue
    before = {v: rig.reads(v) for v in rig.venues}
    arrived = time.monotonic()
    await asyncio.gather(
        fresh.execute(_signal(4, "ETH", Side.SHORT), received_at=arrived),
        fresh.execute(_signal(5, "SOL", Side.LONG), received_at=arrived),
    )
    assert {v: rig.reads(v) - before[v] for v in rig.venues} == {"hyperliquid": 2, "aster": 2}


async def test_rate_limit_storm_quarantines_one_venue_until_a_health_read(rig: Rig) -> None:
    # Each failed read already carries the transport's retries of the 429 (venues/retry.py): one
    # operation failed by rate limits counts once, and here one is enough to quarantine.
    executor = rig.executor(
        rate_limit_quarantine_count=1, quarantine_probe_s=3600, backoff_base_s=0.01, max_signal_age_s=10
    )
    rig.sim.admin.add_fault("aster", "http_429", probability=1.0, retry_after_s=0.01)
    outcomes = {o.venue: o for o in await executor.execute(_signal(1, "ETH", Side.LONG))}
    assert outcomes["hyperliquid"].status is OutcomeStatus.OK
    assert outcomes["aster"].status is OutcomeStatus.FAILED and "quarantined" in outcomes["aster"].reason
    assert executor.quarantine.is_quarantined("aster")
    events = await rig.journal.recent_events(10)
    assert any(e["kind"] == "venue_quarantined" and e["venue"] == "aster" for e in events)

    # While quarantined (no probe due), nothing is sent to Aster; Hyperliquid keeps trading.
    rig.sim.admin.clear_faults()
    outcomes = {o.venue: o for o in await executor.execute(_signal(2, "ETH", Side.SHORT))}
    assert outcomes["aster"].status is OutcomeStatus.SKIPPED and "quarantined" in outcomes["aster"].reason
    assert rig.position("hyperliquid", "ETH") == Decimal("-0.5")
    assert rig.position("aster", "ETH") == 0

    # When a probe is due, the signal's health read lifts the quarantine and the venue trades again.
    executor.quarantine.probe_interval_s = 0
    outcomes = {o.venue: o for o in await executor.execute(_signal(3, "ETH", Side.SHORT))}
    assert outcomes["aster"].status is OutcomeStatus.OK
    assert not executor.quarantine.is_quarantined("aster")
    assert rig.position("aster", "ETH") == Decimal("-0.5")
    events = await rig.journal.recent_events(10)
    assert any(e["kind"] == "venue_released" and e["venue"] == "aster" for e in events)


class RecordingHooks:
    """A TradeHooks implementation that remembers every call (the auto trader's seat)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Decimal, Decimal | None]] = []

    async def after_position_change(
        self, venue: str, coin: str, position: Position, fill_price: Decimal | None, *, op_id: str = ""
    ) -> None:
        self.calls.append((venue, coin, position.size, fill_price))


async def test_hooks_after_every_change_and_not_otherwise(rig: Rig) -> None:
    hooks = RecordingHooks()
    executor = Executor(
        rig.venues, rig.journal, EngineSettings(mode="close_then_open"), Sizer(NOTIONAL, 3), hooks
    )
    await executor.execute(_signal(1, "ETH", Side.LONG))
    assert sorted((v, size) for v, _, size, _ in hooks.calls) == [
        ("aster", Decimal("0.5")),
        ("hyperliquid", Decimal("0.5")),
    ]
    assert all(price is not None and price > 0 for *_, price in hooks.calls)
    hooks.calls.clear()
    await executor.execute(_signal(2, "ETH", Side.LONG))  # already there: no change, no call
    assert hooks.calls == []
    await executor.execute(_signal(3, "ETH", Side.SHORT))  # close, then open: two changes per venue
    per_venue = {v: [size for venue, _, size, _ in hooks.calls if venue == v] for v in rig.venues}
    assert per_venue == {v: [Decimal(0), Decimal("-0.5")] for v in rig.venues}


async def test_reconciler_records_drift_and_never_trades(rig: Rig) -> None:
    executor = rig.executor()
    reconciler = Reconciler(rig.venues, rig.journal, state=executor.state)
    await executor.execute(_signal(1, "ETH", Side.LONG))
    assert await reconciler.run_once() == []

    rig.sim.admin.liquidate("hyperliquid", rig.address["hyperliquid"], "ETH")  # cache has it, exchange not
    rig.sim.admin.set_position("aster", rig.address["aster"], "ETH", "0.8")  # size differs
    rig.sim.admin.set_position("aster", rig.address["aster"], "SOL", "-3")  # exchange has it, cache not
    orders_before = rig.sim.admin.stats()["requests"]
    drift = await reconciler.run_once()
    assert sorted((d.kind, d.venue, d.coin) for d in drift) == [
        ("missing_local_adopted", "aster", "SOL"),
        ("size_mismatch", "aster", "ETH"),
        ("stale_local_cleared", "hyperliquid", "ETH"),
    ]
    orders_after = rig.sim.admin.stats()["requests"]
    for venue, label in (("hyperliquid", "exchange:"), ("aster", "POST ")):
        sent = sum(n for k, n in orders_after.get(venue, {}).items() if k.startswith(label))
        sent_before = sum(n for k, n in orders_before.get(venue, {}).items() if k.startswith(label))
        assert sent == sent_before, f"the reconciler traded on {venue}"
    cache = await rig.journal.cached_positions()
    assert ("hyperliquid", "ETH") not in cache
    assert cache[("aster", "ETH")].size == Decimal("0.8")
    assert cache[("aster", "SOL")].size == Decimal(-3)
    assert await reconciler.run_once() == []  # the cache follows the exchange: no drift twice


async def test_a_flip_costs_two_round_trips_per_venue(rig: Rig) -> None:
    """Read (position and mark, in parallel), then one net order: the design's 2 round trips."""
    executor = rig.executor()
    await executor.execute(_signal(1, "ETH", Side.LONG))  # warms markets and leverage
    before = rig.sim.admin.stats()["requests"]
    outcomes = await executor.execute(_signal(2, "ETH", Side.SHORT))
    after = rig.sim.admin.stats()["requests"]
    for venue in rig.venues:
        delta = {k: n - before.get(venue, {}).get(k, 0) for k, n in after[venue].items()}
        sent = {k: n for k, n in delta.items() if n}
        assert sum(sent.values()) == 3, sent  # one position read, one mark read, one order
    for outcome in outcomes:
        ledger = outcome.latency
        assert outcome.status is OutcomeStatus.OK and len(outcome.orders) == 1
        for start, end in (("received", "decided"), ("decided", "sent"), ("sent", "acked")):
            ms = ledger.ms_between(start, end)
            assert ms is not None and ms >= 0


async def test_operator_coin_spelling_resolves_to_the_venue_listing_and_closes(rig: Rig) -> None:
    """`close kpepe` must find the venues' `kPEPE`: upper-casing it would match nothing and close nothing."""
    executor = rig.executor()
    assert await executor.resolve_coin("kpepe") == "kPEPE"
    assert await executor.resolve_coin(" eth ") == "ETH"
    assert await executor.resolve_coin("NOTACOIN") is None
    rig.sim.admin.set_price("kPEPE", Decimal("0.012"))
    rig.sim.admin.set_position("hyperliquid", rig.address["hyperliquid"], "kPEPE", Decimal(5000))
    coin = await executor.resolve_coin("KPEPE")
    assert coin is not None
    await executor.close(coin, "hyperliquid")
    assert rig.position("hyperliquid", "kPEPE") == 0


async def test_flatten_reports_a_venue_it_could_not_read_and_still_closes_the_others(rig: Rig) -> None:
    """One venue's failed read is that venue's outcome, never an exception hiding the others'."""
    await rig.executor().execute(_signal(1, "ETH", Side.LONG))
    # Aster signed by a key its account never approved: every signed read is refused at once.
    stranger = SimAccounts.fresh()
    unapproved = build_venue(
        {**rig.configs["aster"], "signer": stranger.aster_signer, "secret": stranger.aster_signer_key}
    )
    executor = Executor(
        {"hyperliquid": rig.venues["hyperliquid"], "aster": unapproved},
        rig.journal,
        EngineSettings(),
        Sizer(NOTIONAL, 3),
    )
    try:
        by_venue = {o.venue: o for o in await executor.flatten()}
    finally:
        await unapproved.close()
    assert by_venue["aster"].coin == "*" and by_venue["aster"].status is OutcomeStatus.FAILED
    assert by_venue["aster"].reason.startswith("flatten read failed"), by_venue["aster"].reason
    assert by_venue["hyperliquid"].status is OutcomeStatus.OK, by_venue["hyperliquid"].reason
    assert rig.position("hyperliquid", "ETH") == 0
    assert rig.position("aster", "ETH") == NOTIONAL / MARKS["ETH"]  # nothing was sent blind


@pytest.mark.parametrize("venue_name", ["hyperliquid", "aster"])
async def test_an_order_landing_after_the_client_gave_up_is_found_not_sent_twice(
    rig: Rig, venue_name: str
) -> None:
    """The request is held past the client's timeout, then executes: the engine must wait for it.

    Giving up on "not found" before the order's validity window ends would send the size again
    and, when the held request lands, double the position.
    """
    venue = build_venue(rig.configs[venue_name], timeout_s=0.8)  # gives up long before
    label = {"hyperliquid": "exchange:order", "aster": "POST /fapi/v3/order"}[venue_name]

    def orders_sent() -> int:
        counts = rig.sim.admin.stats()["requests"].get(venue_name, {})
        return sum(n for request, n in counts.items() if label in request)

    before = orders_sent()
    rig.sim.admin.add_fault(venue_name, "latency_ms", count=1, endpoint=label, ms=2500)
    executor = Executor({venue_name: venue}, rig.journal, EngineSettings(), Sizer(NOTIONAL, 3))
    try:
        [outcome] = await executor.execute(_signal(90, "ETH", Side.LONG))
    finally:
        await venue.close()
    assert outcome.status is OutcomeStatus.OK, outcome.reason
    assert rig.position(venue_name, "ETH") == NOTIONAL / MARKS["ETH"]
    assert orders_sent() - before == 1  # the held order was found; nothing was sent again
