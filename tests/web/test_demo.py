"""`newstrader demo` end to end, as a newcomer runs it: one process, every scene checked, Ctrl-C stops it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from newstrader.demo import SAMPLE_NEWS, load_sample_news

pytestmark = pytest.mark.xdist_group("web")

SCENES = {
    "opened on both venues",
    "flipped on both venues",
    "take-profit fired on the exchange",
    "manual close",
    "liquidation detected as drift",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sample_news_has_at_least_40_headlines() -> None:
    items = load_sample_news(SAMPLE_NEWS)
    assert len(items) >= 40
    assert all(item.get("title") for item in items)


def test_demo_runs_every_scene_then_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSTRADER_")}
    web_port, sim_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "newstrader.cli",
            "demo",
            "--fast",
            "--headlines",
            "4",
            "--port",
            str(web_port),
            "--sim-port",
            str(sim_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,  # nothing is written into the working directory
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if "press Ctrl-C to stop" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(150), "\n".join(lines[-40:])
        output = "\n".join(lines)
        for scene in SCENES:
            assert f"✓ {scene}" in output, output
        assert "✗" not in output, output

        # The printed URL and token work while it runs; the token is not needed for /healthz.
        url = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)/", output)
        token = re.search(r"token:\s+(\S+)", output)
        assert url and token
        assert url.group(1).endswith(f":{web_port}")  # the ports asked for are the ports used
        assert f"simulator: http://127.0.0.1:{sim_port}" in output
        positions = httpx.get(
            url.group(1) + "/api/positions",
            headers={"Authorization": f"Bearer {token.group(1)}"},
            trust_env=False,
        )
        assert positions.status_code == 200
        assert json.loads(positions.text)["positions"] is not None

        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, "\n".join(lines[-40:])
        assert time.monotonic() - started < 30
        reader.join(5)
        assert "Traceback" not in "\n".join(lines)
        assert list(tmp_path.iterdir()) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_make_demo_passes_port_and_sim_port() -> None:
    """`make demo PORT= SIM_PORT=` reaches `newstrader demo --port --sim-port` (dry run: the
    verb's own flags are exercised by the test above)."""
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        ["make", "-n", "-C", str(repo), "demo", "PORT=18081", "SIM_PORT=18901"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "newstrader demo --port 18081 --sim-port 18901" in done.stdout, done.stdout
    default = subprocess.run(
        ["make", "-n", "-C", str(repo), "demo"], capture_output=True, text=True, timeout=60
    )
    assert "newstrader demo --port 8080 --sim-port 8900" in default.stdout, default.stdout
