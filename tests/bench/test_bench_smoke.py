"""Smoke test of the benchmarks: each script runs end to end with tiny parameters against real
simulator processes, and its final JSON line parses and carries the keys the report uses.
No timing is asserted (this 2-core box is shared); correctness the benches check is."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
DEADLINE_S = 240.0  # the scripts' wall time; ~40 s on a quiet box, far more when the cores are shared

RUNS: dict[str, list[str]] = {  # tiny: seconds each
    "latency": ["--signals", "4", "--coins", "2", "--delay-ms", "5"],
    "overhead": ["--n", "20"],
    "burst": ["--headlines", "6", "--seconds", "1", "--coins", "3", "--delay-ms", "5"],
    "news_to_order": ["--items", "6", "--coins", "2"],
}

# One worker runs the scripts once; the first test also pays for running them.
pytestmark = [pytest.mark.xdist_group("bench_smoke"), pytest.mark.timeout(DEADLINE_S + 60)]


@pytest.fixture(scope="module")
def outputs(sim_server: Any) -> dict[str, tuple[int, str, str]]:
    """Run the scripts; name → (exit code, stdout, stderr). The two that trade use this worker's
    simulator (`--sim-url`, one after the other: each changes its faults or rate limits) while
    the network-free one runs alongside."""

    def start(name: str, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(BENCH / f"{name}.py"), *RUNS[name], *extra],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    deadline = time.monotonic() + DEADLINE_S
    results: dict[str, tuple[int, str, str]] = {}

    def finish(name: str, proc: subprocess.Popen[str]) -> None:
        try:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"bench/{name}.py did not finish within {DEADLINE_S:g} s")
        results[name] = (proc.returncode, out, err)

    alongside = start("overhead")
    try:
        for name in ("latency", "burst", "news_to_order"):
            finish(name, start(name, "--sim-url", sim_server.url))
        finish("overhead", alongside)
    finally:
        if alongside.poll() is None:
            alongside.kill()
        sim_server.admin.reset()  # the next test starts from the seeded world
    return results


def final_json(outputs: dict[str, tuple[int, str, str]], name: str) -> dict[str, Any]:
    code, out, err = outputs[name]
    assert code == 0, f"bench/{name}.py exited {code}:\n{err[-3000:]}"
    lines = out.strip().splitlines()
    assert len(lines) >= 2, f"bench/{name}.py printed no table:\n{out}"
    data: dict[str, Any] = json.loads(lines[-1])
    return data


def test_latency_reports_both_flows_and_the_ratio(outputs: dict[str, tuple[int, str, str]]) -> None:
    data = final_json(outputs, "latency")
    for key in (
        "baseline_p50_ms",
        "engine_p50_ms",
        "ratio_p50",
        "ratio_p95",
        "baseline_p95_ms",
        "engine_p95_ms",
        "rest_p50_ms",
        "rest_ratio_p50",
    ):
        assert isinstance(data[key], int | float) and data[key] > 0, key
    assert set(data["flows"]) == {"seed", "engine", "engine_rest", "engine_close_then_open"}
    # The default configuration decides from the account streams; position_source rest reads first.
    decided = data["decided_from"]
    assert decided["engine"] == {"aster:stream": 4, "hyperliquid:stream": 4}, decided
    assert decided["engine_rest"] == {"aster:rest": 4, "hyperliquid:rest": 4}, decided
    assert data["signals"] == 4 and sum(data["signal_kinds"].values()) == 4
    assert data["final_positions_agree"] is True
    # The seed flow's own request count: 2 per venue to open, 3 to close and reopen.
    assert 4 <= data["requests_per_signal"]["seed"] <= 6


def test_overhead_reports_ours_and_ccxt(outputs: dict[str, tuple[int, str, str]]) -> None:
    data = final_json(outputs, "overhead")
    for key in ("ours_hl_p50_us", "ours_hl_p99_us", "ours_aster_p50_us", "ccxt_hl_p50_us"):
        assert isinstance(data[key], int | float) and data[key] > 0, key
    assert data["results"]["ours_adapter_hyperliquid"]["n"] >= 20


def test_burst_trades_everything_without_429s_and_settles(outputs: dict[str, tuple[int, str, str]]) -> None:
    data = final_json(outputs, "burst")
    for key in ("http_429", "settled", "wall_s", "signal_p95_ms", "traded", "headlines", "limiter_waits"):
        assert key in data, key
    assert data["headlines"] == 6 and data["traded"] == 6, data["not_traded"]
    assert data["http_429"] == 0 and data["http_requests"] > 0
    assert data["settled"] is True, data["mismatches"]
    assert data["venue_outcomes"]["failed"] == 0, data["failed"]


def load_run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCH / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_run_all_renders_the_page_and_charts(
    outputs: dict[str, tuple[int, str, str]], tmp_path: Path
) -> None:
    run_all = load_run_all()
    benches = {b.name: b for b in run_all.BENCHES}
    results = {}
    for name in RUNS:
        data = final_json(outputs, name)
        table = "\n".join(outputs[name][1].strip().splitlines()[:-1])
        results[name] = run_all.Result(benches[name], True, 1.0, table, data)
    info = run_all.machine()
    page = run_all.render(results, info, tmp_path)
    text = page.read_text(encoding="utf-8")
    lat = final_json(outputs, "latency")
    assert "## Summary" in text and f"ratio p50 **{lat['ratio_p50']}**" in text
    assert "Reading the numbers" in text and "429" in text
    assert f"{info['nproc']} cores" in text and "Python" in text
    for chart in ("bench-latency.png", "bench-overhead.png"):
        assert (tmp_path / "img" / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"img/{chart}" in text


def test_news_to_order_times_every_item_from_the_handler_to_the_order_bytes(
    outputs: dict[str, tuple[int, str, str]],
) -> None:
    data = final_json(outputs, "news_to_order")
    assert data["items"] == 6 and data["outcomes"] == {"traded": 6}
    receipt, client = data["receipt_to_order_bytes_ms"], data["client_send_to_order_bytes_ms"]
    assert receipt["n"] == client["n"] == 6
    assert 0 < receipt["p50"] <= client["p50"]  # the handler got the request after the client sent it
    assert set(data["stages_ms"]) == {
        "received_to_parsed",
        "parsed_to_decided",
        "decided_to_sent",
        "sent_to_order_bytes",
    }


def run_parser_bench(*args: str) -> dict[str, Any]:
    """bench/parser.py on a small load (no webhook) with `args`; its final JSON line."""
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "parser.py"),
            *("--headlines", "1500", "--varied", "400", "--submits", "3", "--no-webhook"),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    return final_json({"parser": (done.returncode, done.stdout, done.stderr)}, "parser")


def test_parser_bench_reports_repeated_and_distinct_headlines_against_a_baseline() -> None:
    """bench/parser.py: both rows (the labelled set over and over; distinct headlines, each
    parsed once) with per-headline p50/p99, for ours and a baseline `src` (here: ours again)."""
    data = run_parser_bench("--baseline-src", str(ROOT / "src"), "--rounds", "1")
    parser = data["parser"]
    varied = parser["varied"]
    for row in (parser, varied):
        for key in ("per_s", "per_cpu_s", "p50_us", "p99_us", "cpu_p50_us", "cpu_p99_us"):
            assert isinstance(row[key], int | float) and row[key] > 0, key
        assert row["p50_us"] <= row["p99_us"]
    assert varied["headlines"] == 400 and varied["distinct"] == 800 > parser["distinct"]
    compared = data["parser_vs_baseline"]
    assert compared["rounds"] == 1 and compared["baseline_varied"]["distinct"] == 800
    assert data["pipeline_submit"]["n"] == 3


def test_parser_bench_alone_reports_the_median_of_its_rounds() -> None:
    """Without a baseline, bench/parser.py still runs `--rounds` fresh processes and reports the
    median round of each row, with every round's rate (one run swings on a shared box)."""
    data = run_parser_bench("--rounds", "3")
    for row in (data["parser"], data["parser"]["varied"]):
        rounds = row["per_cpu_s_rounds"]
        assert len(rounds) == 3 and rounds == sorted(rounds)
        assert row["per_cpu_s"] == rounds[1]
    assert data["parser_vs_baseline"] is None


def test_varied_headlines_are_distinct_and_new() -> None:
    spec = importlib.util.spec_from_file_location("bench_parser", BENCH / "parser.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    titles = ["BTC surges 20% to $90,000", "ETH falls 5%", "Markets calm"]
    fresh = bench.varied_headlines(titles, {"BTC", "ETH", "SOL"}, 50)
    assert len(fresh) == len(set(fresh)) == 50
    assert not set(fresh) & set(titles)
    assert any(not title.startswith(("BTC", "ETH")) for title in fresh)  # coins change too
