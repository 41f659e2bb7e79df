"""The bot as a real process against the simulator process: the end-to-end harness.

`World.start_bot(...)` writes a config for both venues (Hyperliquid + Aster v3, fresh funded
keys), runs `python -m newstrader.cli run --config <tmp>` and waits for its `/healthz`. News goes
in through `POST /api/news` with the bearer token; the truth is read from the simulator's
`/admin/state`; the bot's journal is read (read-only) to see its events and outcomes.

Used by the tests' fixtures (tests/engine/conftest.py and the rooms that share it) and by
bench/soak.py. `start_engine_sim()` is a simulator with the fixed marks every target relies on.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from tests.harness.servers import SimServer, free_port, start_sim_server

from newstrader.sim.accounts import SimAccounts

VENUES = ("hyperliquid", "aster")
MODES = ("target", "close_then_open")
# Fixed marks make every target exact: 1000 USD at these prices is a whole number of steps.
MARKS = {
    "BTC": Decimal(50_000),
    "ETH": Decimal(2_000),
    "SOL": Decimal(100),
    "AVAX": Decimal(20),
    "LINK": Decimal(10),
    "LTC": Decimal(100),
    "BNB": Decimal(500),
    "AAVE": Decimal(200),
    "ZEC": Decimal(250),
    "BCH": Decimal(500),
    "DOT": Decimal(5),
}
NOTIONAL_USD = Decimal(1000)
BOT_START_DEADLINE_S = 120.0  # generous: the shared 2-core box can be very loaded


def target_size(coin: str, side: str) -> Decimal:
    size = NOTIONAL_USD / MARKS[coin]
    return size if side == "long" else -size


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy; fail with a clear message at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)  # poll interval, not synchronisation


def journal_rows(path: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    """Rows of a bot's SQLite journal, read-only (WAL lets us read while a bot writes)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, args))
    finally:
        conn.close()


