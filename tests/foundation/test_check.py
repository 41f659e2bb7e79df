"""`newstrader init` + `newstrader check` against the real simulator, and without one."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from newstrader.config import load_settings, settings_from_mapping, write_example
from newstrader.preflight import check_all


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NEWSTRADER_")}
    return subprocess.run(
        [sys.executable, "-m", "newstrader.cli", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=90,
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when we return: nothing listens there


def _init_config(tmp_path: Path, hl_url: str, aster_url: str, **venue_lines: str) -> Path:
    """The `init` example with explicit venue URLs; `venue_lines` adds lines after each venue's kind."""
    config = tmp_path / "newstrader.toml"
    if not config.exists():
        write_example(config)
    text = config.read_text()
    for kind, url in (("hyperliquid", hl_url), ("aster", aster_url)):
        extra = venue_lines.get(kind, "")
        text = text.replace(f'kind = "{kind}"\n', f'kind = "{kind}"\nurl = "{url}"\n{extra}', 1)
    config.write_text(text)
    return config


@pytest.fixture(autouse=True)
def _no_newstrader_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("NEWSTRADER_"):
            monkeypatch.delenv(key)


def test_check_without_a_simulator_reports_unreachable_and_exits_1(tmp_path: Path) -> None:
    port = _closed_port()
    _init_config(tmp_path, f"http://127.0.0.1:{port}/hyperliquid", f"http://127.0.0.1:{port}/aster")
    done = _cli("check", "--config", "newstrader.toml", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "config ok: newstrader.toml (2 venues)"
    assert [line.split()[:2] for line in lines[1:]] == [["FAIL", "hyperliquid"], ["FAIL", "aster"]]
    assert all("unreachable" in line for line in lines[1:])
    assert "Traceback" not in done.stderr


def test_init_then_check_against_the_simulator_exits_0(tmp_path: Path, sim: Any) -> None:
    assert _cli("init", cwd=tmp_path).returncode == 0  # the real verb writes the file
    _init_config(tmp_path, sim.hl_url, sim.aster_url)
    done = _cli("check", "--config", "newstrader.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith(f"ok   hyperliquid (hyperliquid, sim) {sim.hl_url}; reachable")
    assert lines[2].startswith(f"ok   aster (aster, sim) {sim.aster_url}; reachable")
    assert "clock skew" in lines[1]
    assert "clock skew" in lines[2]
    assert "credentials: not set (env NEWSTRADER_HYPERLIQUID_SECRET or secret_file)" in lines[1]


def test_check_with_keys_verifies_them_and_never_logs_them(
    tmp_path: Path, sim: Any, make_account: Any
) -> None:
    trader = make_account()
    aster_user = make_account()
    api_wallet = Account.create()
    sim.admin.add_agent(aster_user.address, api_wallet.address, venue="aster")
    api_key = "0x" + bytes(api_wallet.key).hex()
    config = _init_config(
        tmp_path,
        sim.hl_url,
        sim.aster_url,
        hyperliquid=f'account = "{trader.address}"\n',
        aster=f'account = "{aster_user.address}"\nsigner = "{api_wallet.address}"\n',
    )
    env = {"NEWSTRADER_HYPERLIQUID_SECRET": trader.private_key, "NEWSTRADER_ASTER_SECRET": api_key}

    done = _cli(
        "--log-json",
        "--log-level",
        "debug",
        "check",
        "--json",
        "-c",
        "newstrader.toml",
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    by_name = {v["name"]: v for v in report["venues"]}
    assert by_name["hyperliquid"]["ok"] and by_name["aster"]["ok"]
    assert by_name["hyperliquid"]["credentials"].startswith(f"key of {trader.address}")
    assert by_name["aster"]["credentials"].startswith(
        f"API wallet {api_wallet.address} for {aster_user.address}"
    )
    for line in done.stderr.splitlines():
        json.loads(line)  # --log-json: every log line is one JSON object
    for secret in (trader.private_key, api_key, trader.private_key[2:], api_key[2:]):
        assert secret.lower() not in (done.stdout + done.stderr).lower()

    # The Aster key of the user instead of its API wallet: caught before any order is tried.
    os.environ.update(env)
    os.environ["NEWSTRADER_ASTER_SECRET"] = aster_user.private_key
    try:
        hl, aster = asyncio.run(check_all(load_settings(config)))
    finally:
        for key in env:
            os.environ.pop(key, None)
    assert hl.ok
    assert not aster.ok
    assert aster.credentials == "mismatch"
    assert [f"the key's address {aster_user.address} is not the configured signer {api_wallet.address}"] == [
        p for p in aster.problems if "signer" in p
    ]


async def test_check_reports_each_venue_on_its_own(sim: Any) -> None:
    """One unreachable venue does not hide another's result; an empty config checks nothing."""
    settings = settings_from_mapping(
        {
            "venues": [
                {"name": "up", "kind": "aster", "url": sim.aster_url},
                {
                    "name": "down",
                    "kind": "hyperliquid",
                    "url": f"http://127.0.0.1:{_closed_port()}/hyperliquid",
                },
                {"name": "wrong-path", "kind": "hyperliquid", "url": f"{sim.url}/nothing-here"},
            ]
        }
    )
    up, down, wrong = await check_all(settings)
    assert up.ok and up.reachable and up.clock_skew_s is not None
    assert not down.ok and not down.reachable
    assert not wrong.ok and any("HTTP 404" in p for p in wrong.problems)
    assert await check_all(settings_from_mapping({})) == []


async def test_check_warns_about_a_key_file_others_can_read(tmp_path: Path) -> None:
    key_file = tmp_path / "hl.key"
    key_file.write_text("0x" + "42" * 32)
    key_file.chmod(0o644)
    down = f"http://127.0.0.1:{_closed_port()}/hyperliquid"
    settings = settings_from_mapping(
        {"venues": [{"name": "hl", "kind": "hyperliquid", "url": down, "secret_file": str(key_file)}]}
    )
    [loose] = await check_all(settings)
    assert any("readable by other users" in note for note in loose.notes)
    key_file.chmod(0o600)
    [tight] = await check_all(settings)
    assert not any("readable by other users" in note for note in tight.notes)
