"""News-in → all venues filled: the seed's flow against our engine, same adapters, same simulator.

The simulator runs as a subprocess and holds every venue request `--delay-ms` (default 50 ms,
both venues), a stand-in for the network. One sequence of mixed signals (opens, flips,
same-side) is driven three ways, each on its own fresh account, signal by signal in turn so
all three see the same prices and the same machine load:

- **seed**: the flow the seed describes — venue after venue, each: read the account, close
  what it holds (reduce-only market), open; every call awaited in sequence. It is handed the
  mark for free (sizing and Hyperliquid's slippage reference need no read), so it is
  measured at its best: 2 round trips per venue for an open, 3 for a flip or a same-side.
- **engine**: `Executor.execute` in the bot's default configuration: `target` mode and
  `position_source = "stream"` with the venues' account streams running, as the bot runs them
  (venues in parallel; the decision from the pushed position and mark when the stream is
  current, one net order, the REST read alongside it; nothing to send when already at target).
- **engine_rest**: the same with `position_source = "rest"`: one read of position + mark
  first, then the order.
- **engine close_then_open**: the engine with the seed's close-then-open kept, still parallel
  (it always reads first).

Latency is from the signal's arrival to the last venue's fill (or, when a venue needs no
order, to its decision). The journal (SQLite WAL, FULL sync) is on for the engine, as in
the bot. Prints a table and a final JSON line.

    uv run --frozen python bench/latency.py [--signals 40] [--coins 8] [--delay-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from newstrader.domain import Market, OrderRequest, OrderStatus, OutcomeStatus, Side, Signal, VenueOutcome
from newstrader.engine.executor import Executor
from newstrader.engine.risk import Sizer
from newstrader.engine.settings import EngineSettings
from newstrader.journal import Journal
from newstrader.logging_setup import configure_logging
from newstrader.venues.base import Streaming
from sim_harness import (
    COINS,
    Trader,
    VenueSims,
    collect_stages,
    machine,
    new_trader,
    summary_ms,
    venue_sims,
)

FLOWS = ("seed", "engine", "engine_rest", "engine_close_then_open")
STREAM_READY_S = 30.0  # the account streams' first snapshot, on a loaded machine


@dataclass(frozen=True)
class Planned:
    """One signal of the sequence and what it asks of a venue that followed the earlier ones."""

    index: int
    coin: str
    side: Side
    kind: str  # open | flip | same


def plan_signals(count: int, coins: int, seed: int) -> list[Planned]:
    """Round-robin over `coins`; after each coin's opening signal, flip or repeat at random."""
    rng = random.Random(seed)
    last: dict[str, Side] = {}
    planned = []
    for index in range(count):
        coin = COINS[index % coins]
        previous = last.get(coin)
        if previous is None:
            side, kind = rng.choice((Side.LONG, Side.SHORT)), "open"
        elif rng.random() < 0.5:
            side, kind = previous.opposite, "flip"
        else:
            side, kind = previous, "same"
        last[coin] = side
        planned.append(Planned(index, coin, side, kind))
    return planned


class SeedFlow:
    """The seed's flow over our adapters: per venue in turn, read → close → open, all awaited."""

    def __init__(self, trader: Trader, sizer: Sizer) -> None:
        self.trader = trader
        self.sizer = sizer
        self.markets: dict[str, dict[str, Market]] = {}

    async def warm_up(self, coins: list[str]) -> None:
        """Load markets and set leverage once per coin, as a bot would at start-up."""
        for name, venue in self.trader.venues.items():
            self.markets[name] = await venue.markets()
            await asyncio.gather(*(venue.set_leverage(coin, self.sizer.leverage) for coin in coins))

    async def run(self, signal: Signal, marks: dict[str, Decimal], tag: str) -> None:
        for name, venue in self.trader.venues.items():
            mark = marks[name]
            held = (await venue.positions()).get(signal.coin)
            if held is not None and held.size != 0:
                close = OrderRequest(
                    coin=signal.coin,
                    is_buy=held.size < 0,
                    size=abs(held.size),
                    client_id=f"{tag}-{name}-c",
                    reduce_only=True,
                    limit_price=mark,  # the slippage reference; a market order all the same
                )
                result = await venue.place_order(close)
                if result.filled_size != abs(held.size):
                    raise RuntimeError(f"seed close not filled on {name}: {result}")
            target = self.sizer.plan(signal, self.markets[name][signal.coin], mark).target_size
            opened = OrderRequest(
                coin=signal.coin,
                is_buy=target > 0,
                size=abs(target),
                client_id=f"{tag}-{name}-o",
                limit_price=mark,
            )
            result = await venue.place_order(opened)
            if result.status is not OrderStatus.FILLED:
                raise RuntimeError(f"seed open not filled on {name}: {result}")


