"""`newstrader run` with a mainnet venue refuses to start without `--live`, before any network call.

The config's venues point at a local listener (one by `url`, the other through the proxy
variables), so a call that slipped out would be seen. With `--live` the same config does reach
the listener: proof that the listener would have caught one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

pytestmark = pytest.mark.timeout(300)  # two bot processes; slow to start on a loaded box


class Listener:
    """A loopback TCP listener that counts the connections made to it (and closes them)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mainnet_config(tmp_path: Path, listener: Listener) -> tuple[Path, dict[str, str], int]:
    hl, user, signer = Account.create(), Account.create(), Account.create()
    web_port = _free_port()
    config = tmp_path / "mainnet.toml"
    config.write_text(
        f"""
[[venues]]
name = "sim-first"
kind = "hyperliquid"
network = "sim"
url = "http://127.0.0.1:{listener.port}/hyperliquid"
account = "{hl.address}"

[[venues]]
name = "hlmain"
kind = "hyperliquid"
network = "mainnet"
url = "http://127.0.0.1:{listener.port}"
account = "{hl.address}"

[[venues]]
name = "astermain"
kind = "aster"
network = "mainnet"
account = "{user.address}"
signer = "{signer.address}"

[web]
port = {web_port}

[journal]
url = "sqlite:///{tmp_path / "journal.db"}"
"""
    )
    proxy = f"http://127.0.0.1:{listener.port}"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "NEWSTRADER_SIM_FIRST_SECRET": "0x" + bytes(hl.key).hex(),
        "NEWSTRADER_HLMAIN_SECRET": "0x" + bytes(hl.key).hex(),
        "NEWSTRADER_ASTERMAIN_SECRET": "0x" + bytes(signer.key).hex(),
        "NEWSTRADER_WEB_TOKEN": "mainnet-guard-token",
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "ALL_PROXY": proxy,
        "NO_PROXY": "",
    }
    return config, env, web_port


def test_mainnet_without_live_exits_non_zero_naming_the_key_and_calls_nothing(
    tmp_path: Path, listener: Listener
) -> None:
    config, env, web_port = _mainnet_config(tmp_path, listener)
    done = subprocess.run(
        [sys.executable, "-m", "newstrader.cli", "run", "--config", str(config)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "venues[1].network" in done.stderr and "--live" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert env["NEWSTRADER_HLMAIN_SECRET"][2:] not in done.stderr + done.stdout
    assert listener.connections == 0  # no venue, proxy or anything else was called
    assert not (tmp_path / "journal.db").exists()  # refused before anything was opened
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", web_port)) != 0  # nothing served


def _reaches_the_listener(argv: list[str], env: dict[str, str], cwd: Path, listener: Listener) -> None:
    """Run a newstrader process until the listener sees a connection from it (then kill it)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "newstrader.cli", *argv],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while listener.connections == 0:
            assert process.poll() is None or listener.connections, f"{argv[0]} exited without calling out"
            assert time.monotonic() < deadline, "no call reached the listener"
            time.sleep(0.1)  # poll interval
    finally:
        process.kill()
        process.wait(timeout=20)


def _news_file(tmp_path: Path) -> Path:
    news = tmp_path / "news.jsonl"
    news.write_text('{"t": 0, "id": "n1", "title": "x", "coin": "BTC", "side": "long"}\n')
    return news


def test_with_live_the_same_config_does_reach_out(tmp_path: Path, listener: Listener) -> None:
    """The control: the listener sees the venues' calls once `--live` allows them."""
    config, env, _ = _mainnet_config(tmp_path, listener)
    _reaches_the_listener(["run", "--config", str(config), "--live"], env, tmp_path, listener)


def _newstrader(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newstrader.cli", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _refused_without_calling_out(
    done: subprocess.CompletedProcess[str], key: str, listener: Listener
) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert key in done.stderr and "--live" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert listener.connections == 0


def test_replay_with_a_mainnet_venue_refuses_without_live(tmp_path: Path, listener: Listener) -> None:
    """`replay --config` builds a bot too: the guard sits in `Bot`, so replay cannot skip it."""
    config, env, _ = _mainnet_config(tmp_path, listener)
    news = _news_file(tmp_path)
    done = _newstrader(["replay", str(news), "--speed", "0", "--config", str(config)], env, tmp_path)
    _refused_without_calling_out(done, "venues[1].network", listener)
    assert not (tmp_path / "journal.db").exists()


def test_replay_with_live_does_reach_out(tmp_path: Path, listener: Listener) -> None:
    """The control for the replay case: `replay --live` builds the bot and calls the venues."""
    config, env, _ = _mainnet_config(tmp_path, listener)
    argv = ["replay", str(_news_file(tmp_path)), "--config", str(config), "--live"]
    _reaches_the_listener(argv, env, tmp_path, listener)


@pytest.mark.parametrize(
    ("kind", "url", "extra"),
    [
        ("hyperliquid", "https://api.hyperliquid.xyz", ""),
        ("aster", "https://fapi.asterdex.com", 'auth = "hmac"\napi_key = "k0123456789"\n'),
    ],
)
def test_a_testnet_label_on_a_mainnet_url_is_mainnet(
    tmp_path: Path, listener: Listener, kind: str, url: str, extra: str
) -> None:
    """The label cannot downgrade a mainnet host (Aster HMAC signs the same on every network)."""
    account = Account.create()
    config = tmp_path / "labelled.toml"
    config.write_text(
        f'[[venues]]\nname = "mislabelled"\nkind = "{kind}"\nnetwork = "testnet"\nurl = "{url}"\n'
        f'account = "{account.address}"\n{extra}\n[web]\nport = {_free_port()}\n'
        f'[journal]\nurl = "sqlite:///{tmp_path / "journal.db"}"\n'
    )
    proxy = f"http://127.0.0.1:{listener.port}"
    env = {
        **os.environ,
        "NEWSTRADER_MISLABELLED_SECRET": "0x" + bytes(account.key).hex(),
        "NEWSTRADER_WEB_TOKEN": "mislabelled-guard-token",
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "ALL_PROXY": proxy,
        "NO_PROXY": "",
    }
    done = _newstrader(["run", "--config", str(config)], env, tmp_path)
    _refused_without_calling_out(done, "venues[0].url", listener)
    assert url in done.stderr
    assert not (tmp_path / "journal.db").exists()


def test_the_bot_itself_refuses_mainnet_without_live(tmp_path: Path) -> None:
    """Any caller that builds a `Bot` (demo, replay, tests, a script) meets the guard."""
    from newstrader.bot import Bot
    from newstrader.config import MainnetRefused, settings_from_mapping

    settings = settings_from_mapping(
        {
            "venues": [
                {
                    "name": "hl",
                    "kind": "hyperliquid",
                    "network": "testnet",
                    "url": "https://api.hyperliquid.xyz/",
                }
            ],
            "journal": {"url": f"sqlite:///{tmp_path / 'j.db'}"},
        }
    )
    with pytest.raises(MainnetRefused, match=r"venues\[0\]\.url"):
        Bot(settings)
    assert Bot(settings, live=True).settings is settings
    assert not (tmp_path / "j.db").exists()
