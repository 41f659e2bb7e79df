"""The `signal` and `replay` verbs through the real command line, with no config file around."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

from newstrader.news.sources.replay import read_replay_file

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "newstrader" / "news" / "sample_news.jsonl"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newstrader.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_signal_json_without_config(tmp_path: Path) -> None:
    done = run_cli("signal", "--json", "BINANCE: WILL LIST $HYPE PERPETUAL", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)  # exactly one JSON object, nothing else on stdout
    assert set(payload) == {"signal", "reason"}
    assert payload["signal"]["coin"] == "HYPE"
    assert payload["signal"]["side"] == "long"
    assert set(payload["signal"]) == {"coin", "side", "confidence", "terms"}
    assert 0.5 <= payload["signal"]["confidence"] <= 1

    none = run_cli("signal", "--json", "Kraken says there are no plans to delist XRP", cwd=tmp_path)
    assert json.loads(none.stdout) == {"signal": None, "reason": "negated"}

    human = run_cli("signal", "short eth 2x", cwd=tmp_path)
    assert human.returncode == 0 and "ETH" in human.stdout and "short" in human.stdout


def test_replay_standalone_runs_the_sample_file(tmp_path: Path) -> None:
    done = run_cli("replay", str(SAMPLE), "--speed", "0", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == len(read_replay_file(SAMPLE))
    assert [line["t"] for line in lines] == sorted(line["t"] for line in lines)
    assert any(line["signal"] for line in lines) and any(line["signal"] is None for line in lines)


def test_replay_bad_file_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "ok"}\n{oops\n', encoding="utf-8")
    done = run_cli("replay", str(bad), cwd=tmp_path)
    assert done.returncode == 2
    assert "bad.jsonl:2: not JSON" in done.stderr
    assert "Traceback" not in done.stderr


def test_sample_news_is_a_good_demo() -> None:
    from newstrader.news.parser import Parser

    lines = read_replay_file(SAMPLE)
    assert len(lines) >= 40
    assert lines[-1].offset_s <= 180  # a demo, not a day
    parser = Parser()
    sides: dict[str, list[str]] = {}
    no_trade = 0
    for line in lines:
        result = parser.parse_text(line.item["title"])
        if result.signal is not None and result.confidence >= 0.5:
            sides.setdefault(result.signal.coin, []).append(result.signal.side.value)
        else:
            no_trade += 1
    assert {"BTC", "ETH", "SOL"} <= set(sides)
    assert len(sides) >= 8
    assert no_trade >= 8
    flips = [coin for coin, seq in sides.items() if any(a != b for a, b in itertools.pairwise(seq))]
    assert {"BTC", "ETH", "SOL"} <= set(flips)
