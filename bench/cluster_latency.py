"""News → fill through the news stream vs in one process, and the takeover time of a standby.

Real processes throughout: the simulator, PostgreSQL and nats-server (started as the tests start
them), `newstrader run` bots and `newstrader ingest`. The same tradable headlines are replayed
twice, one every `--gap-s`:

- **single**: one bot with a SQLite journal and its own replay source (the one-machine setup);
- **bus**: `newstrader ingest` replays into JetStream, one bot on the PostgreSQL journal with
  `[bus]` consumes (per-account lanes, ack after journaled, fenced sends).

Latency per item and account: the item's `received_at` (stamped where the source read it) to the
moment its first filled order was journaled (wall clocks of one machine). Then a standby bot is
started and the owner SIGKILLed: takeover = kill → the standby holds every account (pg_locks).

    uv run --frozen python bench/cluster_latency.py [--items 20] [--gap-s 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from newstrader.cluster.ownership import cluster_view, libpq_dsn, lock_key
from newstrader.domain import NewsItem
from newstrader.news.parser import Parser, load_rules
from newstrader.sim.accounts import SimAccounts

ROOT = Path(__file__).resolve().parent.parent
COINS = ("BTC", "ETH", "SOL")
MARKS = {"BTC": 50_000, "ETH": 2_000, "SOL": 100}


def _servers() -> ModuleType:
    """tests/harness/servers.py: the same server starters the tests use."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the test harness is a package of the repository, not installed
    return importlib.import_module("tests.harness.servers")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout}s")
        time.sleep(0.05)  # poll interval


