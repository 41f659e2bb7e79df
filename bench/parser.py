"""News path speed: parser throughput, pipeline submit latency and webhook request→signal latency.

1. Parser: every labelled headline (tests/data) and the sample news, parsed over and over
   on one core; headlines per second (wall and per CPU second of the process) and per-headline
   p50/p99. Those are a few hundred distinct headlines, so every word of them is in the
   parser's token cache; the "varied" row parses a stream of distinct headlines (the labelled
   ones with their numbers and coins changed, each parsed once), as live news mostly is.
   The parser keeps no per-headline results, only per-token ones. With `--baseline-src`
   (another checkout's `src`, e.g. /work/main/src) the parser is measured in fresh processes,
   ours and the baseline's taking turns, so both see the same load.
2. Pipeline: `Pipeline.submit` with a real SQLite (WAL) journal in a temp dir: journal the
   item, dedupe look-up, parse, filters, act (a no-op), final outcome; p50/p99 in ms.
3. Webhook: `POST /api/news` on the real web app served by uvicorn on 127.0.0.1, same
   pipeline and journal behind it; request sent → 202 with the signal received; p50/p99.

Prints a table and a final JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def headlines() -> list[str]:
    """The labelled sets and the demo file: real-looking headlines of every kind."""
    titles: list[str] = []
    for path in [
        ROOT / "tests" / "data" / "headlines.jsonl",
        ROOT / "tests" / "data" / "headlines_holdout.jsonl",
        ROOT / "src" / "newstrader" / "news" / "sample_news.jsonl",
    ]:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                titles.append(json.loads(line)["title"])
    return titles


_DIGITS = re.compile(r"\d+")


def varied_headlines(titles: list[str], tickers: set[str], count: int, seed: int = 18) -> list[str]:
    """`count` distinct headlines from `titles` with their numbers and coin tickers changed:
    a stream of mostly new headlines in the labelled sets' vocabulary. A title with neither
    number nor ticker can only appear once."""
    rnd = random.Random(seed)
    choices = sorted(tickers)
    seen = set(titles)
    out: list[str] = []
    for _ in range(count * 50):  # bounded: a title that cannot vary is skipped, not retried forever
        if len(out) == count:
            break
        title = rnd.choice(titles)
        title = _DIGITS.sub(
            lambda m: str(rnd.randrange(10 ** (len(m.group()) - 1), 10 ** len(m.group()))), title
        )
        title = " ".join(rnd.choice(choices) if word in tickers else word for word in title.split(" "))
        if title not in seen:
            seen.add(title)
            out.append(title)
    return out


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_parser(total: int, varied: int) -> dict[str, Any]:
    from newstrader.domain import NewsItem
    from newstrader.news.parser import Parser

    parser = Parser()
    titles = headlines()
    items = [NewsItem(id=f"b{i}", title=t) for i, t in enumerate(titles)]
    for item in items:  # warm the token caches with the vocabulary, as a running bot's would be
        parser.parse(item)
    tickers = {c for c in parser.rules.coins if c.isupper() and c.isalpha()}
    fresh = varied_headlines(titles, tickers, 2 * varied)
    stream = [NewsItem(id=f"v{i}", title=t) for i, t in enumerate(fresh)]
    rounds = max(1, total // len(items))
    row = timed(parser, items * rounds, items * 5)
    import newstrader

    return {
        "src": str(Path(newstrader.__file__).resolve().parent.parent),  # whose parser this was
        **row,
        "distinct": len(items),
        # Distinct headlines, each parsed once (half for the rate, half timed one by one).
        "varied": {**timed(parser, stream[:varied], stream[varied:]), "distinct": len(stream)},
    }


def timed(parser: Any, bulk: list[Any], singles: list[Any]) -> dict[str, Any]:
    """Parse `bulk` in one loop (the rate), then each of `singles` timed alone (p50/p99)."""
    started = time.perf_counter()
    cpu_started = time.process_time()
    for item in bulk:
        parser.parse(item)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    walls, cpus = [], []
    for item in singles:
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        parser.parse(item)
        walls.append((time.perf_counter_ns() - t0) / 1000)
        cpus.append((time.thread_time_ns() - c0) / 1000)  # includes one clock read (~1 µs)
    return {
        "headlines": len(bulk),
        "per_s": round(len(bulk) / elapsed),  # wall clock: suffers when the machine is shared
        "per_cpu_s": round(len(bulk) / cpu),  # per second of this process's CPU: what one free core does
        "p50_us": round(pct(walls, 0.5), 1),
        "p99_us": round(pct(walls, 0.99), 1),
        # The same per headline in this thread's CPU time: what the parse costs, without the
        # moments the shared box took the core away (which the wall-clock p99 shows).
        "cpu_p50_us": round(pct(cpus, 0.5), 1),
        "cpu_p99_us": round(pct(cpus, 0.99), 1),
    }


def parser_in_process(src: Path, total: int, varied: int) -> dict[str, Any]:
    """`bench_parser` in a fresh interpreter importing `newstrader` from `src` (ours or a baseline)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, __file__, "--parser-only", "--headlines", str(total), "--varied", str(varied)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return row