@dataclass
class BotProcess:
    """One `newstrader run` process and the ways to drive and inspect it."""

    process: subprocess.Popen[bytes]
    url: str
    token: str
    log_path: Path
    journal_path: Path
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        # Plain http on loopback: verify=False only spares loading a CA bundle nobody needs.
        self.http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60.0,
            trust_env=False,
            verify=False,
        )

    def news(
        self, coin: str, side: str, news_id: str | None = None, title: str | None = None
    ) -> dict[str, Any]:
        news_id = news_id or f"t-{uuid.uuid4().hex[:12]}"
        body = {
            "id": news_id,
            "title": title or f"{side} {coin} test headline {news_id}",
            "coin": coin,
            "side": side,
            "source": "test",
        }
        return self.settled(self.post_news(body, wait=30))

    def post_news(self, body: dict[str, Any], wait: float | None = None) -> dict[str, Any]:
        """`POST /api/news` (with `?wait=` when given); the answer once the item is decided."""
        response = self.http.post("/api/news", json=body, params={} if wait is None else {"wait": wait})
        assert response.status_code in ((202,) if wait is None else (200, 202)), response.text
        data: dict[str, Any] = response.json()
        return data

    def signal(self, signal_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/signals/{signal_id}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def settled(self, reply: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
        """The webhook's answer once its signal has executed: final reason and per-venue outcomes.

        The webhook answers before the orders are done (a 202); a test that looks at the
        exchange next must wait for the outcomes, as a script would (`?wait=`, then polling)."""
        if reply["done"]:
            return reply
        view = self.signal_done(reply["signal"]["id"], timeout)
        return {**reply, "done": True, "reason": view["reason"], "outcomes": view["outcomes"]}

    def signal_done(self, signal_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """`GET /api/signals/{id}` polled until every venue has its outcome."""
        view: dict[str, Any] = wait_until(lambda: (v := self.signal(signal_id))["done"] and v, timeout)
        return view

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        """Read the bot's journal (read-only; WAL lets us read while it writes)."""
        return journal_rows(self.journal_path, sql, *args)

    def events(self, kind: str | None = None) -> list[sqlite3.Row]:
        if kind is None:
            return self.rows("SELECT * FROM events ORDER BY id")
        return self.rows("SELECT * FROM events WHERE kind = ? ORDER BY id", kind)

    def outcomes(self, signal_id: str | None = None) -> list[sqlite3.Row]:
        if signal_id is None:
            return self.rows("SELECT * FROM outcomes ORDER BY id")
        return self.rows("SELECT * FROM outcomes WHERE signal_id = ? ORDER BY id", signal_id)

    def stop(self) -> int:
        """SIGTERM and wait: a graceful stop."""
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)


@dataclass
class World:
    """The simulator, fresh keys funded on both venues, and bot processes started on them."""

    sim: SimServer
    workdir: Path
    keys: SimAccounts = field(default_factory=SimAccounts.fresh)
    bots: list[BotProcess] = field(default_factory=list)
    mode: str = "target"

    @property
    def bot(self) -> BotProcess:
        return self.bots[-1]

    def __post_init__(self) -> None:
        admin = self.sim.admin
        admin.create_account(self.keys.hl_address, usd=1_000_000, venue="hyperliquid")
        admin.create_account(
            self.keys.aster_user, usd=1_000_000, venue="aster", signers=[self.keys.aster_signer]
        )

    # ---- the truth

    @staticmethod
    def target(coin: str, side: str) -> Decimal:
        return target_size(coin, side)

    def position(self, venue: str, coin: str) -> Decimal:
        return Decimal(self.sim.admin.position(venue, self.keys.address(venue), coin))

    def positions(self, coin: str) -> dict[str, Decimal]:
        return {v: self.position(v, coin) for v in VENUES}

    def account(self, venue: str) -> dict[str, Any]:
        """The simulator's view of our account on `venue` (positions, open orders, fill count)."""
        accounts = self.sim.admin.state()["venues"][venue]["accounts"]
        found: dict[str, Any] = accounts[self.keys.address(venue).lower()]
        return found

    def fills(self) -> dict[str, int]:
        """Executions on each venue's account: what really traded, whoever sent it."""
        return {v: int(self.account(v)["fills"]) for v in VENUES}

    def outside_trade(self, venue: str, coin: str, size: Decimal | str) -> None:
        """A trade made outside the bot (by hand on the exchange's site)."""
        self.sim.admin.set_position(venue, self.keys.address(venue), coin, str(size))

    def liquidate(self, venue: str, coin: str) -> None:
        self.sim.admin.liquidate(venue, self.keys.address(venue), coin)

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.sim.admin.stats()
        return stats

    def requests(self, venue: str, *labels: str) -> int:
        counts = self.stats()["requests"].get(venue, {})
        return sum(n for label, n in counts.items() if any(part in label for part in labels))

    def orders_sent(self, venue: str) -> int:
        """Order placements the simulator received for this venue (any outcome)."""
        counts = self.stats()["requests"].get(venue, {})
        return sum(n for label, n in counts.items() if _is_order_label(venue, label))

    # ---- the bot

    def config(
        self,
        *,
        mode: str,
        web_port: int,
        journal_path: Path,
        max_signal_age_s: float = 30,
        reconcile_interval_s: float = 3600,
        position_source: str = "stream",
        aster_signer: str | None = None,
        venue_lines: dict[str, str] | None = None,
        max_hold_s: float | None = None,
    ) -> str:
        extra = venue_lines or {}
        hold = "" if max_hold_s is None else f"max_hold_s = {max_hold_s}"
        return f"""
[engine]
mode = "{mode}"
max_signal_age_s = {max_signal_age_s}
reconcile_interval_s = {reconcile_interval_s}
position_source = "{position_source}"
order_timeout_s = 2

[sizing]
notional_usd = {NOTIONAL_USD}
leverage = 3

[exits]
take_profit_pct = 50
stop_loss_pct = 50
{hold}

[[venues]]
name = "hyperliquid"
kind = "hyperliquid"
network = "sim"
url = "{self.sim.hl_url}"
account = "{self.keys.hl_address}"
{extra.get("hyperliquid", "")}

[[venues]]
name = "aster"
kind = "aster"
network = "sim"
url = "{self.sim.aster_url}"
account = "{self.keys.aster_user}"
signer = "{aster_signer or self.keys.aster_signer}"
{extra.get("aster", "")}

[news]
dedupe_window_s = 0
cooldown_s = 0
min_confidence = 0

[web]
host = "127.0.0.1"
port = {web_port}

[journal]
url = "sqlite:///{journal_path}"
"""

    def start_bot(
        self,
        *,
        mode: str = "target",
        journal_name: str = "bot.db",
        env: dict[str, str] | None = None,
        aster_signer_key: str | None = None,
        aster_signer: str | None = None,
        wait: bool = True,
        cli_args: tuple[str, ...] = (),
        **config: Any,
    ) -> BotProcess:
        """Spawn `newstrader run` on a fresh config; with `wait`, return once it answers /healthz."""
        web_port = free_port()
        journal_path = self.workdir / journal_name
        token = uuid.uuid4().hex
        config_path = self.workdir / f"bot-{len(self.bots)}.toml"
        config_path.write_text(
            self.config(
                mode=mode, web_port=web_port, journal_path=journal_path, aster_signer=aster_signer, **config
            )
        )
        log_path = self.workdir / f"bot-{len(self.bots)}.log"
        run_env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "NEWSTRADER_HYPERLIQUID_SECRET": self.keys.hl_key,
            "NEWSTRADER_ASTER_SECRET": aster_signer_key or self.keys.aster_signer_key,
            "NEWSTRADER_WEB_TOKEN": token,
            **(env or {}),
        }
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "newstrader.cli", *cli_args, "run", "--config", str(config_path)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=run_env,
                cwd=self.workdir,
            )
        bot = BotProcess(process, f"http://127.0.0.1:{web_port}", token, log_path, journal_path)
        self.bots.append(bot)
        if wait:
            wait_ready(bot)
        return bot


def wait_ready(bot: BotProcess) -> None:
    """Poll the bot's /healthz until it answers; fail with its log if it exits or never answers."""
    process = bot.process
    deadline = time.monotonic() + BOT_START_DEADLINE_S
    while True:
        if process.poll() is not None:
            raise AssertionError(f"bot exited with {process.returncode} during start-up:\n{bot.log()}")
        try:
            if bot.http.get("/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"bot did not answer within {BOT_START_DEADLINE_S}s:\n{bot.log()}")
        time.sleep(0.05)  # readiness poll interval


def _is_order_label(venue: str, label: str) -> bool:
    lowered = label.lower()
    if venue == "hyperliquid":
        return "order" in lowered and "exchange" in lowered and "status" not in lowered
    return "order" in lowered and "post" in lowered


def start_engine_sim() -> SimServer:
    """A simulator process at the fixed marks (rate limits off), for bots of the engine harness."""
    server = start_sim_server(deadline_s=BOT_START_DEADLINE_S)
    set_marks(server)
    return server


def set_marks(server: SimServer) -> None:
    """Every coin of `MARKS` at its fixed price (targets are exact whole steps there)."""
    for coin, price in MARKS.items():
        server.admin.set_price(coin, price)