def _headlines(path: Path, items: int, gap_s: float) -> None:
    parser = Parser(load_rules(None), set(COINS))
    titles: list[str] = []
    for line in (ROOT / "tests" / "data" / "headlines.jsonl").read_text().splitlines():
        title = json.loads(line)["title"]
        found = parser.parse(NewsItem(id="probe", title=title)).signal
        if found is not None and found.coin in COINS and title not in titles:
            titles.append(title)
    rows = [
        {"t": round(k * gap_s, 3), "id": f"b-{k}", "title": titles[k % len(titles)]} for k in range(items)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _latencies_ms(url: str) -> list[float]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT n.received_at, min(o.updated_at) FROM news n JOIN signals s ON s.news_id = n.id"
                " JOIN orders o ON o.signal_id = s.id AND o.status = 'filled'"
                " GROUP BY n.id, n.received_at, o.venue"
            )
        ).all()
    engine.dispose()
    return [(datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() * 1000 for a, b in rows]


def _count_handled(url: str) -> int:
    """Items with a final outcome (0 while the bot has not made its journal yet)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM news WHERE outcome <> 'received'")).scalar_one()
    except OperationalError:
        return 0
    finally:
        engine.dispose()
    return int(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=20, help="tradable headlines per run")
    ap.add_argument("--gap-s", type=float, default=0.5, help="seconds between headlines")
    args = ap.parse_args()
    servers = _servers()
    sim, pg, nats = servers.start_sim_server(), servers.start_pg_server(), servers.start_nats_server()
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for coin, price in MARKS.items():
            sim.admin.set_price(coin, price)
        accounts = SimAccounts.fresh()
        sim.admin.create_account(accounts.hl_address, usd=1_000_000, venue="hyperliquid")
        sim.admin.create_account(
            accounts.aster_user, usd=1_000_000, venue="aster", signers=[accounts.aster_signer]
        )
        venues = (
            f'[[venues]]\nname = "hl"\nkind = "hyperliquid"\nurl = "{sim.hl_url}"\n'
            f'account = "{accounts.hl_address}"\n'
            f'[[venues]]\nname = "aster"\nkind = "aster"\nurl = "{sim.aster_url}"\n'
            f'account = "{accounts.aster_user}"\nsigner = "{accounts.aster_signer}"\n'
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("NEWSTRADER_")},
            "NEWSTRADER_HL_SECRET": accounts.hl_key,
            "NEWSTRADER_ASTER_SECRET": accounts.aster_signer_key,
            "NEWSTRADER_WEB_TOKEN": uuid.uuid4().hex,
        }
        news = work / "news.jsonl"
        _headlines(news, args.items, args.gap_s)
        common = (
            "[news]\ndedupe_window_s = 0\nmin_confidence = 0\n[sizing]\nnotional_usd = 100\n"
            "[engine]\nreconcile_interval_s = 3600\n"
        )

        def start(name: str, config: str, verb: str = "run") -> subprocess.Popen[bytes]:
            path = work / f"{name}.toml"
            path.write_text(config)
            with (work / f"{name}.log").open("ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "newstrader.cli", verb, "--config", str(path)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            procs.append(proc)
            return proc

        # ---- single process: own replay source, SQLite journal
        single_url = f"sqlite:///{work / 'single.db'}"
        single = start(
            "single",
            common + venues + f'[journal]\nurl = "{single_url}"\n[web]\nport = {_port()}\n'
            f'[[news.replay]]\npath = "{news}"\n',
        )
        _wait(
            lambda: (work / "single.db").exists() and _count_handled(single_url) >= args.items, 300, "single"
        )
        single.terminate()
        single.wait(timeout=30)
        single_ms = _latencies_ms(single_url)

        # ---- through the bus: ingest → JetStream → bot on the PostgreSQL journal
        for venue in ("hyperliquid", "aster"):
            for coin in COINS:  # the same starting point as the single run
                sim.admin.set_position(venue, accounts.address(venue), coin, 0)
        pg_url = pg.create_database()
        tag = uuid.uuid4().hex[:8]
        bus = f'[bus]\nurl = "{nats.url}"\nstream = "B{tag}"\nsubject = "b{tag}.news"\n'
        cluster = common + venues + bus + f'[journal]\nurl = "{pg_url}"\n'
        owner = start("owner", cluster + f'[cluster]\ninstance = "owner"\n[web]\nport = {_port()}\n')
        dsn = libpq_dsn(pg_url)
        keys = [lock_key("hyperliquid", accounts.hl_address), lock_key("aster", accounts.aster_user)]

        def owners() -> list[str | None]:
            view = asyncio.run(cluster_view(dsn))
            return [next((s.instance for s in view.get(k, []) if s.granted), None) for k in keys]

        _wait(lambda: owners() == ["owner", "owner"], 300, "owner claims both accounts")
        start("ingest", cluster + f'[web]\nport = {_port()}\n[[news.replay]]\npath = "{news}"\n', "ingest")
        _wait(lambda: _count_handled(pg_url) >= 2 * args.items, 300, "bus")
        bus_ms = _latencies_ms(pg_url)

        # ---- takeover: a standby, then kill -9 the owner
        start("standby", cluster + f'[cluster]\ninstance = "standby"\n[web]\nport = {_port()}\n')

        def standby_waits() -> bool:
            view = asyncio.run(cluster_view(dsn))
            return all(any(not s.granted for s in view.get(k, [])) for k in keys)

        _wait(standby_waits, 300, "standby waits on both accounts")
        killed = time.monotonic()
        owner.send_signal(signal.SIGKILL)
        _wait(lambda: owners() == ["standby", "standby"], 60, "standby takes over")
        takeover_s = time.monotonic() - killed
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        servers.stop_nats_server(nats)
        servers.stop_pg_server(pg)
        servers.stop_sim_server(sim)

    def stats(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "n": len(ordered),
            "p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
            "max_ms": round(ordered[-1], 1),
        }

    single_stats, bus_stats = stats(single_ms), stats(bus_ms)
    print(f"{'path':<34} {'n':>4} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
    for name, row in (
        ("single process (own replay, SQLite)", single_stats),
        ("bus (ingest→JetStream→bot, PG)", bus_stats),
    ):
        print(f"{name:<34} {row['n']:>4} {row['p50_ms']:>9} {row['p95_ms']:>9} {row['max_ms']:>9}")
    print(f"takeover after kill -9 (standby holds both accounts): {takeover_s:.3f} s")
    print(json.dumps({"single": single_stats, "bus": bus_stats, "takeover_s": round(takeover_s, 3)}))


if __name__ == "__main__":
    main()
