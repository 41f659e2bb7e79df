"""Hypothesis state machine: random interleavings of signals, outside trades, liquidations and faults.

The executor runs in-process over the real adapters (`build_venue`) and the real journal,
talking to the real simulator server. After each signal settles, every venue must hold
exactly the signal's target: never stacked, never doubled, whatever happened before.
"""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from tests.engine.sim_accounts import funded_venues

from newstrader.domain import OutcomeStatus, Side, Signal
from newstrader.engine.executor import Executor
from newstrader.engine.risk import Sizer
from newstrader.engine.settings import EngineSettings
from newstrader.journal import Journal

VENUES = ("hyperliquid", "aster")
MARKS = {"ETH": Decimal(2000), "SOL": Decimal(100)}
NOTIONAL = Decimal(1000)
# Outside trades in whole steps both venues accept, as multiples of the target.
OUTSIDE_FRACTIONS = (Decimal(-2), Decimal("-0.5"), Decimal(0), Decimal("0.3"), Decimal(1), Decimal("1.5"))
FAULTS = ("http_5xx", "http_429", "timeout", "drop_response_after_execute")
_run_ids = itertools.count()


def make_machine(sim: Any, workdir: Path, mode: str) -> type[RuleBasedStateMachine]:
    class EngineMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            sim.admin.reset()
            self.venues, self.address = funded_venues(sim, MARKS)
            db = workdir / f"machine-{next(_run_ids)}.db"
            self.journal = self.loop.run_until_complete(Journal.open(f"sqlite:///{db}"))
            config = EngineSettings(
                mode=mode, max_signal_age_s=15, backoff_base_s=0.01, ambiguous_grace_s=0.3
            )
            self.executor = Executor(self.venues, self.journal, config, Sizer(NOTIONAL, 3))
            self.signals = itertools.count()

        def position(self, venue: str, coin: str) -> Decimal:
            return Decimal(sim.admin.position(venue, self.address[venue], coin))

        @rule(coin=st.sampled_from(sorted(MARKS)), side=st.sampled_from([Side.LONG, Side.SHORT]))
        def signal(self, coin: str, side: Side) -> None:
            n = next(self.signals)
            signal = Signal(id=f"s{n}", news_id=f"n{n}", coin=coin, side=side)
            outcomes = self.loop.run_until_complete(self.executor.execute(signal))
            want = NOTIONAL / MARKS[coin] * side.sign
            for outcome in outcomes:
                assert outcome.status is OutcomeStatus.OK, (outcome.venue, outcome.reason)
                assert self.position(outcome.venue, coin) == want, (outcome.venue, outcome)

        @rule(
            venue=st.sampled_from(VENUES),
            coin=st.sampled_from(sorted(MARKS)),
            fraction=st.sampled_from(OUTSIDE_FRACTIONS),
        )
        def outside_trade(self, venue: str, coin: str, fraction: Decimal) -> None:
            sim.admin.set_position(venue, self.address[venue], coin, str(NOTIONAL / MARKS[coin] * fraction))

        @rule(venue=st.sampled_from(VENUES), coin=st.sampled_from(sorted(MARKS)))
        def liquidate(self, venue: str, coin: str) -> None:
            if self.position(venue, coin) != 0:
                sim.admin.liquidate(venue, self.address[venue], coin)

        @rule(venue=st.sampled_from(VENUES), kind=st.sampled_from(FAULTS))
        def fault(self, venue: str, kind: str) -> None:
            extra: dict[str, Any] = {"ms": 200} if kind == "timeout" else {}
            if kind == "http_429":
                extra["retry_after_s"] = 0.05
            endpoint = "order" if kind == "drop_response_after_execute" else None
            sim.admin.add_fault(venue, kind, count=1, endpoint=endpoint, **extra)

        def teardown(self) -> None:
            sim.admin.clear_faults()
            for venue in self.venues.values():
                self.loop.run_until_complete(venue.close())
            self.loop.run_until_complete(self.journal.close())
            self.loop.close()

    return EngineMachine


@pytest.mark.parametrize("mode", ["target", "close_then_open"])
def test_each_venue_holds_the_target_after_every_signal(sim: Any, tmp_path: Path, mode: str) -> None:
    machine = make_machine(sim, tmp_path, mode)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=6,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
