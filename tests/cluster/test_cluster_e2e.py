"""Must show (issue 19), with real processes: PostgreSQL, nats-server, the simulator, one
`newstrader ingest` and three `newstrader run` bots sharing one journal.

Six accounts across both venues: A and B own three each, C is configured with all six and
stands by. 200 items (40 tradable) go through ingest. A is SIGKILLed mid-stream: C owns A's
accounts within 5 s. B is then SIGSTOPped: C takes B's accounts when the server ends B's silent
sessions, and B, resumed, sends nothing. Every account ends with every tradable item handled
exactly once, the simulator's positions equal the last signal's target, and no account ever
had orders from two instances at once (the journal's instance column, the simulator's fills).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from eth_account import Account

from newstrader.cluster.ownership import cluster_view, libpq_dsn, lock_key
from newstrader.domain import NewsItem
from newstrader.news.parser import Parser, load_rules

DATA = Path(__file__).parents[1] / "data" / "headlines.jsonl"
COINS = ("BTC", "ETH", "SOL")
MARKS = {"BTC": Decimal(50_000), "ETH": Decimal(2_000), "SOL": Decimal(100)}
ITEMS, TRADABLE = 200, 40
GAP_S = 0.06  # between items at ingest: 200 items in 12 s
TAKEOVER_LIMIT_S = 5.0


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)  # poll interval, not synchronisation
    return value


@dataclass
class Acct:
    """One account: its venue name, kind, address, and the secret env the bots read."""

    name: str
    kind: str
    address: str
    secret: str
    signer: str | None = None

    def toml(self, url: str) -> str:
        signer = f'signer = "{self.signer}"\n' if self.signer else ""
        head = f'[[venues]]\nname = "{self.name}"\nkind = "{self.kind}"\n'
        return head + f'url = "{url}"\naccount = "{self.address}"\n{signer}'

    @property
    def key(self) -> int:
        return lock_key(self.kind, self.address)


def _news_file(path: Path) -> list[dict[str, Any]]:
    """200 replay lines: every 5th a headline the parser trades on BTC/ETH/SOL, the rest not."""
    parser = Parser(load_rules(None), set(COINS))
    tradable: list[str] = []
    for line in DATA.read_text().splitlines():
        title = json.loads(line)["title"]
        parsed = parser.parse(NewsItem(id="probe", title=title)).signal
        if parsed is not None and parsed.coin in COINS and title not in tradable:
            tradable.append(title)
    assert len(tradable) >= TRADABLE
    rows = []
    for k in range(ITEMS):
        if k % 5 == 4:
            title = tradable[k // 5]
        else:
            title = f"Weekly digest {k}: conference schedule announced for the spring"
            assert parser.parse(NewsItem(id="probe", title=title)).signal is None
        rows.append({"t": round(k * GAP_S, 3), "id": f"it-{k:03d}", "source": "wire", "title": title})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


class Proc:
    """A `newstrader` subprocess with its log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "newstrader.cli", *args], stdout=out, stderr=subprocess.STDOUT, env=env
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _operations(config: Path, log: str, env: dict[str, str]) -> dict[str, Any]:
    """`newstrader history/positions/cluster/stats --json` and GET /metrics against one bot."""
    url = log.split("newstrader listening on ", 1)[1].split()[0]
    env = {**env, "NEWSTRADER_WEB_URL": url}

    def cli(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "newstrader.cli", *args, "--config", str(config), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def answer(proc: subprocess.Popen[str]) -> Any:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        return json.loads(out)

    verbs = {  # the three verbs run side by side: each pays the interpreter's start-up
        "history": cli("history", "--limit", "1000"),
        "positions": cli("positions"),
        "cluster": cli("cluster"),
        "stats": cli("stats"),
    }

    reply = httpx.get(
        f"{url}/metrics",
        headers={"Authorization": f"Bearer {env['NEWSTRADER_WEB_TOKEN']}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return {**{verb: answer(proc) for verb, proc in verbs.items()}, "metrics": reply.text}


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


@pytest.mark.timeout(300)
def test_three_bots_six_accounts_kill_and_pause(
    sim: Any, pg_url: str, nats_server: Any, tmp_path: Path, procs: list[Proc]
) -> None:
    started = time.monotonic()
    for coin, price in MARKS.items():
        sim.admin.set_price(coin, price)
    accounts: list[Acct] = []
    for k in range(1, 2):  # Hyperliquid's weight budget is per IP, and C ends up with every account
        wallet = Account.create()
        sim.admin.create_account(wallet.address, usd=1_000_000, venue="hyperliquid")
        accounts.append(Acct(f"hl-{k}", "hyperliquid", wallet.address, "0x" + bytes(wallet.key).hex()))
    for k in range(1, 6):
        user, signer = Account.create(), Account.create()
        sim.admin.create_account(user.address, usd=1_000_000, venue="aster", signers=[signer.address])
        accounts.append(
            Acct(f"as-{k}", "aster", user.address, "0x" + bytes(signer.key).hex(), signer=signer.address)
        )
    by_name = {a.name: a for a in accounts}
    groups = {"A": ["hl-1", "as-1", "as-2"], "B": ["as-3", "as-4", "as-5"], "C": list(by_name)}

    tag = uuid.uuid4().hex[:10]
    common = f"""
[engine]
reconcile_interval_s = 3600

[sizing]
notional_usd = 100
leverage = 3

[exits]
take_profit_pct = 50
stop_loss_pct = 50

[news]
dedupe_window_s = 0
min_confidence = 0
max_age_s = 600

[journal]
url = "{pg_url}"

[bus]
url = "{nats_server.url}"
stream = "T{tag}"
subject = "t{tag}.news"
ack_wait_s = 2

"""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NEWSTRADER_")},
        "PYTHONUNBUFFERED": "1",
        "NEWSTRADER_WEB_TOKEN": uuid.uuid4().hex,
        **{f"NEWSTRADER_{a.name.upper().replace('-', '_')}_SECRET": a.secret for a in accounts},
    }
    configs: dict[str, Path] = {}
    for bot, names in groups.items():
        venues = "\n".join(
            by_name[n].toml(sim.hl_url if by_name[n].kind == "hyperliquid" else sim.aster_url) for n in names
        )
        cluster = f'\n[cluster]\ninstance = "bot-{bot}"\nheartbeat_s = 0.3\nsession_timeout_s = 2\n'
        cluster += "\n[web]\nport = 0\n"  # any free port, bound by the bot itself (no race)
        configs[bot] = tmp_path / f"{bot}.toml"
        configs[bot].write_text(common + cluster + venues)
    rows = _news_file(tmp_path / "news.jsonl")
    tradable_titles = sorted(r["title"] for i, r in enumerate(rows) if i % 5 == 4)
    ingest_config = tmp_path / "ingest.toml"
    ingest_config.write_text(common + f'\n[[news.replay]]\npath = "{tmp_path / "news.jsonl"}"\nspeed = 1\n')

    dsn = libpq_dsn(pg_url)

    def holders() -> dict[str, tuple[str | None, list[str]]]:
        view = asyncio.run(cluster_view(dsn))
        result = {}
        for acct in accounts:
            sessions = view.get(acct.key, [])
            owner = next((s.instance for s in sessions if s.granted), None)
            result[acct.name] = (owner, [s.instance for s in sessions if not s.granted])
        return result

    def run(bot: str) -> Proc:
        proc = Proc(["run", "--config", str(configs[bot])], env, tmp_path / f"{bot}.log")
        procs.append(proc)
        return proc

    a, b = run("A"), run("B")
    _wait(
        lambda: all(holders()[n][0] == f"bot-{g}" for g in "AB" for n in groups[g]),
        90,
        "A and B own their accounts",
    )
    phases = {"A, B own their accounts": time.monotonic() - started}
    c = run("C")
    ingest = Proc(["ingest", "--config", str(ingest_config)], env, tmp_path / "ingest.log")
    procs.append(ingest)
    _wait(lambda: all(h[1] == ["bot-C"] for h in holders().values()), 90, "C stands by on all six")
    assert a.alive() and b.alive(), a.text()[-2000:] + b.text()[-2000:]

    with psycopg.connect(dsn, autocommit=True) as db:

        def handled(venue: str) -> int:
            return int(
                db.execute(
                    "SELECT count(*) FROM news WHERE id LIKE %s AND outcome <> 'received'", (f"%@{venue}",)
                ).fetchone()[0]
            )

        # ---- kill -9 A mid-stream
        _wait(lambda: handled("hl-1") >= ITEMS // 4, 60, "A is a quarter through the stream")
        killed = time.monotonic()
        phases["A killed"] = killed - started
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
        _wait(lambda: all(holders()[n][0] == "bot-C" for n in groups["A"]), 30, "C owns A's accounts")
        takeover_s = time.monotonic() - killed
        assert takeover_s < TAKEOVER_LIMIT_S, f"takeover took {takeover_s:.2f}s"

        # ---- pause B: the server ends its silent sessions, C takes over; B resumed sends nothing
        _wait(lambda: handled("as-3") >= ITEMS // 2, 60, "B is half through the stream")
        b.proc.send_signal(signal.SIGSTOP)
        paused = time.monotonic()
        phases["B paused"] = paused - started
        _wait(lambda: all(holders()[n][0] == "bot-C" for n in groups["B"]), 30, "C owns B's accounts")
        pause_takeover_s = time.monotonic() - paused
        taken_at = datetime.now().astimezone()
        b.proc.send_signal(signal.SIGCONT)
        _wait(lambda: b.text().count("account_lost") >= 3, 30, "B notices it lost its accounts")

        # ---- every account handles every item
        try:
            _wait(lambda: all(handled(n) == ITEMS for n in by_name), 120, "all items handled on all accounts")
        except AssertionError:
            counts = {n: handled(n) for n in by_name}
            stuck = db.execute("SELECT id, outcome FROM news WHERE outcome = 'received' LIMIT 10").fetchall()
            raise AssertionError(f"handled {counts}; stuck {stuck}\n{c.text()[-6000:]}") from None

        phases["all handled"] = time.monotonic() - started
        # per account: one outcome per tradable item
        outcomes = db.execute(
            "SELECT o.venue, n.title, o.target_size, o.coin, o.status, n.received_at FROM outcomes o"
            " JOIN signals s ON s.id = o.signal_id JOIN news n ON n.id = s.news_id ORDER BY o.id"
        ).fetchall()
        per_account: dict[str, list[str]] = defaultdict(list)
        for venue, title, *_ in outcomes:
            per_account[venue].append(title)
        for name in by_name:
            assert sorted(per_account[name]) == tradable_titles, name
        assert all(row[4] == "ok" for row in outcomes), [r for r in outcomes if r[4] != "ok"][:3]

        # the simulator's positions equal the last signal's target
        last_target: dict[tuple[str, str], Decimal] = {}
        for venue, _title, target, coin, _status, _at in sorted(outcomes, key=lambda r: r[5]):
            last_target[(venue, coin)] = Decimal(target)
        for (venue, coin), target in last_target.items():
            acct = by_name[venue]
            assert Decimal(sim.admin.position(acct.kind, acct.address, coin)) == target, (venue, coin)

        # never two instances on one account: each account's orders come in one run per instance
        orders = db.execute(
            "SELECT venue, instance, created_at, filled_size FROM orders ORDER BY created_at, id"
        ).fetchall()
        runs: dict[str, list[str]] = defaultdict(list)
        for venue, instance, created_at, _filled in orders:
            if not runs[venue] or runs[venue][-1] != instance:
                runs[venue].append(instance)
            if instance == "bot-B":
                assert datetime.fromisoformat(created_at) < taken_at, (
                    "B journaled an order after the takeover"
                )
        for name in groups["A"]:
            assert runs[name] == ["bot-A", "bot-C"], (name, runs[name])
        for name in groups["B"]:
            assert runs[name] in (["bot-B", "bot-C"], ["bot-B"]), (name, runs[name])
        # the simulator's order log: every fill on an account is one the journal holds
        filled = defaultdict(int)
        for venue, _instance, _created, filled_size in orders:
            filled[venue] += Decimal(filled_size) > 0
        state = sim.admin.state()["venues"]
        for acct in accounts:
            assert state[acct.kind]["accounts"][acct.address.lower()]["fills"] == filled[acct.name], acct.name

        # ---- operations, asked of C: the shared journal across instances, ownership, metrics
        ops = _operations(configs["C"], c.text(), env)
        # every account's signals, those A and B journaled before they went too
        assert len(ops["history"]["signals"]) == TRADABLE * len(accounts)
        sizes = {
            (p["venue"], p["coin"]): Decimal(p["exchange_size"] or 0) for p in ops["positions"]["positions"]
        }
        assert {k: v for k, v in sizes.items() if v} == {k: v for k, v in last_target.items() if v}
        assert {row["venue"]: row["owner"] for row in ops["cluster"]["accounts"]} == {
            n: "bot-C" for n in by_name
        }
        assert ops["cluster"]["instances"]["bot-C"] == sorted(by_name)
        assert set(ops["stats"]["summary"]["by_venue"]) == set(by_name)  # every instance's fills
        for name in by_name:
            assert f'newstrader_account_owned{{instance="bot-C",venue="{name}"}} 1.0' in ops["metrics"]
            assert f'newstrader_bus_lag_items{{venue="{name}"}} 0.0' in ops["metrics"]

        latency = db.execute(
            "SELECT n.received_at, min(o.updated_at) FROM news n JOIN signals s ON s.news_id = n.id"
            " JOIN orders o ON o.signal_id = s.id AND o.status = 'filled' GROUP BY n.id, n.received_at"
        ).fetchall()
    waits = sorted(
        (datetime.fromisoformat(done) - datetime.fromisoformat(rec)).total_seconds() * 1000
        for rec, done in latency
    )
    report = {
        "takeover_kill9_s": round(takeover_s, 3),
        "takeover_sigstop_s": round(pause_takeover_s, 3),
        "bus_news_to_fill_ms_p50": round(waits[len(waits) // 2], 1),
        "bus_news_to_fill_ms_p95": round(waits[int(len(waits) * 0.95)], 1),
        "wall_s": round(time.monotonic() - started, 1),
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
    }
    print(json.dumps(report))
