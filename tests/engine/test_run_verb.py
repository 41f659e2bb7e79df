"""`newstrader run`: mainnet refused without --live, bad config named, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
