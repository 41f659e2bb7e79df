"""Chaos soak: the bot process against the simulator process under faults, outside trades,
liquidations and `kill -9` restarts; nothing lost, never doubled.

The plan (signals, faults, outside trades, liquidations, restarts) is drawn up front from
`--seed`, so a run repeats. Each step is applied, then the simulator (the truth) is read:

- after every step, no position on any venue is larger than the target size of its coin
  (outside trades are drawn within it, so anything larger was stacked by the bot: `doubled`);
- after every signal settles (its `POST /api/news` answered, or, when the bot was killed
  during it, the item redelivered to the restarted bot), every venue whose outcome for that
  signal is `ok` holds exactly the target (`mismatches` otherwise), except where a manual close
  or a liquidation landed right after the bot's fill (an `after_fill` step, armed in the
  simulator): there the venue must hold what that change left, never traded back
  (`mismatches` otherwise; `after_fill_accepted` counts those that stood);
- after a TP/SL kill and at the end, every held position carries exactly one TP and one SL
  (`unprotected` when one is missing, `double_protected` when one rests twice);
- after the run, every news item sent is in a journal with a final outcome (`lost` otherwise);
  every item the bot acknowledged (a 2xx from `POST /api/news`) has one, is not left
  `interrupted` and, when its signal executed, one outcome per venue (`news_lost` otherwise:
  an acknowledged item is never delivered again); the last journal holds no item, signal or
  order intent still unfinished and no executed signal without its venues' outcomes
  (`unfinished`); and every fill and resting order of the bot's accounts on the venues has its
  intent in a journal (`orphan_orders`: an order sent without a durable intent).

Restarts alternate between keeping the journal and starting on an empty one (8 of 10 keep it:
the in-flight, TP/SL and after-ack kills always do); pairs
alternate between killing the bot while a signal is in flight (then the item is redelivered, as
a webhook sender that got no answer would; an item answered 2xx before the kill is never
redelivered: the restarted bot resumes it from the kept journal) and while it is idle (9 and 1
of 10, counting the kinds below). Every fourth restart
is an in-flight kill (the orders held inside the venues), and one in eight a TP/SL kill: the bot
kills itself right after the next signal's TP/SL send, before the result is journaled. The other
mid-signal kills walk the news→order path in turn (issue 18: the item's record is only queued,
its commit shared with the order intent's, and the webhook answers before the orders):
`after-ack` (SIGKILL the moment the webhook's 202 arrives, before or while the order goes out;
never redelivered: the restarted bot must finish the item by itself), `queued` (right after the
item and its signal are queued, before their commit), `before-send` (the order's intent
committed, not yet sent), `after-send` (the order answered, its outcome not yet journaled) —
those three by the engine's test crash hooks, the coin flattened first so an order goes out, the
item posted without `?wait` (a 202 that leaves before the kill is an acknowledgement: no
redelivery), the restart keeping the armed bot's journal (an empty one started for it when the
restart's turn is an empty journal) — and `random` (a SIGKILL 0–150 ms after the POST). The bot and its
harness are the engine tests' own (`tests/harness/bots.py`): `python -m newstrader.cli
run` against `python -m newstrader.sim`, both on loopback.

    uv run --frozen python bench/soak.py [--signals 1000] [--restarts 10] [--coins 11] [--seed 1]

Prints a table and a final JSON line
`{"signals": .., "restarts": .., "faults": .., "mismatches": 0, "doubled": 0, "lost": 0,
"unprotected": 0, "double_protected": 0, "news_lost": 0, "unfinished": 0, "orphan_orders": 0, ...}`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from newstrader.engine.executor import CRASH_AFTER_SEND_ENV, CRASH_BEFORE_SEND_ENV
from newstrader.news.pipeline import CRASH_AFTER_QUEUE_ENV
from newstrader.sim import faults
from newstrader.venues.hyperliquid.signing import cloid_for

ROOT = Path(__file__).resolve().parents[1]
VENUES = ("hyperliquid", "aster")
FAULT_KINDS = faults.FAULT_KINDS  # every kind the simulator has, the stream faults included
# The in-flight restart: orders held this long inside the venue, within both venues' 10 s window.
IN_FLIGHT_HOLD_MS = 6000
IN_FLIGHT_WAIT_S = 10.0
ORDER_ENDPOINT = {"hyperliquid": "exchange:order", "aster": "POST /fapi/v3/order"}
# The pushed message that carries a position change, per venue (a `stream_lag` step holds it back).
POSITION_PUSH = {"hyperliquid": "ws:clearinghouseState", "aster": "ws:ACCOUNT_UPDATE"}
# The TP/SL kill: the executor's test crash hook, armed with the next signal's news id (its
# TP/SL operations are named `<news id>:<venue>:...`).
CRASH_ENV = CRASH_AFTER_SEND_ENV
# Where a mid-signal kill lands on the news→order path; each such restart takes the next in
# turn (module docstring). The hooked points arm the bot with the signal's news id (its order's
# operation id), so it kills itself exactly there; the restart after it keeps the armed bot's
# journal (which is an empty one when the restart's turn is an empty journal: `_post_armed`).
KILL_POINTS = ("after-ack", "queued", "before-send", "after-send", "random")
CRASH_HOOKS = {
    "queued": CRASH_AFTER_QUEUE_ENV,
    "before-send": CRASH_BEFORE_SEND_ENV,
    "after-send": CRASH_AFTER_SEND_ENV,
}
# Re-protection after a restart waits out the crashed pair's validity window (+ grace), then a
# monitor turn (5 s): this bounds the wait for every held position to carry one TP and one SL.
PROTECTED_WAIT_S = 90.0
# A news item's outcome while it is still being handled; anything else is final.
UNFINISHED_OUTCOMES = {"received", "accepted"}
INTERRUPTED = "interrupted"  # final, but resumed only by a redelivery (see Journal.interrupt_unfinished_news)
UNRESOLVED_INTENTS = ("pending", "ambiguous")


def engine_harness() -> ModuleType:
    """`tests/harness/bots.py`: World (fresh keys, config, bot process), MARKS, targets."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the test harness is a package of the repository, not installed
    return importlib.import_module("tests.harness.bots")


