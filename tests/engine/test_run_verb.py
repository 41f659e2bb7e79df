"""`newstrader run`: mainnet refused without --live, bad config named, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MAINNET = """
[[venues]]
name = "hl"
kind = "hyperliquid"
network = "mainnet"
account = "0x0000000000000000000000000000000000000001"
"""


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSTRADER_")}
    return subprocess.run(
        [sys.executable, "-m", "newstrader.cli", "run", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_mainnet_without_live_is_refused_and_says_why(tmp_path: Path) -> None:
    config = tmp_path / "mainnet.toml"
    config.write_text(MAINNET)
    result = _run(config)
    assert result.returncode == 2
    assert "venues[0].network" in result.stderr and "--live" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_engine_mode_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[engine]\nmode = "yolo"\n')
    result = _run(config)
    assert result.returncode == 2
    assert "engine.mode" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# ---------------------------------------------------------------- the operator's worst moments

SIM_VENUE = """
[[venues]]
name = "hl"
kind = "hyperliquid"
network = "sim"
url = "http://127.0.0.1:9/hyperliquid"
"""


def wait_until(condition: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)  # poll interval
    return found


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_missing_venue_key_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "nokey.toml"
    config.write_text(SIM_VENUE + f'[journal]\nurl = "sqlite:///{tmp_path / "j.db"}"\n')
    result = _run(config)
    assert result.returncode == 2
    assert _lines(result.stderr) == [
        "newstrader run: venues[0]: no key for hl: set env NEWSTRADER_HL_SECRET or secret_file"
    ]
    assert not (tmp_path / "j.db").exists()


def test_a_short_web_token_is_refused_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "token.toml"
    config.write_text("[web]\nport = 0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSTRADER_")}
    result = subprocess.run(
        [sys.executable, "-m", "newstrader.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "NEWSTRADER_WEB_TOKEN": "fifteen-chars-x"},
    )
    assert result.returncode == 2
    (line,) = _lines(result.stderr)
    assert "web.token" in line and "at least 16 characters" in line
    assert "fifteen-chars-x" not in result.stderr + result.stdout


def test_a_taken_web_port_is_one_line_naming_the_port(world: Any) -> None:
    """Refused before the journal is opened or a venue is called, with exit 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = world.workdir / "taken.toml"
        config.write_text(world.config(mode="target", web_port=port, journal_path=world.workdir / "t.db"))
        before = sum(sum(v.values()) for v in world.stats()["requests"].values())
        env = {
            **os.environ,
            "NEWSTRADER_HYPERLIQUID_SECRET": world.keys.hl_key,
            "NEWSTRADER_ASTER_SECRET": world.keys.aster_signer_key,
            "NEWSTRADER_WEB_TOKEN": "taken-port-token-0123",
        }
        result = subprocess.run(
            [sys.executable, "-m", "newstrader.cli", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    assert result.returncode == 1, result.stderr
    assert _lines(result.stderr) == [
        f"newstrader run: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert not (world.workdir / "t.db").exists()
    assert sum(sum(v.values()) for v in world.stats()["requests"].values()) == before


def test_log_json_and_log_level_reach_run_and_uvicorn(world: Any) -> None:
    """`newstrader --log-json --log-level warning run`: every log line is JSON, none below
    warning, and uvicorn's own complaint (a garbage request) comes through the same formatter."""
    bot = world.start_bot(cli_args=("--log-json", "--log-level", "warning"))
    with socket.create_connection(("127.0.0.1", int(bot.url.rsplit(":", 1)[1])), timeout=10) as raw:
        raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        raw.recv(1024)

    def uvicorn_line() -> dict[str, Any] | None:
        for line in _lines(bot.log()):
            if line.startswith("{") and json.loads(line).get("logger", "").startswith("uvicorn"):
                return dict(json.loads(line))
        return None

    found = wait_until(uvicorn_line, timeout=30)
    assert found["level"] == "warning" and "Invalid HTTP request" in found["event"]
    for line in _lines(bot.log()):
        if line.startswith("newstrader listening on"):
            continue  # stdout, not a log line
        event = json.loads(line)  # every log line is JSON
        assert event["level"] in ("warning", "error", "critical"), line


def test_a_paused_bot_says_so_at_start_with_why_and_since_when(world: Any) -> None:
    bot = world.start_bot()
    assert "bot_paused_at_start" not in bot.log()
    answer = bot.http.post("/api/control/pause")
    assert answer.status_code == 200 and answer.json()["paused"] is True
    bot.stop()
    restarted = world.start_bot(cli_args=("--log-json",))  # the same journal
    found = wait_until(
        lambda: [json.loads(x) for x in _lines(restarted.log()) if "bot_paused_at_start" in x], timeout=30
    )
    assert len(found) == 1
    (line,) = found
    assert line["level"] == "warning"
    assert line["reason"] == "operator"
    assert datetime.fromisoformat(line["since"]) <= datetime.now(UTC)
    assert datetime.now(UTC) - datetime.fromisoformat(line["since"]) < timedelta(minutes=10)
