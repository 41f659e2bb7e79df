"""Statistics from the exchanges' fills, per venue, coin and news source; `/api/stats` and the CSV.

Two news sources each open a position on both venues; one ends at its TP (a win), the other at
its SL (a loss), both fired by the simulator. Every figure must match what the simulator booked.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from newstrader.bot import Bot

VENUES = ("hyperliquid", "aster")
Rig = Any  # tests/autotrade/conftest.py: the `rig` fixture


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_stats_per_source_from_exchange_fills_and_the_cli_csv(rig: Rig, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    settings = rig.settings(web={"host": "127.0.0.1", "port": _free_port(), "token": token})
    bot = Bot(settings, serve_web=True)
    await bot.start()
    rig.bots.append(bot)

    await rig.news(bot, "ETH", "long", source="alpha")
    await rig.news(bot, "BTC", "short", source="beta")
    rig.set_price("ETH", Decimal(2_100))  # alpha's longs reach their TP
    rig.set_price("BTC", Decimal(50_700))  # beta's shorts reach their SL
    for venue in VENUES:
        assert rig.position(venue, "ETH") == 0 and rig.position(venue, "BTC") == 0
        assert rig.open_orders(venue) == []

    stats = await rig.stats(bot, fills=8)  # two opens and two closes on each venue
    alpha, beta = stats["by_source"]["alpha"], stats["by_source"]["beta"]
    assert (alpha["trades"], alpha["wins"], alpha["win_rate"]) == (2, 2, 1.0), alpha
    assert (beta["trades"], beta["wins"], beta["win_rate"]) == (2, 0, 0.0), beta
    assert Decimal(alpha["realized_pnl"]) > 0 > Decimal(beta["realized_pnl"])
    assert set(stats["by_coin"]) == {"ETH", "BTC"}
    total_booked = sum(rig.balance_change(v) for v in VENUES)
    assert Decimal(stats["net_pnl"]) == total_booked
    assert Decimal(alpha["net_pnl"]) + Decimal(beta["net_pnl"]) == total_booked
    for venue in VENUES:
        assert Decimal(stats["by_venue"][venue]["net_pnl"]) == rig.balance_change(venue)
    assert stats["trades"] == 4 and stats["win_rate"] == 0.5
    assert stats["avg_hold_s"] is not None and stats["avg_hold_s"] > 0
    assert stats["signal_to_fill_samples"] == 4
    assert 0 < stats["signal_to_fill_ms_p50"] <= stats["signal_to_fill_ms_p95"]

    # The operator's view: `newstrader stats --csv` against the running bot's HTTP API.
    out = tmp_path / "stats.csv"
    env = {**os.environ, "NEWSTRADER_WEB_URL": bot.web_url or "", "NEWSTRADER_WEB_TOKEN": token}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "newstrader.cli",
        "stats",
        "--json",
        "--csv",
        str(out),
        "--config",
        str(tmp_path / "absent.toml"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, stderr.decode()
    api = json.loads(stdout)
    assert api["summary"]["by_source"]["alpha"]["wins"] == 2
    rows = {(r["group"], r["key"]): r for r in csv.DictReader(io.StringIO(out.read_text()))}
    assert Decimal(rows[("total", "all")]["net_pnl"]) == total_booked
    assert rows[("source", "beta")]["wins"] == "0" and rows[("source", "alpha")]["trades"] == "2"
    for venue in VENUES:
        assert Decimal(rows[("venue", venue)]["net_pnl"]) == rig.balance_change(venue)


async def test_fill_ingestion_is_idempotent(rig: Rig) -> None:
    bot = await rig.start_bot()
    await rig.news(bot, "SOL", "long")
    first = await bot.stats()
    again = await bot.stats()
    assert first["fills"] == again["fills"] == 2
    assert len(await bot.journal.fills()) == 2


async def test_fill_reads_are_throttled_unless_stale_or_forced(rig: Rig, monkeypatch: Any) -> None:
    from newstrader.autotrade.stats import FillIngester
    from newstrader.autotrade.trader import CHECK_INTERVAL_ENV

    monkeypatch.setenv(CHECK_INTERVAL_ENV, "3600")  # the bot's own monitor stays out of this
    bot = await rig.start_bot()
    ingester = FillIngester(bot.venues, bot.journal, min_interval_s=3600)
    assert await ingester.ingest() == {v: 0 for v in VENUES}  # first read
    await rig.news(bot, "SOL", "long")
    assert await ingester.ingest() is None  # recent, nothing marked stale: no request
    ingester.mark_stale()
    assert await ingester.ingest() == {v: 1 for v in VENUES}  # the two opening fills
    assert await ingester.ingest(force=True) == {v: 0 for v in VENUES}  # idempotent
    assert len(await bot.journal.fills()) == 2