def servers() -> ModuleType:
    """`tests/harness/servers.py`: the simulator starter the tests use."""
    engine_harness()
    return importlib.import_module("tests.harness.servers")


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Step:
    """One thing the soak does. `kind`: signal, fault, outside, stream_lag, after_fill, liquidate,
    restart.

    `stream_lag`: an outside trade on the next signal's coin whose push is held back (`fault`, a
    `ws_stall_ms` on the position push), so the signal arrives while the stream is behind.
    `after_fill`: right after the next signal's order fills on `venue`, the position is closed
    by hand (`size`) or liquidated (`liquidate`), before the bot's read after its order."""

    kind: str
    coin: str | None = None
    side: str | None = None
    venue: str | None = None
    size: str | None = None  # outside trades: the signed size the account ends up holding
    news_id: str | None = None
    fault: dict[str, Any] | None = None
    keep_journal: bool | None = None  # restarts
    mid_signal: bool | None = None  # restarts: kill while the next signal is in flight
    kill_after_ms: int | None = None
    # Restarts: kill while the next signal's orders are held inside the venues (latency inside
    # their validity window), restart at once and redeliver: the held orders land after the restart.
    in_flight: bool | None = None
    # Restarts: the bot kills itself right after the next signal's TP/SL send (before the result
    # is journaled); restart on the same journal at once and redeliver.
    tpsl: bool | None = None
    # Restarts (the other mid-signal ones): where on the news→order path the kill lands (KILL_POINTS).
    point: str | None = None
    liquidate: bool | None = None  # after_fill: a liquidation rather than a trade to `size`


@dataclass(frozen=True)
class SoakConfig:
    signals: int = 1000
    restarts: int = 10
    coins: int = 11
    seed: int = 1
    fault_rate: float = 0.3  # share of signals preceded by one or two faults
    outside_rate: float = 0.06
    stream_lag_rate: float = 0.04  # share of signals just after an outside trade whose push is late
    liquidation_rate: float = 0.04
    # Share of signals whose order is followed at once by a manual close or a liquidation (drawn
    # from a separate stream of the seed, so the rest of the plan stays what it was).
    after_fill_rate: float = 0.05
    timeout_ms: int = 1500  # how long a `timeout` fault holds a request before its 504
    max_signal_age_s: float = 8.0
    mode: str = "target"


def coins_for(count: int) -> list[str]:
    """The first `count` coins of the harness's fixed marks (targets are exact at those marks)."""
    marks = engine_harness().MARKS
    if not 1 <= count <= len(marks):
        raise ValueError(f"--coins must be in 1..{len(marks)}")
    return list(marks)[:count]


