"""Hypothesis state machine: stream faults interleaved with signals and outside trades.

`position_source = "stream"`: the executor decides from the venues' account streams while they
are current. The streams run for real (their event loop on a thread of its own, so they keep
reading between steps) against the simulator process, whose websocket faults cut the socket
(`ws_disconnect`), hold pushes back past the silence limit or just a little (`ws_stall_ms`), or
lose a position push (`ws_drop_message`). After every signal each venue must hold exactly the
signal's target: a stale stream must never lead to a trade on a stale position.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from tests.engine.sim_accounts import funded_venues

from newstrader.domain import OutcomeStatus, Side, Signal
from newstrader.engine.executor import Executor
from newstrader.engine.risk import Sizer
from newstrader.engine.settings import EngineSettings
from newstrader.journal import Journal
from newstrader.venues.base import Streaming

VENUES = ("hyperliquid", "aster")
MARKS = {"ETH": Decimal(2000), "SOL": Decimal(100)}
NOTIONAL = Decimal(1000)
OUTSIDE_FRACTIONS = (Decimal(-2), Decimal("-0.5"), Decimal(0), Decimal("0.3"), Decimal(1), Decimal("1.5"))
POSITION_PUSH = {"hyperliquid": "ws:clearinghouseState", "aster": "ws:ACCOUNT_UPDATE"}
MAX_SILENCE_S = 2.0
# (kind, endpoint, ms): a cut socket, a stall past the silence limit, a lost position push.
STREAM_FAULTS = {
    "disconnect": ("ws_disconnect", None, None),
    "long_stall": ("ws_stall_ms", None, 3000),
    "lost_push": ("ws_drop_message", "position", None),
}
# What happens between two signals: outside trades (their push on time, or late) and stream faults
# (a pending one meets the next push: an outside trade's, our own order's, Aster's 1 s marks).
DISTURBANCE = st.one_of(
    st.tuples(
        st.just("outside_trade"),
        st.sampled_from(VENUES),
        st.sampled_from(sorted(MARKS)),
        st.sampled_from(OUTSIDE_FRACTIONS),
        st.sampled_from([None, 200, 700]),
    ),
    st.tuples(st.just("stream_fault"), st.sampled_from(VENUES), st.sampled_from(sorted(STREAM_FAULTS))),
)
T = TypeVar("T")
_runs = itertools.count()


def make_machine(sim: Any, workdir: Path) -> type[RuleBasedStateMachine]:
    class StreamMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
            self.thread.start()
            sim.admin.reset()
            self.venues, self.address = funded_venues(sim, MARKS)
            db = workdir / f"stream-machine-{next(_runs)}.db"
            self.journal = self.run(Journal.open(f"sqlite:///{db}"))
            config = EngineSettings(
                position_source="stream", max_signal_age_s=15, backoff_base_s=0.01, ambiguous_grace_s=0.3
            )
            self.executor = Executor(self.venues, self.journal, config, Sizer(NOTIONAL, 3))
            self.run(self._start_streams())
            self.signals = itertools.count()

        def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
            return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

        async def _start_streams(self) -> None:
            for venue in self.venues.values():
                assert isinstance(venue, Streaming)
                venue.stream.state.max_silence_s = MAX_SILENCE_S
                venue.stream.ping_interval_s = MAX_SILENCE_S / 3
                venue.stream.start()
            for venue in self.venues.values():
                assert isinstance(venue, Streaming)
                assert await venue.stream.wait_current(20)

        def position(self, venue: str, coin: str) -> Decimal:
            return Decimal(sim.admin.position(venue, self.address[venue], coin))

        def size(self, coin: str, fraction: Decimal) -> str:
            return str(NOTIONAL / MARKS[coin] * fraction)

        @rule(
            resync=st.booleans(),
            disturbances=st.lists(DISTURBANCE, max_size=3),
            coin=st.sampled_from(sorted(MARKS)),
            side=st.sampled_from([Side.LONG, Side.SHORT]),
        )
        def signal(self, resync: bool, disturbances: list[tuple[Any, ...]], coin: str, side: Side) -> None:
            """Optionally let the streams resync, disturb them and the account, then send a signal."""
            if resync:
                self.run(self._wait_current())
            for disturbance in disturbances:
                getattr(self, disturbance[0])(*disturbance[1:])
            n = next(self.signals)
            signal = Signal(id=f"s{n}", news_id=f"n{n}", coin=coin, side=side)
            outcomes = self.run(self.executor.execute(signal))
            want = NOTIONAL / MARKS[coin] * side.sign
            for outcome in outcomes:
                assert outcome.status is OutcomeStatus.OK, (outcome.venue, outcome.reason)
                assert outcome.target_size == want, outcome
                assert self.position(outcome.venue, coin) == want, (outcome.venue, outcome)

        async def _wait_current(self) -> None:
            for venue in self.venues.values():
                assert isinstance(venue, Streaming)
                await venue.stream.wait_current(10)

        def outside_trade(self, venue: str, coin: str, fraction: Decimal, late_ms: int | None) -> None:
            """A trade outside the bot; with `late_ms`, its push (and all after it) is that late."""
            if late_ms is not None:
                sim.admin.add_fault(venue, "ws_stall_ms", count=1, endpoint=POSITION_PUSH[venue], ms=late_ms)
            sim.admin.set_position(venue, self.address[venue], coin, self.size(coin, fraction))

        def stream_fault(self, venue: str, fault: str) -> None:
            kind, endpoint, ms = STREAM_FAULTS[fault]
            sim.admin.add_fault(
                venue, kind, count=1, endpoint=POSITION_PUSH[venue] if endpoint else None, ms=ms
            )

        def teardown(self) -> None:
            sim.admin.clear_faults()
            for venue in self.venues.values():
                self.run(venue.close())
            self.run(self.journal.close())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    return StreamMachine


def test_stream_faults_never_lead_to_a_trade_on_a_stale_position(sim: Any, tmp_path: Path) -> None:
    run_state_machine_as_test(
        make_machine(sim, tmp_path),
        settings=settings(
            max_examples=4,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
