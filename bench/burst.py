"""A burst: 100 headlines in 10 s across 10 coins, both venues, the simulator's rate limits on.

Each headline arrives on its own schedule (count / duration apart) and goes the whole way a
bot takes it: journal → parse → filters → `Executor.execute` (both venues in parallel), with a
SQLite journal. Each venue is its own simulator process with its rate limits enforced and
`--delay-ms` per request. Checks: no reply was a 429 (counted at the HTTP transport), every
signal traded, and after the burst each coin's exchange position on each venue equals the
target of that coin's last signal. Reports wall time and per-signal p50/p95 (arrival →
decision returned). Prints a table and a final JSON line.

    uv run --frozen python bench/burst.py [--headlines 100] [--seconds 10] [--coins 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from newstrader.domain import NewsItem, OutcomeStatus, Side, Signal, VenueOutcome
from newstrader.engine.executor import Executor
from newstrader.engine.risk import Sizer
from newstrader.journal import Journal
from newstrader.logging_setup import configure_logging
from newstrader.news.parser import Parser
from newstrader.news.pipeline import Pipeline, PipelineSettings
from sim_harness import COINS, collect_stages, machine, new_trader, summary_ms, venue_sims

NAMES = {
    "BTC": "Bitcoin",
    "ETH": "Ethereum",
    "SOL": "Solana",
    "HYPE": "Hyperliquid",
    "XRP": "XRP",
    "DOGE": "Dogecoin",
    "SUI": "Sui",
    "AVAX": "Avalanche",
    "LINK": "Chainlink",
    "BNB": "BNB",
}
BULLISH = (
    "{} surges after record ETF inflows",
    "{} rallies as whales accumulate after ETF approval",
    "{} soars after major partnership announced",
    "{} jumps on institutional adoption",
    "{} wins approval for spot ETF",
    "{} upgrade goes live, price rallies",
    "{} hits all-time high as buyers pile in",
    "{} climbs after treasury firm buys $500 million",
    "{} rallies after buyback announced",
    "{} soars after record inflows",
)
BEARISH = (
    "{} plunges as whales dump",
    "{} falls after SEC lawsuit",
    "{} network hacked, attacker drains $50 million",
    "{} outage halts network for five hours",
    "{} crashes after exchange insolvency",
    "{} slides as ETF outflows mount",
    "{} tumbles after major exploit",
    "{} plunges as regulators ban trading",
    "{} sinks after founder arrested",
    "{} falls after hack of bridge",
)


def headlines(count: int, coins: int, seed: int) -> list[tuple[NewsItem, str, Side]]:
    """`count` distinct headlines, round-robin over `coins`, each side at random."""
    rng = random.Random(seed)
    run = f"{time.time_ns():x}"
    out = []
    for index in range(count):
        coin = COINS[index % coins]
        side = rng.choice((Side.LONG, Side.SHORT))
        templates = BULLISH if side is Side.LONG else BEARISH
        title = templates[(index // coins) % len(templates)].format(NAMES[coin])
        if index // coins >= len(templates):  # more than ten per coin: keep titles distinct
            title = f"{title} ({index // coins // len(templates) + 1})"
        out.append((NewsItem(id=f"burst-{run}-{index}", title=title, source="bench"), coin, side))
    return out


def check_parses(parser: Parser, items: list[tuple[NewsItem, str, Side]], min_confidence: float) -> None:
    """Every headline must parse to the coin and side it was written for, confidently enough
    to pass the filter (else the bench, not the bot, is wrong)."""
    for item, coin, side in items:
        signal = parser.parse(item).signal
        if signal is None or (signal.coin, signal.side) != (coin, side) or signal.confidence < min_confidence:
            raise RuntimeError(f"{item.title!r} parses to {signal}, meant {side.value} {coin}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging(level="warning")
    parser = Parser()
    items = headlines(args.headlines, args.coins, args.seed)
    settings = PipelineSettings()
    check_parses(parser, items, settings.min_confidence)
    sims = venue_sims(args.sim_url, rate_limits=True)
    tmp = tempfile.TemporaryDirectory(prefix="bench-burst-")
    trader = new_trader(sims)
    journal = await Journal.open(f"sqlite:///{Path(tmp.name) / 'burst.db'}")
    outcomes: dict[str, list[VenueOutcome]] = {}
    try:
        executor = Executor(trader.venues, journal, None, Sizer())

        engine_ms: list[float] = []
        stages: dict[str, list[float]] = {}

        async def act(signal: Signal) -> list[VenueOutcome]:
            began = time.monotonic()
            result = await executor.execute(signal)
            engine_ms.append((time.monotonic() - began) * 1000)
            collect_stages(result, stages)
            outcomes[signal.news_id] = result
            return result

        pipeline = Pipeline(parser, journal, settings, act)
        sims.delay_every_request(args.delay_ms)
        gap = args.seconds / len(items)
        latencies: list[float] = []
        decisions: dict[str, str] = {}
        started, cpu_started = time.monotonic(), time.process_time()

        async def arrive(index: int, item: NewsItem) -> None:
            due = started + index * gap
            await asyncio.sleep(max(0.0, due - time.monotonic()))  # the arrival schedule itself
            arrived = time.monotonic()
            decision = await pipeline.submit(item)
            latencies.append((time.monotonic() - arrived) * 1000)
            decisions[item.id] = f"{decision.outcome}: {decision.reason}"

        await asyncio.gather(*(arrive(i, item) for i, (item, _, _) in enumerate(items)))
        wall_s = time.monotonic() - started
        cpu_s = time.process_time() - cpu_started
        mismatches = settle_check(sims, trader.address, items, outcomes)
        buckets = trader.limits.snapshot()  # our own rate limiter: how often it held a request back
    finally:
        await trader.close()
        await journal.close()
        sims.stop()
        tmp.cleanup()

    statuses = [o.status for result in outcomes.values() for o in result]
    failed = [
        f"{o.venue} {o.coin}: {o.reason}"
        for result in outcomes.values()
        for o in result
        if o.status is OutcomeStatus.FAILED
    ]
    per_signal = summary_ms(latencies)
    return {
        "bench": "burst",
        "headlines": len(items),
        "seconds": args.seconds,
        "coins": args.coins,
        "delay_ms": args.delay_ms,
        "traded": sum(1 for outcome in decisions.values() if outcome.startswith("traded")),
        "not_traded": sorted(d for d in decisions.values() if not d.startswith("traded"))[:10],
        "venue_outcomes": {s.value: statuses.count(s) for s in OutcomeStatus},
        "failed": failed[:10],
        "http_429": trader.statuses.get(429, 0),
        "http_requests": sum(trader.statuses.values()),
        "limiter_waits": sum(int(b["waits"]) for b in buckets.values()),
        "limiter_wait_s": round(sum(b["wait_seconds"] for b in buckets.values()), 2),
        "weight_spent": {name: b["spent"] for name, b in buckets.items()},
        "settled": not mismatches,
        "mismatches": mismatches[:10],
        "wall_s": round(wall_s, 2),
        "signal_p50_ms": per_signal["p50_ms"],
        "signal_p95_ms": per_signal["p95_ms"],
        "signal_max_ms": per_signal["max_ms"],
        "engine_p50_ms": summary_ms(engine_ms)["p50_ms"],
        "engine_p95_ms": summary_ms(engine_ms)["p95_ms"],
        "engine_stages_p50_ms": {k: summary_ms(v)["p50_ms"] for k, v in stages.items()},
        "cpu_ms_per_headline": round(cpu_s * 1000 / len(items), 1),
        "machine": machine(),
    }


def settle_check(
    sims: Any, address: str, items: list[tuple[NewsItem, str, Side]], outcomes: dict[str, list[VenueOutcome]]
) -> list[str]:
    """Each coin's exchange position on each venue must equal the target of its last signal."""
    last: dict[str, str] = {coin: item.id for item, coin, _ in items}
    mismatches = []
    for venue in ("hyperliquid", "aster"):
        held = sims.positions(venue, address)
        for coin, news_id in last.items():
            result = {o.venue: o for o in outcomes.get(news_id, [])}
            target = result[venue].target_size if venue in result else None
            size = Decimal(held.get(coin, "0"))
            if target is None or size != target:
                mismatches.append(f"{venue} {coin}: exchange {size}, last target {target}")
    return mismatches


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--headlines", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="the burst is spread over this long")
    parser.add_argument("--coins", type=int, default=10, help=f"coins used, 1..{len(COINS)}")
    parser.add_argument("--delay-ms", type=int, default=50, help="injected delay per venue request")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--sim-url", default=None, help="use this running simulator for both venues instead of starting two"
    )
    args = parser.parse_args()
    if not 1 <= args.coins <= len(COINS):
        parser.error(f"--coins must be in 1..{len(COINS)}")
    if args.headlines < 1 or args.seconds <= 0:
        parser.error("--headlines and --seconds must be positive")
    report = asyncio.run(run(args))
    print(
        f"burst: {report['headlines']} headlines in {report['seconds']:g} s over {report['coins']} coins, "
        f"2 venues, rate limits on, {report['delay_ms']} ms per request"
    )
    rows = [
        ("traded", f"{report['traded']} / {report['headlines']}"),
        ("venue outcomes", ", ".join(f"{k} {v}" for k, v in report["venue_outcomes"].items())),
        ("HTTP 429 replies", f"{report['http_429']} of {report['http_requests']} requests"),
        ("our rate limiter held requests", f"{report['limiter_waits']} times, {report['limiter_wait_s']} s"),
        ("settled (positions = last targets)", "yes" if report["settled"] else "NO"),
        ("wall time", f"{report['wall_s']} s"),
        ("engine per signal p50 / p95", f"{report['engine_p50_ms']} / {report['engine_p95_ms']} ms"),
        (
            "engine stages p50 (per venue)",
            ", ".join(f"{k} {v:g} ms" for k, v in report["engine_stages_p50_ms"].items()),
        ),
        (
            "CPU of this process per headline",
            f"{report['cpu_ms_per_headline']} ms (journal writer thread included)",
        ),
        (
            "per signal p50 / p95 / max",
            f"{report['signal_p50_ms']} / {report['signal_p95_ms']} / {report['signal_max_ms']} ms",
        ),
    ]
    for label, value in rows:
        print(f"{label:<38}{value}")
    for line in report["not_traded"] + report["failed"] + report["mismatches"]:
        print(f"  ! {line}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