def make_plan(cfg: SoakConfig) -> list[Step]:
    """The whole run, drawn from `cfg.seed` alone: the same seed gives the same steps."""
    rng = random.Random(cfg.seed)
    after_fill_rng = random.Random(cfg.seed * 1_000_003 + 17)
    harness = engine_harness()
    coins = coins_for(cfg.coins)
    restart_at = {round((k + 1) * cfg.signals / (cfg.restarts + 1)): k for k in range(cfg.restarts)}
    steps: list[Step] = []
    points = 0  # mid-signal kills placed on the news→order path so far
    for i in range(cfg.signals):
        since_signal = len(steps)
        if i in restart_at:
            k = restart_at[i]
            in_flight = k % 4 == 3
            tpsl = k % 8 == 2
            mid_signal = (k // 2) % 2 == 0 or in_flight or tpsl
            point = None
            if mid_signal and not (in_flight or tpsl):
                point = KILL_POINTS[points % len(KILL_POINTS)]
                points += 1
            steps.append(
                Step(
                    "restart",
                    # An acknowledged item is never redelivered: only a kept journal can finish it.
                    keep_journal=k % 2 == 0 or in_flight or tpsl or point == "after-ack",
                    mid_signal=mid_signal,
                    # Used by the `random` point only (drawn for every restart, so the rest of
                    # the plan stays what the seed made it): half in the first milliseconds,
                    # half anywhere in the signal.
                    kill_after_ms=rng.randint(5, 150)
                    if in_flight
                    else rng.choice((rng.randint(0, 4), rng.randint(5, 150))),
                    in_flight=in_flight,
                    tpsl=tpsl,
                    point=point,
                )
            )
        if rng.random() < cfg.outside_rate:
            coin = rng.choice(coins)
            full = harness.target_size(coin, "long")
            size = rng.choice((full, -full, full / 2, -full / 2, Decimal(0)))
            steps.append(Step("outside", coin=coin, venue=rng.choice(VENUES), size=str(size)))
        if rng.random() < cfg.liquidation_rate:
            steps.append(Step("liquidate", coin=rng.choice(coins), venue=rng.choice(VENUES)))
        if rng.random() < cfg.fault_rate:
            for _ in range(rng.choice((1, 1, 2))):
                steps.append(Step("fault", fault=_draw_fault(rng, cfg)))
        signal = Step(
            "signal",
            coin=rng.choice(coins),
            side=rng.choice(("long", "short")),
            news_id=f"soak-{cfg.seed}-{i}",
        )
        if rng.random() < cfg.stream_lag_rate:
            venue = rng.choice(VENUES)
            full = harness.target_size(signal.coin, "long")
            stall = {"venue": venue, "kind": "ws_stall_ms", "count": 1, "endpoint": POSITION_PUSH[venue]}
            steps.append(
                Step(
                    "stream_lag",
                    coin=signal.coin,
                    venue=venue,
                    size=str(rng.choice((full, -full, full / 2, -full / 2, Decimal(0)))),
                    fault={**stall, "ms": rng.randint(200, 1500)},
                )
            )
        # Only on a signal with no fault, late push or restart of its own: a stream that was
        # behind is corrected (one more order, as it must), and an order whose answer is lost
        # is re-read inside the send loop, which sends what is missing.
        draw = after_fill_rng.random()
        quiet = not any(s.kind in ("fault", "stream_lag", "restart") for s in steps[since_signal:])
        if draw < cfg.after_fill_rate and quiet:
            liquidate = after_fill_rng.random() < 0.5
            steps.append(
                Step(
                    "after_fill",
                    coin=signal.coin,
                    venue=after_fill_rng.choice(VENUES),
                    size=None if liquidate else "0",
                    liquidate=liquidate,
                )
            )
        steps.append(signal)
    return steps


def _draw_fault(rng: random.Random, cfg: SoakConfig) -> dict[str, Any]:
    venue = rng.choice(VENUES)
    kind = rng.choice(FAULT_KINDS)
    # Most faults hit the order send (where an ambiguous outcome hurts); the rest any request.
    on_orders = kind == "drop_response_after_execute" or rng.random() < 0.7
    spec: dict[str, Any] = {"venue": venue, "kind": kind, "count": rng.choice((1, 1, 2))}
    if kind.startswith("ws_"):  # they act on pushes, whatever the channel
        if kind == "ws_stall_ms":
            spec["ms"] = rng.randint(500, 8000)
        return spec
    if on_orders:
        spec["endpoint"] = ORDER_ENDPOINT[venue]
    if kind == "latency_ms":
        spec["ms"] = rng.randint(20, max(20, min(400, cfg.timeout_ms)))
    elif kind == "timeout":
        spec["ms"] = cfg.timeout_ms
    elif kind == "http_429":
        spec["retry_after_s"] = 0.2
    elif kind == "http_5xx":
        spec["status"] = rng.choice((500, 502, 503))
    elif kind == "drop_response_after_execute":
        spec["mode"] = rng.choice(("close", "502"))
    return spec


# ---------------------------------------------------------------- the run


@dataclass
class SoakReport:
    signals: int = 0
    restarts: int = 0
    faults: int = 0
    mismatches: int = 0
    doubled: int = 0
    lost: int = 0
    unprotected: int = 0  # held positions missing their TP or SL
    double_protected: int = 0  # held positions with a TP or SL resting twice
    news_lost: int = 0  # acknowledged items without a final outcome, or executed without every venue's
    unfinished: int = 0  # rows the last journal still holds unfinished after the final stop
    orphan_orders: int = 0  # fills / resting orders of the bot's accounts with no journaled intent
    outside_trades: int = 0
    late_pushes: int = 0  # outside trades just before a signal, their push held back
    after_fill_changes: int = 0  # manual closes / liquidations that landed right after our fill
    after_fill_accepted: int = 0  # of those, the ones the bot left standing (none traded back)
    acknowledged: int = 0  # items the bot answered 2xx for (checked by `news_lost`)
    liquidations: int = 0
    faults_by_kind: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (venue, status)
    restarts_by_kind: Counter[str] = field(default_factory=Counter)
    # Per kill point, what the killed bot's journal held for the item at that moment: `absent`
    # (not yet committed), `received` (committed, unfinished: the kill landed inside the
    # news→order window) or `final`; `:acked` when the bot had answered 2xx before the kill.
    kill_landings: Counter[str] = field(default_factory=Counter)
    drift_events: Counter[str] = field(default_factory=Counter)
    signal_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # IP weight the simulator charged per venue and request type over the whole run (start-ups,
    # restarts and the soak's own checks of positions included: those go to /admin, not the venues).
    weights: dict[str, dict[str, int]] = field(default_factory=dict)

    def weight_per_signal(self, venue: str) -> float:
        """Average venue weight a signal cost (everything the bot spent, divided by the signals)."""
        return sum(self.weights.get(venue, {}).values()) / max(1, self.signals)

    def bad(self) -> int:
        """Every counted failure: any of them fails the run."""
        return (
            self.mismatches
            + self.doubled
            + self.lost
            + self.unprotected
            + self.double_protected
            + self.news_lost
            + self.unfinished
            + self.orphan_orders
        )

    def line(self) -> dict[str, Any]:
        """The final JSON line: the six promised keys first, then what explains them."""
        return {
            "signals": self.signals,
            "restarts": self.restarts,
            "faults": self.faults,
            "mismatches": self.mismatches,
            "doubled": self.doubled,
            "lost": self.lost,
            "unprotected": self.unprotected,
            "double_protected": self.double_protected,
            "news_lost": self.news_lost,
            "unfinished": self.unfinished,
            "orphan_orders": self.orphan_orders,
            "acknowledged": self.acknowledged,
            "outside_trades": self.outside_trades,
            "late_pushes": self.late_pushes,
            "after_fill_changes": self.after_fill_changes,
            "after_fill_accepted": self.after_fill_accepted,
            "liquidations": self.liquidations,
            "faults_by_kind": dict(sorted(self.faults_by_kind.items())),
            "restarts_by_kind": dict(sorted(self.restarts_by_kind.items())),
            "kill_landings": dict(sorted(self.kill_landings.items())),
            "outcomes": {f"{v}:{s}": n for (v, s), n in sorted(self.outcomes.items())},
            "signal_p50_ms": round(_percentile(self.signal_ms, 0.5), 1),
            "signal_p95_ms": round(_percentile(self.signal_ms, 0.95), 1),
            "weight_per_signal": {v: round(self.weight_per_signal(v), 2) for v in VENUES},
            "weights": self.weights,
            "seconds": round(self.seconds, 1),
            "seconds_per_signal": round(self.seconds / max(1, self.signals), 3),
        }


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Soak:
    """Applies a plan to a simulator + bot process and checks the truth after every step."""

    def __init__(self, cfg: SoakConfig, workdir: Path, say: Callable[[str], None] = print) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.say = say
        self.harness = engine_harness()
        self.root = servers()
        # Start-up deadlines sized for a loaded 2-core box: a slow start is not what we measure.
        self.root.STARTUP_DEADLINE_S = max(self.root.STARTUP_DEADLINE_S, 120.0)
        self.harness.BOT_START_DEADLINE_S = max(self.harness.BOT_START_DEADLINE_S, 120.0)
        self.report = SoakReport()
        self.sent: list[str] = []  # every news id delivered, in order
        self.acked: set[str] = set()  # news ids the bot answered 2xx for: never delivered again
        self.journals: list[Path] = []
        self.sim: Any = None
        self.world: Any = None
        self._held: dict[tuple[str, str], Decimal] | None = None
        self._after_fill: Step | None = None  # armed for the next signal

    # -- life cycle

    def run(self) -> SoakReport:
        started = time.monotonic()
        self.sim = self.root.start_sim_server(seed=self.cfg.seed)
        try:
            for coin, price in self.harness.MARKS.items():
                self.sim.admin.set_price(coin, price)
            self.world = self.harness.World(sim=self.sim, workdir=self.workdir)
            self._start_bot(keep_journal=True)
            plan = make_plan(self.cfg)
            pending_restart: Step | None = None
            for step in plan:
                self._held = None  # the simulator is read at most once per step
                if step.kind == "restart":
                    if step.mid_signal:
                        pending_restart = step  # done during the next signal
                    else:
                        self._restart(step)
                elif step.kind == "signal":
                    self._signal(step, pending_restart)
                    pending_restart = None
                    if self.report.signals % 100 == 0:
                        self.say(
                            f"  {self.report.signals} signals, {self.report.restarts} restarts, "
                            f"{self.report.faults} faults, {self.report.bad()} problems"
                        )
                else:
                    self._apply(step)
                self._check_no_position_exceeds_target(step)
            self._check_protected()
            self._finish_bot()
            self._check_nothing_lost()
            self._check_journals()
            self._check_orders_have_intents()
            self.report.weights = self.sim.admin.stats().get("weights", {})
        finally:
            if self.world is not None:
                for bot in self.world.bots:
                    bot.stop()
            self.root.stop_sim_server(self.sim)
        self.report.seconds = time.monotonic() - started
        return self.report

    def _start_bot(self, *, keep_journal: bool, env: dict[str, str] | None = None) -> Any:
        if keep_journal and self.journals:
            name = self.journals[-1].name
        else:
            name = f"journal-{len(self.journals)}.db"
        bot = self.world.start_bot(
            mode=self.cfg.mode,
            journal_name=name,
            max_signal_age_s=self.cfg.max_signal_age_s,
            reconcile_interval_s=3600,
            env=env,
        )
        if bot.journal_path not in self.journals:
            self.journals.append(bot.journal_path)
        return bot

    def _kill(self) -> None:
        bot = self.world.bot
        bot.process.kill()  # SIGKILL: no shutdown path runs
        bot.process.wait(timeout=20)
        bot.http.close()

    def _restart(self, step: Step, *, keep_journal: bool | None = None) -> Any:
        """SIGKILL the bot and start it again; on `step`'s journal unless `keep_journal` says."""
        self._kill()
        self.report.restarts += 1
        journal = "kept" if step.keep_journal else "empty"
        when = (
            "in-flight"
            if step.in_flight
            else "tpsl"
            if step.tpsl
            else step.point
            if step.point not in (None, "random")
            else "mid-signal"
            if step.mid_signal
            else "idle"
        )
        kind = f"{journal}-journal/{when}"
        self.report.restarts_by_kind[kind] += 1
        return self._start_bot(keep_journal=bool(step.keep_journal if keep_journal is None else keep_journal))

    def _finish_bot(self) -> None:
        code = self.world.bot.stop()
        if code != 0:
            self.report.problems.append(f"final bot stop exited {code}")

    # -- steps

    def _apply(self, step: Step) -> None:
        if step.kind == "fault":
            assert step.fault is not None
            self.sim.admin.add_fault(**step.fault)
        elif step.kind == "outside":
            self.world.outside_trade(step.venue, step.coin, step.size)
            self.report.outside_trades += 1
        elif step.kind == "stream_lag":
            assert step.fault is not None
            self.sim.admin.add_fault(**step.fault)
            self.world.outside_trade(step.venue, step.coin, step.size)
            self.report.outside_trades += 1
            self.report.late_pushes += 1
        elif step.kind == "liquidate":
            self.world.liquidate(step.venue, step.coin)
            self.report.liquidations += 1
        elif step.kind == "after_fill":
            assert step.venue and step.coin
            address = self.world.keys.address(step.venue)
            self.sim.admin.after_next_fill(step.venue, address, step.coin, step.size)
            self._after_fill = step

    def _signal(self, step: Step, restart: Step | None) -> None:
        assert step.news_id and step.coin and step.side
        self.sent.append(step.news_id)
        begin = time.monotonic()
        if restart is None:
            reply = self._post(step)
        elif restart.tpsl:  # its TP/SL operations are `<news id>:<venue>:...`
            reply = self._post_armed(step, restart, {CRASH_ENV: f"{step.news_id}:"}, wait=True)
        elif restart.point == "after-ack":
            reply = self._post_and_kill_after_ack(step, restart)
        elif restart.point in CRASH_HOOKS:  # its order's operation id is the news id
            env = {CRASH_HOOKS[restart.point]: step.news_id}
            reply = self._post_armed(step, restart, env, wait=False)
        else:
            reply = self._post_and_kill(step, restart)
        self.report.signal_ms.append((time.monotonic() - begin) * 1000)
        self._count_faults()
        changed = self._disarm_after_fill()
        self.report.signals += 1
        if reply is None:
            if step.news_id not in self.acked:  # an acknowledged one is counted as news_lost
                self._problem("lost", f"{step.news_id}: no answer from the bot")
            return
        self._check_signal(step, reply, changed)
        if restart is not None and restart.tpsl:
            self._check_protected({step.coin})

    def _post(self, step: Step, *, quiet: bool = False) -> dict[str, Any] | None:
        try:
            reply: dict[str, Any] = self.world.bot.news(
                step.coin,
                step.side,
                news_id=step.news_id,
                title=f"soak {step.side} {step.coin} {step.news_id}",
            )
        except Exception as exc:  # an answer that is not 202 is a finding, not a crash of the soak
            if not quiet:
                self.report.problems.append(f"{step.news_id}: {exc!r}"[:300])
            return None
        self._acknowledged(step)
        return reply

    def _acknowledged(self, step: Step) -> None:
        assert step.news_id
        if step.news_id not in self.acked:
            self.acked.add(step.news_id)
            self.report.acknowledged += 1

    def _post_and_kill(self, step: Step, restart: Step) -> dict[str, Any] | None:
        """Deliver the item, SIGKILL the bot while it handles it, restart, redeliver (a webhook retry).

        An in-flight restart first has the venues hold the next order requests (inside their
        validity window) and kills once they sit in the venues, so they land after the restart."""
        first: list[Any] = []
        held_from = self._hold_orders() if restart.in_flight else None
        sender = threading.Thread(target=lambda: first.append(self._post_quietly(step)), daemon=True)
        sender.start()
        if held_from is not None:
            self._wait_orders_held(held_from)
        else:
            time.sleep(
                (restart.kill_after_ms or 0) / 1000
            )  # chaos timing: where in the signal the kill lands
        self._kill()
        self._note_landing(step, restart)
        self._restart(restart)
        sender.join(timeout=60)
        return self._redeliver(step, first[0] if first else None, kept=bool(restart.keep_journal))

    def _post_armed(
        self, step: Step, restart: Step, env: dict[str, str], *, wait: bool
    ) -> dict[str, Any] | None:
        """Restart the bot armed with a test crash hook (`env`) for this signal, deliver the
        item, let the bot kill itself there, restart on the armed bot's journal and redeliver
        it unless the bot had answered 2xx. An empty-journal `restart` starts the armed bot on
        an empty journal (its drift adopted from the venues): the restart after the hook's kill
        must still recover from a journal. Without `wait` the POST has no `?wait`: a 202 that
        left before the kill (as it may once the order intent is durable) is an acknowledgement,
        and the restarted bot must finish the item by itself.

        The coin is flattened first (an outside trade) so the signal sends an order and opens a
        position with TP/SL; the restarted bot must reach the target once and protect it once."""
        self._kill()
        for venue in VENUES:
            self.world.outside_trade(venue, step.coin, "0")
        self._held = None
        armed = self._start_bot(keep_journal=bool(restart.keep_journal), env=env)
        first = self._post_quietly(step) if wait else self._post_without_wait(step)
        with contextlib.suppress(subprocess.TimeoutExpired):  # the hook ends it, answered or not
            armed.process.wait(timeout=30)
        if armed.process.returncode != 137:
            self.report.problems.append(
                f"{step.news_id}: the {restart.point or 'TP/SL'} kill did not fire "
                f"(exit {armed.process.returncode})"
            )
        self._kill()
        self._note_landing(step, restart)
        self._restart(restart, keep_journal=True)
        return self._redeliver(step, first, kept=True)

    def _post_and_kill_after_ack(self, step: Step, restart: Step) -> dict[str, Any] | None:
        """POST without `?wait` and SIGKILL the bot the moment its 202 arrives (the orders are
        still to go out, or on their way). The sender has its answer and never delivers the item
        again: the restarted bot (same journal) must finish it by itself."""
        first = self._post_without_wait(step)
        if first is None:  # no 202: a finding (the item is redelivered like any lost answer)
            self.report.problems.append(f"{step.news_id}: no 202 before the after-ack kill")
        self._kill()
        self._note_landing(step, restart)
        self._restart(restart)
        return self._redeliver(step, first, kept=bool(restart.keep_journal))

    def _post_without_wait(self, step: Step) -> dict[str, Any] | None:
        """`POST /api/news` without `?wait`: the 202 (acknowledged), or None when none came."""
        assert step.news_id
        body = {
            "id": step.news_id,
            "title": f"soak {step.side} {step.coin} {step.news_id}",
            "coin": step.coin,
            "side": step.side,
            "source": "test",
        }
        try:
            reply: dict[str, Any] = self.world.bot.post_news(body)
        except Exception:  # the process went down before answering
            return None
        self._acknowledged(step)
        return reply

    def _note_landing(self, step: Step, restart: Step) -> None:
        """Where the kill landed for this item: its row in the killed bot's journal, read now."""
        rows = _journal_rows(self.journals[-1], "SELECT outcome FROM news WHERE id = ?", step.news_id)
        state = (
            "absent"
            if not rows
            else rows[0]["outcome"]
            if rows[0]["outcome"] in UNFINISHED_OUTCOMES
            else "final"
        )
        where = (
            "in-flight" if restart.in_flight else "tpsl" if restart.tpsl else restart.point or "mid-signal"
        )
        acked = ":acked" if step.news_id in self.acked else ""  # a 2xx came before the kill
        self.report.kill_landings[f"{where}:{state}{acked}"] += 1

    def _redeliver(self, step: Step, first: dict[str, Any] | None, *, kept: bool) -> dict[str, Any] | None:
        """After a kill: an item the bot acknowledged (a 2xx) on a kept journal is not sent again
        (its sender has its answer): the restarted bot must finish it by itself. Otherwise the
        item is delivered again (a webhook retry after a lost answer, or a replay onto an empty
        journal)."""
        if first is not None and kept:
            if first.get("signal") is None:
                return first  # decided without a signal; its news outcome is checked
            done = self._accepted_earlier(step)
            if done is None:
                self._problem("news_lost", f"{step.news_id}: acknowledged, unknown to the restarted bot")
            return done
        reply = self._post(step)
        if reply is not None and reply.get("signal") is None:
            # A duplicate: the first delivery was accepted before the kill landed, and the
            # restarted bot resumed it (kept journal) or it had finished. Check its signal.
            reply = self._accepted_earlier(step) or (first if first is not None else reply)
        return reply

    def _hold_orders(self) -> dict[str, int]:
        """Have each venue hold its next order request; the order counts before it."""
        for venue in VENUES:
            self.sim.admin.add_fault(
                venue, "latency_ms", count=1, ms=IN_FLIGHT_HOLD_MS, endpoint=ORDER_ENDPOINT[venue]
            )
        return {v: self.world.orders_sent(v) for v in VENUES}

    def _wait_orders_held(self, before: dict[str, int]) -> None:
        """Until the order requests sit in the venues (a venue already at target sends none)."""
        deadline = time.monotonic() + IN_FLIGHT_WAIT_S
        while time.monotonic() < deadline:
            if all(self.world.orders_sent(v) > before[v] for v in VENUES):
                return
            time.sleep(0.02)  # poll interval

    def _accepted_earlier(self, step: Step) -> dict[str, Any] | None:
        """The signal an earlier delivery of this item accepted, once every venue has its outcome."""
        bot = self.world.bot
        rows = bot.rows(
            "SELECT id FROM signals WHERE news_id = ? AND status IN ('accepted', 'executed', 'partial')",
            step.news_id,
        )
        if not rows:
            return None
        view = bot.signal_done(rows[-1]["id"])
        return {"news_id": step.news_id, "signal": {"id": view["id"]}, "reason": view["reason"], "done": True}

    def _post_quietly(self, step: Step) -> dict[str, Any] | None:
        """The delivery the kill interrupts: a transport error here is expected."""
        return self._post(step, quiet=True)

    # -- checks

    def _problem(self, kind: str, detail: str) -> None:
        setattr(self.report, kind, getattr(self.report, kind) + 1)
        self.report.problems.append(f"{kind}: {detail}")
        self.say(f"  !! {kind}: {detail}")

    def _disarm_after_fill(self) -> dict[str, Decimal]:
        """Disarm the `after_fill` change (if one was armed); what it left per venue where it
        fired (a venue already at target sends no order, and nothing fires)."""
        if self._after_fill is None:
            return {}
        self._after_fill = None
        self._held = None  # the change moved a position since the last read
        fired = self.sim.admin.disarm_after_fill()["fired"]
        self.report.after_fill_changes += len(fired)
        return {f["venue"]: Decimal(f["after"]) for f in fired}

    def _count_faults(self) -> None:
        faults = self.sim.admin._call("GET", "/faults")["faults"]
        for fault in faults:
            if fault["hits"]:
                self.report.faults += fault["hits"]
                self.report.faults_by_kind[fault["kind"]] += fault["hits"]
        if faults:
            self.sim.admin.clear_faults()

    def _positions(self) -> dict[tuple[str, str], Decimal]:
        if self._held is not None:
            return self._held
        state = self.sim.admin.state()["venues"]
        held: dict[tuple[str, str], Decimal] = {}
        for venue in VENUES:
            account = state[venue]["accounts"].get(self.world.keys.address(venue).lower())
            for coin, pos in (account or {}).get("positions", {}).items():
                size = Decimal(str(pos["size"]))
                if size != 0:
                    held[(venue, coin)] = size
        self._held = held
        return held

    def _check_no_position_exceeds_target(self, step: Step) -> None:
        for (venue, coin), size in self._positions().items():
            limit = abs(self.harness.target_size(coin, "long"))
            if abs(size) > limit:
                self._problem(
                    "doubled",
                    f"after {step.kind} {step.news_id or ''}: {venue} {coin} holds {size} > {limit}",
                )
                # Put it back so one finding is not counted again at every later step.
                self.world.outside_trade(venue, coin, "0")
                self._held = None

    def _check_signal(self, step: Step, reply: dict[str, Any], changed: dict[str, Decimal]) -> None:
        signal = reply.get("signal")
        if signal is None:
            outcome = self._news_outcome(step.news_id)
            if outcome in (None, *UNFINISHED_OUTCOMES):
                self._problem(
                    "lost", f"{step.news_id}: no signal and news outcome {outcome!r} ({reply.get('reason')})"
                )
            return
        want = self.harness.target_size(step.coin, step.side)
        rows = self.world.bot.outcomes(signal["id"])
        latest = {row["venue"]: row for row in rows}  # a redelivered item may have two runs
        held = self._positions()
        for venue in VENUES:
            row = latest.get(venue)
            if row is None:
                self._problem("lost", f"{step.news_id}: no {venue} outcome in the journal")
                continue
            self.report.outcomes[(venue, row["status"])] += 1
            if row["status"] != "ok":
                continue  # not healthy for this signal: the reason is on the outcome
            now = held.get((venue, step.coin), Decimal(0))
            if venue in changed:
                # Closed by hand or liquidated right after the bot's fill: that stands.
                if now == changed[venue]:
                    self.report.after_fill_accepted += 1
                else:
                    self._problem(
                        "mismatches",
                        f"{step.news_id}: {venue} {step.coin} holds {now}, not the {changed[venue]} an "
                        f"outside change left right after the bot's fill (traded back? {row['reason']})",
                    )
                continue
            if now != want:
                if self._protection_closed(venue, step.coin) and now == 0:
                    self.report.outcomes[(venue, "ok-then-protection-close")] += 1
                    continue
                self._problem(
                    "mismatches",
                    f"{step.news_id}: {venue} {step.coin} holds {now}, target {want} "
                    f"(outcome ok: {row['reason']})",
                )

    def _protection_closed(self, venue: str, coin: str) -> bool:
        """The auto trader closed the position because its TP/SL could not be placed (its policy)."""
        return bool(
            self.world.bot.rows(
                "SELECT 1 FROM events WHERE kind = 'protection_failed' AND venue = ? AND coin = ? "
                "AND id = (SELECT MAX(id) FROM events WHERE venue = ? AND coin = ?)",
                venue,
                coin,
                venue,
                coin,
            )
        )

    def _check_protected(self, coins: set[str] | None = None) -> None:
        """Every held position (of `coins`) carries exactly one TP and one SL, once the bot had
        time to resolve what a kill left in flight and to re-protect (bounded wait)."""
        deadline = time.monotonic() + PROTECTED_WAIT_S
        wrong = self._protection_wrong(coins)
        while wrong and time.monotonic() < deadline:
            time.sleep(0.5)  # poll interval
            wrong = self._protection_wrong(coins)
        for (venue, coin), kinds in sorted(wrong.items()):
            kind = "double_protected" if any(kinds.count(k) > 1 for k in kinds) else "unprotected"
            self._problem(kind, f"{venue} {coin} holds a position with triggers {kinds or 'none'}")

    def _protection_wrong(self, coins: set[str] | None) -> dict[tuple[str, str], list[str]]:
        """The held positions not protected exactly once, with the trigger kinds resting on each."""
        state = self.sim.admin.state()["venues"]
        wrong: dict[tuple[str, str], list[str]] = {}
        for venue in VENUES:
            account = state[venue]["accounts"].get(self.world.keys.address(venue).lower()) or {}
            for coin, pos in account.get("positions", {}).items():
                if Decimal(str(pos["size"])) == 0 or (coins is not None and coin not in coins):
                    continue
                kinds = sorted(
                    o["trigger"]["kind"]
                    for o in account.get("open_orders", [])
                    if o["coin"] == coin and o["trigger"]
                )
                if kinds != ["sl", "tp"]:
                    wrong[(venue, coin)] = kinds
        return wrong

    def _news_outcome(self, news_id: str | None) -> str | None:
        rows = self.world.bot.rows("SELECT outcome FROM news WHERE id = ?", news_id)
        return rows[0]["outcome"] if rows else None

    def _check_nothing_lost(self) -> None:
        """Every news id sent is in a journal file with a final outcome (read after the run)."""
        final: dict[str, str] = {}
        for path in self.journals:
            for news_id, outcome in _journal_rows(path, "SELECT id, outcome FROM news"):
                if outcome not in UNFINISHED_OUTCOMES:
                    final[news_id] = outcome
            for kind, count in _journal_rows(path, "SELECT kind, COUNT(*) FROM events GROUP BY kind"):
                self.report.drift_events[kind] += count
        already = {p.split(": ", 2)[1] for p in self.report.problems if p.startswith("lost: ")}
        for news_id in dict.fromkeys(self.sent):
            # An acknowledged item is held to more (`_check_journals`: news_lost).
            if news_id not in final and news_id not in already and news_id not in self.acked:
                self._problem("lost", f"{news_id}: no final outcome in any journal")

    def _check_journals(self) -> None:
        """After the final stop: every acknowledged item finished (`news_lost` otherwise) and
        the last journal holds nothing unfinished (`unfinished`)."""
        final: dict[str, tuple[Path, str]] = {}  # news id -> the journal with its final outcome
        for path in self.journals:
            for row in _journal_rows(path, "SELECT id, outcome FROM news"):
                if row["outcome"] not in UNFINISHED_OUTCOMES:
                    final[row["id"]] = (path, row["outcome"])
        already = {p.split(": ", 2)[1] for p in self.report.problems if p.startswith("news_lost: ")}
        for news_id in sorted(self.acked - already):
            if news_id not in final:
                self._problem("news_lost", f"{news_id}: acknowledged, no final outcome in any journal")
                continue
            path, outcome = final[news_id]
            if outcome == INTERRUPTED:  # resumed only by a redelivery, which never comes
                self._problem("news_lost", f"{news_id}: acknowledged, then left {outcome}")
                continue
            for problem in _signal_problems(path, "s.news_id = ?", (news_id,)):
                self._problem("news_lost", f"{news_id}: acknowledged, {problem}")
        last = self.journals[-1]
        for row in _journal_rows(
            last, "SELECT id, outcome FROM news WHERE outcome IN (?, ?)", *sorted(UNFINISHED_OUTCOMES)
        ):
            self._problem("unfinished", f"news {row['id']} still {row['outcome']} in {last.name}")
        for problem in _signal_problems(last, "1 = 1", ()):
            self._problem("unfinished", f"{problem} in {last.name}")
        for row in _journal_rows(
            last, "SELECT client_id, status FROM orders WHERE status IN (?, ?)", *UNRESOLVED_INTENTS
        ):
            self._problem(
                "unfinished", f"order intent {row['client_id']} still {row['status']} in {last.name}"
            )

    def _check_orders_have_intents(self) -> None:
        """Every fill and resting order of the bot's accounts has its intent in a journal: the
        intent is durable before any send, whatever was killed (`orphan_orders` otherwise)."""
        addresses = {venue: self.world.keys.address(venue) for venue in VENUES}
        for problem in orders_without_intent(self.sim.admin, addresses, self.journals):
            self._problem("orphan_orders", problem)


def orders_without_intent(admin: Any, addresses: dict[str, str], journals: list[Path]) -> list[str]:
    """The fills and resting orders of `addresses` (by venue) on the simulator whose client id
    has no intent in any of `journals` (trades made outside the bot and liquidations aside)."""
    journaled = [
        (row["venue"], row["client_id"])
        for path in journals
        for row in _journal_rows(path, "SELECT venue, client_id FROM orders")
    ]
    state = admin.state()["venues"]
    problems: list[str] = []
    for venue, address in addresses.items():
        # The id the venue sees: Hyperliquid's cloid is a hash of ours.
        on_venue = cloid_for if venue == "hyperliquid" else str
        intents = {on_venue(cid) for v, cid in journaled if v == venue}
        for fill in admin.fills(venue, address.lower()):
            if fill["outside"] or fill["liquidation"]:
                continue  # made outside the bot (the soak's own trades, the venue's liquidations)
            if fill["client_id"] not in intents:
                problems.append(
                    f"{venue} fill {fill['tid']} ({fill['coin']} {fill['side']} {fill['size']}, "
                    f"client id {fill['client_id']}) has no journaled intent"
                )
        for order in (state[venue]["accounts"].get(address.lower()) or {}).get("open_orders", []):
            if order.get("client_id") not in intents:
                problems.append(
                    f"{venue} resting {order['coin']} order (client id {order.get('client_id')}) "
                    "has no journaled intent"
                )
    return problems


def _journal_rows(path: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    """Rows of a journal file, read-only (the harness's reader)."""
    rows: list[sqlite3.Row] = engine_harness().journal_rows(path, sql, *args)
    return rows


def _signal_problems(path: Path, where: str, args: tuple[Any, ...]) -> list[str]:
    """What is wrong with the signals of `path` matching `where` (on `signals s`): still
    `accepted` though its item has a final outcome, or executed without exactly one outcome per
    venue."""
    problems: list[str] = []
    rows = _journal_rows(
        path,
        "SELECT s.id, s.status, n.outcome, "
        "(SELECT group_concat(o.venue) FROM outcomes o WHERE o.signal_id = s.id) AS venues "
        f"FROM signals s LEFT JOIN news n ON n.id = s.news_id WHERE {where}",
        *args,
    )
    for row in rows:
        venues = Counter((row["venues"] or "").split(",")) - Counter({"": 1})
        if row["status"] == "accepted" and row["outcome"] not in UNFINISHED_OUTCOMES:
            problems.append(f"signal {row['id']} still accepted (item {row['outcome']})")
        elif row["status"] in ("executed", "partial") and venues != Counter(VENUES):
            problems.append(f"signal {row['id']} {row['status']} with venue outcomes {dict(venues)}")
    return problems


# ---------------------------------------------------------------- the report


def render(report: SoakReport, cfg: SoakConfig) -> str:
    """A plain table of what happened (rich is not needed for a bench's stdout)."""
    lines = [
        f"soak: seed {cfg.seed}, {cfg.coins} coins, mode {cfg.mode}, {report.seconds:.0f} s",
        f"{'':<34}{'count':>8}",
        f"{'signals':<34}{report.signals:>8}",
        f"{'restarts (SIGKILL)':<34}{report.restarts:>8}",
    ]
    lines += [f"{'  ' + k:<34}{n:>8}" for k, n in sorted(report.restarts_by_kind.items())]
    lines.append("item in the journal at the kill")
    lines += [f"{'  ' + k:<34}{n:>8}" for k, n in sorted(report.kill_landings.items())]
    lines.append(f"{'faults fired':<34}{report.faults:>8}")
    lines += [f"{'  ' + k:<34}{n:>8}" for k, n in sorted(report.faults_by_kind.items())]
    lines.append(f"{'outside trades':<34}{report.outside_trades:>8}")
    lines.append(f"{'  late push, then a signal':<34}{report.late_pushes:>8}")
    lines.append(f"{'change right after our fill':<34}{report.after_fill_changes:>8}")
    lines.append(f"{'  left standing (not traded back)':<34}{report.after_fill_accepted:>8}")
    lines.append(f"{'liquidations':<34}{report.liquidations:>8}")
    lines.append("outcomes per venue")
    lines += [f"{'  ' + v + ' ' + s:<34}{n:>8}" for (v, s), n in sorted(report.outcomes.items())]
    lines.append("journal events")
    lines += [f"{'  ' + k:<34}{n:>8}" for k, n in sorted(report.drift_events.items())]
    if report.signal_ms:
        lines.append(
            f"{'signal settle p50 / p95 / max ms':<34}{_percentile(report.signal_ms, 0.5):>8.0f}"
            f" / {_percentile(report.signal_ms, 0.95):.0f} / {max(report.signal_ms):.0f}"
            f"  (mean {statistics.fmean(report.signal_ms):.0f})"
        )
    lines.append("venue weight (IP budget) per signal, by request type (>= 0.05)")
    for venue in VENUES:
        weights = report.weights.get(venue, {})
        lines.append(f"{'  ' + venue:<34}{report.weight_per_signal(venue):>8.2f}")
        for label, spent in sorted(weights.items(), key=lambda kv: -kv[1]):
            if spent / max(1, report.signals) >= 0.05:
                lines.append(f"{'    ' + label:<34}{spent / max(1, report.signals):>8.2f}")
    lines.append(f"{'mismatches':<34}{report.mismatches:>8}")
    lines.append(f"{'doubled':<34}{report.doubled:>8}")
    lines.append(f"{'lost':<34}{report.lost:>8}")
    lines.append(f"{'unprotected':<34}{report.unprotected:>8}")
    lines.append(f"{'double protected':<34}{report.double_protected:>8}")
    lines.append(f"{'acknowledged items':<34}{report.acknowledged:>8}")
    lines.append(f"{'  lost after their 2xx':<34}{report.news_lost:>8}")
    lines.append(f"{'unfinished in the last journal':<34}{report.unfinished:>8}")
    lines.append(f"{'orders without an intent':<34}{report.orphan_orders:>8}")
    lines += [f"  problem: {p}" for p in report.problems[:40]]
    return "\n".join(lines)


def run_soak(cfg: SoakConfig, workdir: Path | None = None, say: Callable[[str], None] = print) -> SoakReport:
    """Run the soak in `workdir` (a temporary directory, kept when something went wrong)."""
    own = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="newstrader-soak-"))
    report = Soak(cfg, workdir, say).run()
    if own and not report.problems:
        shutil.rmtree(workdir, ignore_errors=True)
    elif report.problems:
        say(f"  logs and journals kept in {workdir}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--coins", type=int, default=11)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=SoakConfig.fault_rate)
    parser.add_argument(
        "--after-fill-rate",
        type=float,
        default=SoakConfig.after_fill_rate,
        help="share of signals followed right after the fill by a manual close or liquidation",
    )
    parser.add_argument("--timeout-ms", type=int, default=SoakConfig.timeout_ms, help="timeout fault hold")
    parser.add_argument("--mode", choices=("target", "close_then_open"), default="target")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs and journals here")
    args = parser.parse_args(argv)
    if args.coins < 10 and args.signals >= 1000:
        print("note: the full soak is meant for >= 10 coins", file=sys.stderr)
    cfg = SoakConfig(
        signals=args.signals,
        restarts=args.restarts,
        coins=args.coins,
        seed=args.seed,
        fault_rate=args.fault_rate,
        after_fill_rate=args.after_fill_rate,
        timeout_ms=args.timeout_ms,
        mode=args.mode,
    )
    coins_for(cfg.coins)  # a bad --coins is refused before anything starts
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"soak: {cfg.signals} signals, {cfg.restarts} restarts, {cfg.coins} coins, seed {cfg.seed}",
        flush=True,
    )
    report = run_soak(cfg, args.workdir, say=lambda line: print(line, flush=True))
    print(render(report, cfg))
    print(json.dumps(report.line()))
    return 0 if report.bad() == 0 and not report.problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
