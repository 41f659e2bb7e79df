"""`newstrader sim` starts the simulator with uvicorn, prints its URLs and honours --seed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sim_verb_serves_and_prints_urls():
    port = _free_port()
    log = Path(tempfile.mkstemp(prefix="sim-cli-", suffix=".log")[1])
    markets = Path(tempfile.mkstemp(prefix="sim-markets-", suffix=".json")[1])
    rows = [
        {"coin": "BTC", "sz_decimals": 5, "max_leverage": 40, "price": "95000"},
        {"coin": "kPEPE", "sz_decimals": 0, "max_leverage": 10, "price": "0.0061"},
    ]
    markets.write_text(json.dumps(rows))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "newstrader.cli",
                "sim",
                "--port",
                str(port),
                "--seed",
                "3",
                "--no-rate-limits",
                "--markets",
                str(markets),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=2) as client:
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    state = client.get(base + "/admin/state")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "simulator never answered"
                    time.sleep(0.05)  # readiness poll interval
            assert state.json()["seed"] == 3
            assert state.json()["settings"]["rate_limits"] is False
            assert client.post(base + "/hyperliquid/info", json={"type": "allMids"}).json() == {
                "BTC": "95000",
                "kPEPE": "0.0061",
            }
            symbols = [
                s["symbol"] for s in client.get(base + "/aster/fapi/v1/exchangeInfo").json()["symbols"]
            ]
            assert symbols == ["BTCUSDT", "1000PEPEUSDT"]
        printed = log.read_text()
        assert f"{base}/hyperliquid" in printed and f"{base}/aster" in printed and f"{base}/admin" in printed
    finally:
        process.terminate()
        process.wait(timeout=15)