def median_rounds(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The median round of each row (by headlines per CPU second), with every round's rate: one
    run on this shared box swings by a fifth either way."""
    by_rate = sorted(rows, key=lambda r: r["per_cpu_s"])
    varied = sorted((r["varied"] for r in rows), key=lambda r: r["per_cpu_s"])
    return {
        **by_rate[len(rows) // 2],
        "varied": {**varied[len(rows) // 2], "per_cpu_s_rounds": [r["per_cpu_s"] for r in varied]},
        "per_cpu_s_rounds": [r["per_cpu_s"] for r in by_rate],
    }


def compare_parsers(baseline: Path, total: int, varied: int, rounds: int) -> dict[str, Any]:
    """Ours and the baseline's parser, alternating `rounds` times; the median round of each."""
    ours: list[dict[str, Any]] = []
    base: list[dict[str, Any]] = []
    for _ in range(rounds):
        ours.append(parser_in_process(ROOT / "src", total, varied))
        base.append(parser_in_process(baseline, total, varied))

    def median(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return sorted(rows, key=lambda r: r["per_cpu_s"])[len(rows) // 2]

    def rates(rows: list[dict[str, Any]]) -> list[int]:
        return [r["per_cpu_s"] for r in rows]

    mine, theirs = median(ours), median(base)
    mine_varied, theirs_varied = median([r["varied"] for r in ours]), median([r["varied"] for r in base])
    return {
        "ours": mine,
        "baseline": theirs,
        "ours_varied": mine_varied,
        "baseline_varied": theirs_varied,
        "rounds": rounds,
        "speedup_per_cpu_s": round(mine["per_cpu_s"] / theirs["per_cpu_s"], 2),
        "varied_speedup_per_cpu_s": round(mine_varied["per_cpu_s"] / theirs_varied["per_cpu_s"], 2),
        # The least disturbed round of each (as timeit reports): the box is shared.
        "ours_best_per_cpu_s": max(rates(ours)),
        "baseline_best_per_cpu_s": max(rates(base)),
        "ours_varied_best_per_cpu_s": max(rates([r["varied"] for r in ours])),
        "baseline_varied_best_per_cpu_s": max(rates([r["varied"] for r in base])),
        "ours_per_cpu_s_rounds": rates(ours),
        "baseline_per_cpu_s_rounds": rates(base),
        "ours_varied_per_cpu_s_rounds": rates([r["varied"] for r in ours]),
        "baseline_varied_per_cpu_s_rounds": rates([r["varied"] for r in base]),
    }


class NewsDesk:
    """The part of a bot the web app's news route needs: a journal, a bus, no venues and `accept_news`."""

    def __init__(self, pipeline: Any, journal: Any) -> None:
        from newstrader.bot import Bus

        self.pipeline = pipeline
        self.journal = journal
        self.bus = Bus()
        self.venues: dict[str, Any] = {}

    async def accept_news(self, item: Any) -> Any:
        return await self.pipeline.accept(item)


async def _pipeline(journal_path: Path) -> tuple[Any, Any]:
    from newstrader.domain import Signal
    from newstrader.journal import Journal
    from newstrader.news.parser import Parser
    from newstrader.news.pipeline import Pipeline, PipelineSettings

    journal = await Journal.open(f"sqlite:///{journal_path}")

    async def act(signal: Signal) -> str:
        return "benchmark: not sent"

    return Pipeline(Parser(), journal, PipelineSettings(), act), journal


async def bench_pipeline(n: int, workdir: Path) -> dict[str, Any]:
    from newstrader.domain import NewsItem

    pipeline, journal = await _pipeline(workdir / "pipeline.db")
    titles = headlines()
    samples = []
    outcomes: dict[str, int] = {}
    try:
        for i in range(n):
            # Unique titles so the dedupe filter passes them (the common case for live news).
            item = NewsItem(id=f"p{i}", title=f"{titles[i % len(titles)]} #{i}", source="bench")
            t0 = time.perf_counter()
            decision = await pipeline.submit(item)
            samples.append((time.perf_counter() - t0) * 1000)
            outcomes[decision.outcome] = outcomes.get(decision.outcome, 0) + 1
    finally:
        await journal.close()
    return {
        "n": n,
        "p50_ms": round(pct(samples, 0.5), 2),
        "p99_ms": round(pct(samples, 0.99), 2),
        "mean_ms": round(statistics.fmean(samples), 2),
        "outcomes": outcomes,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve(app: Any) -> tuple[Any, asyncio.Task[None], int]:
    """The app under uvicorn on a free loopback port: (server, its task, port), once it is up."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("web app did not start")
        await asyncio.sleep(0.01)
    return server, task, port


async def bench_webhook(n: int, workdir: Path) -> dict[str, Any]:
    import httpx

    from newstrader.web.app import create_app

    pipeline, journal = await _pipeline(workdir / "webhook.db")
    token = "bench-token"
    server, serving, port = await serve(create_app(NewsDesk(pipeline, journal), token=token))
    titles = headlines()
    samples = []
    signals = 0
    try:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            for i in range(n):
                body = {"title": f"{titles[i % len(titles)]} #{i}", "source": "bench", "id": f"w{i}"}
                t0 = time.perf_counter()
                # `wait`: the answer once the item is finished, as before the webhook answered at once.
                response = await client.post("/api/news", json=body, params={"wait": 30})
                samples.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"webhook said {response.status_code}: {response.text[:200]}")
                signals += response.json().get("signal") is not None
    finally:
        server.should_exit = True
        await serving
        await journal.close()
    return {
        "n": n,
        "p50_ms": round(pct(samples, 0.5), 2),
        "p99_ms": round(pct(samples, 0.99), 2),
        "mean_ms": round(statistics.fmean(samples), 2),
        "with_signal": signals,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headlines", type=int, default=60_000, help="headlines parsed for throughput")
    parser.add_argument(
        "--varied", type=int, default=20_000, help="distinct headlines (numbers and coins varied) parsed once"
    )
    parser.add_argument("--submits", type=int, default=300, help="pipeline submits / webhook requests")
    parser.add_argument("--no-webhook", action="store_true", help="skip the HTTP measurement")
    parser.add_argument("--baseline-src", type=Path, help="another src/ to compare with")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds in fresh processes (alternating with --baseline-src)"
    )
    parser.add_argument("--parser-only", action="store_true", help=argparse.SUPPRESS)  # one JSON row
    args = parser.parse_args()

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # errors only

    if args.parser_only:
        print(json.dumps(bench_parser(args.headlines, args.varied)))
        return
    load_before = os.getloadavg()
    compared = None
    if args.baseline_src is not None:
        compared = compare_parsers(args.baseline_src.resolve(), args.headlines, args.varied, args.rounds)
        parse = compared["ours"]
    else:
        parse = median_rounds(
            [parser_in_process(ROOT / "src", args.headlines, args.varied) for _ in range(args.rounds)]
        )
    with tempfile.TemporaryDirectory() as tmp:
        submit = asyncio.run(bench_pipeline(args.submits, Path(tmp)))
        webhook = None if args.no_webhook else asyncio.run(bench_webhook(args.submits, Path(tmp)))

    print(f"{'measure':<34}{'n':>8}{'p50':>12}{'p99':>12}{'rate':>24}")
    varied = parse["varied"] if compared is None else compared["ours_varied"]  # its own median round
    rows = [("parser (µs per headline)", parse), ("  distinct headlines, once each", varied)]
    if compared is not None:
        rows.append(("baseline parser (µs per headline)", compared["baseline"]))
        rows.append(("  distinct headlines, once each", compared["baseline_varied"]))
    for label, row in rows:
        print(
            f"{label:<34}{row['headlines']:>8}{row['p50_us']:>12}{row['p99_us']:>12}"
            f"{row['per_s']:>10} h/s wall"
        )
        print(
            f"{'  in CPU time':<34}{'':>8}{row['cpu_p50_us']:>12}{row['cpu_p99_us']:>12}"
            f"{row['per_cpu_s']:>10} h/s cpu"
        )
    if compared is not None:
        print(
            f"ours / baseline per CPU second: {compared['speedup_per_cpu_s']}x "
            f"(median of {args.rounds} rounds); "
            f"best rounds {compared['ours_best_per_cpu_s']} vs {compared['baseline_best_per_cpu_s']} h/s cpu"
        )
        print(
            f"distinct headlines, ours / baseline: {compared['varied_speedup_per_cpu_s']}x; "
            f"best rounds {compared['ours_varied_best_per_cpu_s']} vs "
            f"{compared['baseline_varied_best_per_cpu_s']} h/s cpu"
        )
    for label, submits in [
        ("pipeline submit, journal on (ms)", submit),
        ("webhook request→signal (ms)", webhook),
    ]:
        if submits is not None:
            print(f"{label:<34}{submits['n']:>8}{submits['p50_ms']:>12}{submits['p99_ms']:>12}")
    print(
        json.dumps(
            {
                "bench": "news_parser",
                "parser": parse,
                "parser_vs_baseline": compared,
                "pipeline_submit": submit,
                "webhook": webhook,
                "journal": "sqlite (WAL) in a temp dir",
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
