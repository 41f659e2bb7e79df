"""The time exit survives a real crash: `newstrader run` killed with SIGKILL, restarted later.

The deadline lives in the journal, so the second process closes the position in its start-up
turn — before it even serves `/healthz`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from newstrader.domain import utcnow

VENUES = ("hyperliquid", "aster")
START_DEADLINE_S = 60.0
# Plain HTTP on loopback: no proxy from the environment, no TLS context (and no CA bundle) to load.
LOOPBACK = httpx.Client(trust_env=False, verify=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)  # poll interval, not synchronisation
    return value


def _start(config: Path, env: dict[str, str], log: Path, url: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "newstrader.cli", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=config.parent,
        )

    def healthy() -> bool:
        assert proc.poll() is None, f"bot exited {proc.returncode}:\n{log.read_text()}"
        try:
            return LOOPBACK.get(f"{url}/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    _wait(healthy, START_DEADLINE_S, "bot health")
    return proc


@pytest.mark.timeout(180)
def test_sigkilled_bot_closes_the_overdue_position_on_restart(rig: Any, tmp_path: Path) -> None:
    port, token = _free_port(), uuid.uuid4().hex
    journal = tmp_path / "bot.db"
    config = tmp_path / "bot.toml"
    config.write_text(
        f"""
[engine]
reconcile_interval_s = 3600

[sizing]
notional_usd = 1000
leverage = 3

[exits]
take_profit_pct = 5
stop_loss_pct = 5
max_hold_s = 2

[[venues]]
name = "hyperliquid"
kind = "hyperliquid"
url = "{rig.sim.hl_url}"
account = "{rig.keys.hl_address}"

[[venues]]
name = "aster"
kind = "aster"
url = "{rig.sim.aster_url}"
account = "{rig.keys.aster_user}"
signer = "{rig.keys.aster_signer}"

[news]
dedupe_window_s = 0
min_confidence = 0

[web]
port = {port}

[journal]
url = "sqlite:///{journal}"
"""
    )
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "NEWSTRADER_HYPERLIQUID_SECRET": rig.keys.hl_key,
        "NEWSTRADER_ASTER_SECRET": rig.keys.aster_signer_key,
        "NEWSTRADER_WEB_TOKEN": token,
        # Only the start-up turn may act: the periodic one is pushed out of the test's reach.
        "NEWSTRADER_AUTOTRADE_CHECK_INTERVAL_S": "3600",
    }
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "bot.log"
    proc = _start(config, env, log, url)
    try:
        reply = LOOPBACK.post(
            f"{url}/api/news",
            params={"wait": 30},  # answer once the orders are done
            json={"id": "restart-1", "title": "long ETH", "coin": "ETH", "side": "long", "source": "t"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert reply.status_code == 200 and reply.json()["done"], reply.text
        assert all(rig.position(v, "ETH") > 0 for v in VENUES), log.read_text()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    rows = conn.execute("SELECT key, value FROM control WHERE key LIKE 'hold_deadline:%'").fetchall()
    conn.close()
    deadlines = {key: datetime.fromisoformat(json.loads(value)["deadline"]) for key, value in rows}
    assert set(deadlines) == {f"hold_deadline:{v}:ETH" for v in VENUES}
    _wait(lambda: utcnow() > max(deadlines.values()), 10, "deadline")
    assert all(rig.position(v, "ETH") > 0 for v in VENUES)  # nobody closed it while we were dead

    proc = _start(config, env, log, url)
    try:
        for venue in VENUES:
            assert rig.position(venue, "ETH") == Decimal(0), (venue, log.read_text()[-3000:])
            assert rig.open_orders(venue) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert "autotrade_time_exit" in log.read_text()
