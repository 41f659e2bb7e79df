"""`make bench`: run every benchmark in turn, then regenerate docs/benchmarks.md and its charts.

Each script runs as its own process (`python bench/<name>.py`), prints a table and a final
JSON line; this collects both, writes the page (summary, each table verbatim, the raw JSON)
and draws the charts with matplotlib (Agg, no display). A benchmark that fails is reported
on the page as failed, with the tail of its error, and makes the run exit non-zero.

    uv run --frozen python bench/run_all.py [--only latency burst] [--out docs]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TIMEOUT_S = 1800


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    args: tuple[str, ...] = ()


BENCHES = (
    Bench("latency", "News-in → all venues filled: the seed's flow vs our engine"),
    Bench("overhead", "Own overhead: headline in → signed order bytes out (no network)"),
    Bench("burst", "Burst: 100 headlines in 10 s, 10 coins, both venues, rate limits on"),
    Bench("overhead_signing", "Per-order signing: ours vs the official SDK vs ccxt"),
    Bench("parser", "News path: parser throughput, pipeline submit, webhook → signal"),
    Bench("news_to_order", "News path: webhook receipt → first order bytes on the socket (journal on)"),
    Bench("sim_requests", "Simulator request handling (in-process)"),
    Bench("cluster_latency", "News → fill through the JetStream bus vs one process; kill -9 takeover"),
)


@dataclass
class Result:
    bench: Bench
    ok: bool
    seconds: float
    table: str
    data: dict[str, Any]
    error: str = ""


def run_one(bench: Bench) -> Result:
    """Run one script; its table is stdout without the JSON line, its data that line."""
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(BENCH / f"{bench.name}.py"), *bench.args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Result(bench, False, time.monotonic() - started, "", {}, f"timed out after {TIMEOUT_S} s")
    seconds = time.monotonic() - started
    lines = proc.stdout.rstrip().splitlines()
    data: dict[str, Any] = {}
    if lines:
        try:
            data = json.loads(lines[-1])
            lines = lines[:-1]
        except ValueError:
            data = {}
    if proc.returncode != 0 or not data:
        error = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        return Result(bench, False, seconds, "\n".join(lines), data, "\n".join(error))
    return Result(bench, True, seconds, "\n".join(lines), data)


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": sys.version.split()[0],
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


# ----------------------------------------------------------------------------- charts


def chart_latency(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    flows = list(data["flows"])
    labels = {
        "seed": "seed flow",
        "engine": "engine (default: stream)",
        "engine_rest": "engine (position_source rest)",
        "engine_close_then_open": "engine (close→open)",
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = range(len(flows))
    width = 0.38
    p50 = [data["flows"][f]["p50_ms"] for f in flows]
    p95 = [data["flows"][f]["p95_ms"] for f in flows]
    left.bar([x - width / 2 for x in xs], p50, width, label="p50", color="#4878a8")
    left.bar([x + width / 2 for x in xs], p95, width, label="p95", color="#a8c4e0")
    left.axhline(data["baseline_p50_ms"] / 3, color="#c44", ls="--", lw=1, label="seed p50 / 3 (the floor)")
    left.set_xticks(list(xs), [labels.get(f, f) for f in flows])
    left.set_ylabel("ms, news-in → all venues filled")
    left.set_title(f"{data['signals']} signals, {data['delay_ms']} ms per request")
    left.legend(fontsize=8)
    kinds = sorted({k for f in flows for k in data["by_kind_p50_ms"][f]})
    width = 0.8 / len(flows)
    for i, flow in enumerate(flows):
        values = [data["by_kind_p50_ms"][flow].get(k, 0) for k in kinds]
        right.bar(
            [k + i * width - 0.4 + width / 2 for k in range(len(kinds))],
            values,
            width,
            label=labels.get(flow, flow),
        )
    right.set_xticks(range(len(kinds)), kinds)
    right.set_ylabel("p50 ms")
    right.set_title("by signal kind")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chart_overhead(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(data["results"].values())
    fig, ax = plt.subplots(figsize=(9, 3.6))
    names = [r["what"] for r in rows]
    colors = ["#c44" if r["what"].startswith("ccxt") else "#4878a8" for r in rows]
    ax.barh(names, [r["p50_us"] for r in rows], color=colors)
    ax.set_xscale("log")
    ax.set_xlabel("µs of CPU per call, p50 (log scale)")
    ax.invert_yaxis()
    for y, r in enumerate(rows):
        ax.text(r["p50_us"] * 1.05, y, f"{r['p50_us']:g}", va="center", fontsize=8)
    ax.set_title("own overhead with the network taken out")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- page


def _get(results: dict[str, Result], name: str) -> dict[str, Any] | None:
    result = results.get(name)
    return result.data if result is not None and result.ok else None


def summary_rows(results: dict[str, Result]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    lat = _get(results, "latency")
    if lat:
        rows.append(
            (
                "news-in → all venues filled, p50 (seed flow → engine, default configuration)",
                f"{lat['baseline_p50_ms']} ms → {lat['engine_p50_ms']} ms: ratio p50 **{lat['ratio_p50']}**, "
                f"p95 **{lat['ratio_p95']}**; position_source rest: p50 {lat.get('rest_ratio_p50', '?')}",
                "≤ 0.25 (floor about 1/6)",
            )
        )
    ovh = _get(results, "overhead")
    if ovh:
        rows.append(
            (
                "own overhead, headline → signed Hyperliquid order (CPU)",
                f"p50 {ovh['ours_hl_p50_us']} µs, p99 {ovh['ours_hl_p99_us']} µs "
                f"(Aster v3: {ovh['ours_aster_p50_us']} / {ovh['ours_aster_p99_us']} µs)",
                "< 1 ms",
            )
        )
        if "headline_to_bytes_p50_us" in ovh:
            bytes_row = ovh["results"]["ours_bytes_hyperliquid"]
            rows.append(
                (
                    "own overhead, headline → HL order bytes on the socket (in-process transport)",
                    f"CPU p50 {ovh['headline_to_bytes_p50_us']} µs, "
                    f"p99 {ovh['headline_to_bytes_p99_us']} µs; "
                    f"wall p50 {bytes_row['wall_p50_us']} µs, p99 {bytes_row['wall_p99_us']} µs",
                    "p50 ≤ 300 µs, p99 ≤ 1 ms",
                )
            )
        if "ccxt_hl_p50_us" in ovh:
            rows.append(
                (
                    "ccxt building + signing the same Hyperliquid order (CPU)",
                    f"p50 {ovh['ccxt_hl_p50_us']} µs ({ovh['ccxt_vs_ours_sign_p50']}× our build + sign)",
                    "",
                )
            )
    burst = _get(results, "burst")
    if burst:
        rows.append(
            (
                f"burst: {burst['headlines']} headlines in {burst['seconds']:g} s, rate limits on",
                f"429s: **{burst['http_429']}**, settled: **{'yes' if burst['settled'] else 'NO'}**, "
                f"traded {burst['traded']}/{burst['headlines']}, wall {burst['wall_s']} s, "
                f"per-signal p95 {burst['signal_p95_ms']} ms",
                "0 429s, all settled",
            )
        )
    parser = _get(results, "parser")
    if parser:
        p = parser["parser"]
        rows.append(
            (
                "headline parser (one thread, median of rounds)",
                f"{p['per_s']} headlines/s wall, {p.get('per_cpu_s', '–')}/s per CPU second "
                f"(rounds {p.get('per_cpu_s_rounds', '–')}); "
                f"p50 {p['p50_us']} µs, p99 {p['p99_us']} µs (CPU: {p.get('cpu_p50_us', '–')} / "
                f"{p.get('cpu_p99_us', '–')} µs); distinct headlines, once each: "
                f"{p.get('varied', {}).get('per_cpu_s', '–')}/s per CPU second",
                "≥ 50,000/s",
            )
        )
    order = _get(results, "news_to_order")
    if order:
        receipt, own = order["receipt_to_order_bytes_ms"], order["own_ms"]
        rows.append(
            (
                "webhook receipt → first order bytes (journal on)",
                f"p50 {receipt.get('p50', '–')} ms, p99 {receipt.get('p99', '–')} ms "
                f"(our own, venue reads taken out: p50 {own.get('p50', '–')}, p99 {own.get('p99', '–')} ms)",
                "p50 ≤ 3 ms, p99 ≤ 10 ms",
            )
        )
    for name, result in results.items():
        if not result.ok:
            rows.append((name, "**failed** (see below)", ""))
    return rows


LATENCY_NOTES = """\
How it is measured: each venue is served by its own simulator process (each exchange is its
own server, so requests to one venue never queue behind the other's in one event loop), and
every venue request is held `delay_ms` before it is handled. One sequence of mixed signals is
driven three ways, signal by signal in turn (so all three see the same prices and the same
machine load), each on a fresh funded account, through the same production adapters:

- **seed flow** — what the seed describes: venue after venue, each read the account, close
  what it holds (reduce-only market), open; every call awaited in sequence. It is handed the
  mark for free (no price read for sizing or for Hyperliquid's slippage reference), so it is
  measured at its best.
- **engine (target)** — `Executor.execute`, the default: venues in parallel, one read of
  position + mark, one net order (a flip is one order; a same-side signal already at target
  needs none). The journal (SQLite WAL, FULL sync) is on: the order intent is made durable
  before each send, as in the bot.
- **engine (close→open)** — the engine with `mode = "close_then_open"`, still parallel.

Latency runs from the signal's arrival to the reply to the last venue's last order (the fill
is known then), or to the decision when a venue needed no order. The engine's journal
bookkeeping after the fill is shown separately ("until execute() returned").
"""


def latency_reading(data: dict[str, Any]) -> str:
    """What the latency numbers say, in words built from this run's numbers."""
    stages = data.get("engine_stages_p50_ms", {})
    rps, cpu = data["requests_per_signal"], data.get("cpu_ms_per_signal", {})
    waits = ", ".join(f"{flow} {n}" for flow, n in data.get("limiter_waits", {}).items()) or "not measured"
    decided = "; ".join(
        f"{flow}: " + ", ".join(f"{k} {n}" for k, n in counts.items())
        for flow, counts in data.get("decided_from", {}).items()
    )
    return f"""\
Reading the numbers: in its default configuration (`position_source = "stream"`) the engine
decides from the pushed position and mark and needs one round trip (the order; the REST read
the seed demands goes out alongside it), so about a sixth of the seed flow's time is its floor:
{data["baseline_p50_ms"] / 6:.0f} ms against the engine's p50 of {data["engine_p50_ms"]} ms.
With `position_source = "rest"` it needs two one after the other (read position + mark on both
venues at once, then one order per venue): floor a third, {data["baseline_p50_ms"] / 3:.0f} ms,
against {data.get("rest_p50_ms", "?")} ms. The seed flow needs two or three per venue, venue
after venue (requests per signal: seed {rps["seed"]}, engine {rps["engine"]}). Where each
decision came from (venue:source): {decided or "not measured"}. Per kind the REST floor differs:
1/2 for an open (the seed flow has nothing to close: read + open per venue) and 1/3 for a flip
or a same-side signal (read, close, open per venue). Requests held back by each flow's own
rate limiter: {waits}.

Where the engine's time goes, per venue (p50): reading position + mark
{stages.get("read position + mark", "?")} ms, the journal's durable write of the order intent
before the send {stages.get("journal intent", "?")} ms, the order round trip
{stages.get("order round trip", "?")} ms. The read is one round trip like the order, yet takes
longer: four requests are in flight at once and are answered by two single-threaded simulator
processes on a 2-core box shared with other work (load average above); CPU per signal in the
bench process is {cpu.get("engine", "?")} ms for the engine (two venues' replies at once, the
journal) against {cpu.get("seed", "?")} ms for the seed flow. The intent write is the price of
never sending an order the journal does not know about.

What this bench found and fixed on the hot path: `sniffio` was missing, so httpcore retried a
failing `import sniffio` (a scan of `sys.path`) on every request and lock, about 0.2 ms each on this box
(now a dependency); the engine read its cached position after the venue reads instead of
alongside them (now overlapped); signals arriving together each loaded the market table
(Hyperliquid `meta`, 20 of the 1200 weight a minute, per signal), draining the client's weight
budget until its rate limiter held requests back (now one load per venue). No extra round
trip was found: markets are cached, leverage is set once per coin, Hyperliquid's market order
reuses the mid read alongside the position. The benchmark gives each flow its own rate-limit
budget, as separate bots would have.

Left as is: a same-side signal after a price move trims or tops up by a step or two (a second
round trip for about a dollar), which is what `mode = "target"` asks; a tolerance band would
save it, an engine decision.
"""


def burst_reading(data: dict[str, Any]) -> str:
    """What the burst numbers say, from this run's numbers."""
    every_s = data["seconds"] * data["coins"] / data["headlines"]
    settled = "Yes" if data["settled"] else "**No**: " + "; ".join(data.get("mismatches", []))
    return f"""\
Reading the numbers: {data["http_429"]} of {data["http_requests"]} venue requests were refused
with 429 while the simulator enforced each venue's published limits; our own token buckets held
a request back {data.get("limiter_waits", "?")} times ({data.get("limiter_wait_s", "?")} s). Does every
coin on both venues hold exactly the target of its last headline after the burst?
{settled}. A headline's time (p50 {data["signal_p50_ms"]} ms) is the
engine's (p50 {data["engine_p50_ms"]} ms) plus the pipeline's journal writes before and after it
and any wait behind the previous headline of the same coin: one signal per coin runs at a time,
by design, and here a coin gets a new headline every {every_s:g} s.
"""


OVERHEAD_READING = """\
CPU time of the measuring thread is the figure that belongs to our code: wall time on this
shared box includes whatever else held the cores (compare the wall columns). The last row is
the real Hyperliquid adapter's `place_order` with an in-memory transport: the part above the
signed bytes is httpx building the request and parsing the reply, the rate limiter and the log
line.
"""


def render(results: dict[str, Result], info: dict[str, Any], out: Path) -> Path:
    """Write `out/benchmarks.md` and its charts under `out/img/`; returns the page's path."""
    img = out / "img"
    img.mkdir(parents=True, exist_ok=True)
    charts: dict[str, str] = {}
    for name, draw in (("latency", chart_latency), ("overhead", chart_overhead)):
        data = _get(results, name)
        if data:
            path = img / f"bench-{name}.png"
            draw(data, path)
            charts[name] = f"img/{path.name}"
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`bench/run_all.py`) on **{now}**. Every number on this page comes",
        "from that run; rerun `make bench` to regenerate the page and its charts.",
        "",
        f"Machine: {info['nproc']} cores (`nproc`), {info['cpu']}, Python {info['python']}; "
        f"load average (1, 5, 15 min) at the start {tuple(info['load_avg'])}, "
        f"at the end {tuple(info.get('load_avg_end', info['load_avg']))}.",
        "",
        "## Summary",
        "",
        "| measure | result | target |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in summary_rows(results)]
    for name, result in results.items():
        lines += ["", f"## {result.bench.title}", "", f"`bench/{name}.py` ({result.seconds:.0f} s)", ""]
        if name == "latency" and result.ok:
            lines += [LATENCY_NOTES, ""]
        if result.table:
            lines += ["```text", result.table, "```", ""]
        if name == "latency" and result.ok:
            lines += [latency_reading(result.data), ""]
        if name == "burst" and result.ok:
            lines += [burst_reading(result.data), ""]
        if name == "overhead" and result.ok:
            lines += [OVERHEAD_READING, ""]
        if name in charts:
            lines += [f"![{name}]({charts[name]})", ""]
        if not result.ok:
            lines += ["**Failed:**", "", "```text", result.error, "```", ""]
    lines += ["## Raw results", "", "<details><summary>the final JSON line of each script</summary>", ""]
    for name, result in results.items():
        lines += [f"`{name}`:", "", "```json", json.dumps(result.data, ensure_ascii=False), "```", ""]
    lines += ["</details>", ""]
    page = out / "benchmarks.md"
    page.write_text("\n".join(lines), encoding="utf-8")
    return page


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", help="run only these benchmarks (names without .py)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where benchmarks.md and img/ go")
    args = parser.parse_args()
    known = {b.name for b in BENCHES}
    unknown = sorted(set(args.only or ()) - known)
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; known: {', '.join(sorted(known))}")
    info = machine()
    results: dict[str, Result] = {}
    for bench in BENCHES:
        if args.only and bench.name not in args.only:
            continue
        print(f"== {bench.name}: {bench.title}", flush=True)
        result = run_one(bench)
        results[bench.name] = result
        print(result.table if result.ok else f"FAILED:\n{result.error}", flush=True)
        print(f"   ({result.seconds:.0f} s)", flush=True)
    info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    page = render(results, info, args.out)
    print(f"wrote {page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}")
    failed = [name for name, r in results.items() if not r.ok]
    if failed:
        print(f"failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