def settled_at(outcomes: list[VenueOutcome], trader: Trader) -> float:
    """Monotonic time the last venue reached its target: the reply to its last order (the fill is
    known then, before the journal records it), or its decision when it needed no order."""
    stamps = []
    for outcome in outcomes:
        if outcome.status is not OutcomeStatus.OK:
            raise RuntimeError(f"engine outcome {outcome.venue}: {outcome.status.value} {outcome.reason}")
        if outcome.orders:
            stamps.append(trader.last_order_reply_at(outcome.venue))
        else:
            stamps.append(outcome.latency.stamps["decided"])
    return max(stamps)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging(level="warning")
    planned = plan_signals(args.signals, args.coins, args.seed)
    coins = list(COINS[: args.coins])
    sims = venue_sims(args.sim_url, rate_limits=False)
    tmp = tempfile.TemporaryDirectory(prefix="bench-latency-")
    traders: list[Trader] = []
    journals: list[Journal] = []
    try:
        traders = [new_trader(sims) for _ in FLOWS]
        seed_trader = traders[0]
        sizer = Sizer()
        seed = SeedFlow(seed_trader, sizer)
        engines: dict[str, Executor] = {}
        settings = {
            "engine": EngineSettings(),  # the bot's default configuration
            "engine_rest": EngineSettings(position_source="rest"),
            "engine_close_then_open": EngineSettings(mode="close_then_open"),
        }
        for flow, trader in zip(FLOWS[1:], traders[1:], strict=True):
            journal = await Journal.open(f"sqlite:///{Path(tmp.name) / flow}.db")
            journals.append(journal)
            engines[flow] = Executor(trader.venues, journal, settings[flow], sizer)
            await start_streams(trader)  # the bot runs every venue's stream, whatever the source

        # Warm-up, untimed: markets, leverage and keep-alive connections; every account ends flat.
        await seed.warm_up(coins)
        for flow, executor in engines.items():
            warm = [
                Signal(id=f"warm-{flow}-{c}", news_id=f"warm-{flow}-{c}", coin=c, side=Side.LONG)
                for c in coins
            ]
            await asyncio.gather(*(executor.execute(s) for s in warm))
            await asyncio.gather(*(executor.close(c) for c in coins))
        sims.delay_every_request(args.delay_ms)
        decided_before = {flow: Counter(e.decided_from) for flow, e in engines.items()}

        samples: dict[str, list[float]] = {flow: [] for flow in FLOWS}
        returned: list[float] = []
        stages: dict[str, list[float]] = {}
        requests: dict[str, int] = dict.fromkeys(FLOWS, 0)
        cpu_s: dict[str, float] = dict.fromkeys(FLOWS, 0.0)
        by_kind: dict[str, dict[str, list[float]]] = {flow: {} for flow in FLOWS}
        run_tag = f"{time.time_ns():x}"
        for item in planned:
            # Prices move between news items; every flow sees the same move.
            ticked = sims.tick()
            marks = {venue: Decimal(ticked[venue][item.coin]) for venue in ("hyperliquid", "aster")}
            for flow, trader in zip(FLOWS, traders, strict=True):
                tag = f"{run_tag}-{flow}-{item.index}"
                signal = Signal(id=f"sig-{tag}", news_id=f"news-{tag}", coin=item.coin, side=item.side)
                before = sims.request_count()
                cpu_before = time.process_time()
                started = time.monotonic()
                if flow == "seed":
                    await seed.run(signal, marks, tag)
                    done = max(trader.last_order_reply_at(v) for v in trader.venues)
                else:
                    outcomes = await engines[flow].execute(signal, received_at=started)
                    done = settled_at(outcomes, trader)
                    if flow == "engine":
                        returned.append((time.monotonic() - started) * 1000)
                        collect_stages(outcomes, stages)
                elapsed_ms = (done - started) * 1000
                cpu_s[flow] += time.process_time() - cpu_before  # before the admin calls below
                requests[flow] += sims.request_count() - before
                samples[flow].append(elapsed_ms)
                by_kind[flow].setdefault(item.kind, []).append(elapsed_ms)

        decided = {  # where each engine flow's timed decisions came from, per venue
            flow: {f"{v}:{src}": n for (v, src), n in sorted((e.decided_from - decided_before[flow]).items())}
            for flow, e in engines.items()
        }
        final = check_final_positions(sims, planned, traders)
        throttled = {  # how often each flow's own rate limiter held a request back
            flow: sum(int(b["waits"]) for b in trader.limits.snapshot().values())
            for flow, trader in zip(FLOWS, traders, strict=True)
        }
    finally:
        for trader in traders:
            await trader.close()
        for journal in journals:
            await journal.close()
        sims.stop()
        tmp.cleanup()

    stats = {flow: summary_ms(samples[flow]) for flow in FLOWS}
    base, ours, rest = stats["seed"], stats["engine"], stats["engine_rest"]
    kinds = {item.kind for item in planned}
    return {
        "bench": "latency",
        "delay_ms": args.delay_ms,
        "signals": len(planned),
        "coins": args.coins,
        "signal_kinds": {k: sum(1 for p in planned if p.kind == k) for k in sorted(kinds)},
        "baseline_p50_ms": base["p50_ms"],
        "baseline_p95_ms": base["p95_ms"],
        "engine_p50_ms": ours["p50_ms"],
        "engine_p95_ms": ours["p95_ms"],
        "ratio_p50": round(ours["p50_ms"] / base["p50_ms"], 3),
        "ratio_p95": round(ours["p95_ms"] / base["p95_ms"], 3),
        "rest_p50_ms": rest["p50_ms"],
        "rest_ratio_p50": round(rest["p50_ms"] / base["p50_ms"], 3),
        "rest_ratio_p95": round(rest["p95_ms"] / base["p95_ms"], 3),
        "decided_from": decided,
        "flows": stats,
        "by_kind_p50_ms": {
            flow: {k: summary_ms(v)["p50_ms"] for k, v in sorted(by_kind[flow].items())} for flow in FLOWS
        },
        "engine_stages_p50_ms": {k: summary_ms(v)["p50_ms"] for k, v in stages.items()},
        "engine_returned_p50_ms": summary_ms(returned)["p50_ms"],
        "engine_returned_p95_ms": summary_ms(returned)["p95_ms"],
        "requests_per_signal": {flow: round(requests[flow] / len(planned), 2) for flow in FLOWS},
        "cpu_ms_per_signal": {flow: round(cpu_s[flow] * 1000 / len(planned), 1) for flow in FLOWS},
        "final_positions_agree": final,
        "limiter_waits": throttled,
        "machine": machine(),
    }


