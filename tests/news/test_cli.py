"""The `signal` and `replay` verbs through the real command line, with no config file around."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newstrader.cli import app
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
    assert set(payload) == {"signal", "reason", "why"}
    assert payload["signal"]["coin"] == "HYPE"
    assert payload["signal"]["side"] == "long"
    assert set(payload["signal"]) == {"coin", "side", "confidence", "terms", "why"}
    assert 0.5 <= payload["signal"]["confidence"] <= 1
    # The signal says why: the matched rule with its side and weight, and how the side won.
    assert payload["why"] == payload["signal"]["why"]
    assert any(line.startswith("listing 'will list': long") for line in payload["why"])
    assert payload["why"][-1].startswith("decided by strength")


def test_signal_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config file anywhere near
    none = CliRunner().invoke(app, ["signal", "--json", "Kraken says there are no plans to delist XRP"])
    assert none.exit_code == 0
    assert json.loads(none.stdout) == {"signal": None, "reason": "negated", "why": []}
    weak = CliRunner().invoke(app, ["signal", "--json", "Bitcoin surges"])
    assert json.loads(weak.stdout)["signal"] is None
    assert json.loads(weak.stdout)["reason"].startswith("low confidence")
    human = CliRunner().invoke(app, ["signal", "short eth 2x"])
    assert human.exit_code == 0 and "ETH" in human.stdout and "short" in human.stdout


def test_replay_standalone_runs_the_sample_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["replay", str(SAMPLE), "--speed", "0", "--json"])
    assert done.exit_code == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == len(read_replay_file(SAMPLE))
    assert [line["t"] for line in lines] == sorted(line["t"] for line in lines)
    assert any(line["signal"] for line in lines) and any(line["signal"] is None for line in lines)


def test_replay_bad_file_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "ok"}\n{oops\n', encoding="utf-8")
    done = CliRunner().invoke(app, ["replay", str(bad)])
    assert done.exit_code == 2
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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_replay_with_config_goes_through_the_bot_and_journal(tmp_path: Path) -> None:
    import sqlite3

    config = tmp_path / "bot.toml"
    config.write_text(f'[journal]\nurl = "sqlite:///{tmp_path / "j.db"}"\n', encoding="utf-8")
    done = CliRunner().invoke(app, ["replay", str(SAMPLE), "--speed", "0", "--json", "--config", str(config)])
    assert done.exit_code == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == len(read_replay_file(SAMPLE))
    with sqlite3.connect(tmp_path / "j.db") as db:
        outcomes = dict(db.execute("select outcome, count(*) from news group by outcome").fetchall())
    assert sum(outcomes.values()) == len(lines)  # every item journaled with its outcome
    assert "received" not in outcomes
    # The same file again: every item is a redelivery and is acted on never again.
    again = CliRunner().invoke(
        app, ["replay", str(SAMPLE), "--speed", "0", "--json", "--config", str(config)]
    )
    assert {json.loads(line)["reason"].split(":")[0] for line in again.stdout.splitlines()} == {"duplicate"}


def test_signal_execute_asks_the_running_bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import threading

    from newstrader.bot import Bot
    from newstrader.config import load_settings

    port = _free_port()
    config = tmp_path / "bot.toml"
    config.write_text(
        f'[journal]\nurl = "sqlite:///{tmp_path / "j.db"}"\n[web]\nport = {port}\n', encoding="utf-8"
    )
    monkeypatch.setenv("NEWSTRADER_WEB_TOKEN", "cli-test-token-0123456789")
    # A real bot serving its HTTP API from a thread of this process (no venues needed to decide).
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    bot = Bot(load_settings(config))
    try:
        asyncio.run_coroutine_threadsafe(bot.start(), loop).result(timeout=60)
        done = CliRunner().invoke(
            app, ["signal", "--execute", "--json", "--config", str(config), "Coinbase will list SUI"]
        )
        assert done.exit_code == 0, done.stderr
        reply = json.loads(done.stdout)
        assert reply["signal"]["coin"] == "SUI" and reply["signal"]["side"] == "long"
        rows = asyncio.run_coroutine_threadsafe(bot.journal.recent_news(5), loop).result(timeout=30)
        assert reply["news_id"] in {row["id"] for row in rows}
    finally:
        asyncio.run_coroutine_threadsafe(bot.stop(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