async def start_streams(trader: Trader) -> None:
    """Start every venue's account stream and wait for its first snapshot, as the bot does."""
    streaming = [v for v in trader.venues.values() if isinstance(v, Streaming)]
    for venue in streaming:
        venue.stream.start()
    ready = await asyncio.gather(*(v.stream.wait_current(STREAM_READY_S) for v in streaming))
    if not all(ready):
        raise RuntimeError("an account stream did not become current")


def check_final_positions(sims: VenueSims, planned: list[Planned], traders: list[Trader]) -> bool:
    """Every flow ends on every venue with each coin on the side of its last signal."""
    last = {p.coin: p.side for p in planned}
    for trader in traders:
        for venue in ("hyperliquid", "aster"):
            held = sims.positions(venue, trader.address)
            for coin, side in last.items():
                size = Decimal(held.get(coin, "0"))
                if Side.of_size(size) is not side:
                    raise RuntimeError(f"{venue} {coin}: {size} is not {side.value} for {trader.address}")
    return True


def print_table(report: dict[str, Any]) -> None:
    print(
        f"news-in → all venues filled: {report['signals']} signals {report['signal_kinds']}, "
        f"{report['delay_ms']} ms per request, 2 venues"
    )
    print(
        f"{'flow':<24}{'p50 ms':>8}{'p95 ms':>8}{'mean ms':>9}{'req/sig':>9}{'CPU ms/sig':>11}  p50 by kind"
    )
    for flow, row in report["flows"].items():
        kinds = ", ".join(f"{k} {v:g}" for k, v in report["by_kind_p50_ms"][flow].items())
        print(
            f"{flow:<24}{row['p50_ms']:>8}{row['p95_ms']:>8}{row['mean_ms']:>9}"
            f"{report['requests_per_signal'][flow]:>9}{report['cpu_ms_per_signal'][flow]:>11}  {kinds}"
        )
    print(
        f"engine (default: position_source=stream) / seed: p50 {report['ratio_p50']}, "
        f"p95 {report['ratio_p95']} (floor with one round trip about 1/6)"
    )
    print(
        f"engine_rest (position_source=rest) / seed: p50 {report['rest_ratio_p50']}, "
        f"p95 {report['rest_ratio_p95']} (floor 1/3 = 0.333)"
    )
    sources = "; ".join(
        f"{flow} " + ", ".join(f"{k} {n}" for k, n in counts.items())
        for flow, counts in report["decided_from"].items()
    )
    print(f"decisions taken from (venue:source): {sources}")
    returned = f"p50 {report['engine_returned_p50_ms']} ms, p95 {report['engine_returned_p95_ms']} ms"
    print(f"engine until execute() returned (fill + journal bookkeeping): {returned}")
    stages = ", ".join(f"{k} {v:g}" for k, v in report["engine_stages_p50_ms"].items())
    print(f"engine stages per venue, p50 ms: {stages}")
    waits = ", ".join(f"{flow} {n}" for flow, n in report["limiter_waits"].items())
    print(f"requests held back by each flow's own rate limiter: {waits}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--signals", type=int, default=40, help="signals in the sequence (≥ 30 for the report)"
    )
    parser.add_argument("--coins", type=int, default=8, help=f"coins used, 1..{len(COINS)}")
    parser.add_argument("--delay-ms", type=int, default=50, help="injected delay per venue request")
    parser.add_argument("--seed", type=int, default=10, help="seed of the signal sequence")
    parser.add_argument(
        "--sim-url", default=None, help="use this running simulator for both venues instead of starting two"
    )
    args = parser.parse_args()
    if not 1 <= args.coins <= len(COINS):
        parser.error(f"--coins must be in 1..{len(COINS)}")
    if args.signals < 1:
        parser.error("--signals must be positive")
    report = asyncio.run(run(args))
    print_table(report)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
