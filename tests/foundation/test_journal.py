"""The journal against a real SQLite file and a real PostgreSQL server: round trips, concurrency,
migrations, and survival of kill -9. Every test taking `db_url` runs once per backend."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

import newstrader.journal as journal_module
from newstrader.domain import (
    Fill,
    LatencyLedger,
    NewsItem,
    OrderRequest,
    OrderResult,
    OrderStatus,
    OrderType,
    OutcomeStatus,
    Side,
    Signal,
    TimeInForce,
    VenueOutcome,
)
from newstrader.journal import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Journal,
    JournalError,
    NewsGate,
    _insert_if_new,
    normalize_title,
    orders_table,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
R = TypeVar("R")


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh journal URL: a SQLite file, or a new database on the worker's PostgreSQL server."""
    if request.param == "sqlite":
        return _url(tmp_path / "journal.db")
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def journal(db_url: str) -> AsyncIterator[Journal]:
    j = await Journal.open(db_url, instance="bot-test")
    yield j
    await j.close()


async def test_sqlite_file_is_wal_with_full_sync(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "dir" / "j.db"  # missing parent directories are created
    j = await Journal.open(_url(db))
    await j.set_control("paused", False)
    await j.close()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT max(version) FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    con.close()


async def test_news_round_trip_and_dedupe(journal: Journal) -> None:
    item = NewsItem(
        id="n-1",
        title="  Binance lists FOO!  ",
        source="rss:coindesk",
        body="body text",
        url="https://example.test/a",
        published_at=T0,
        received_at=T0 + timedelta(seconds=2),
        coin="FOO",
        side=Side.LONG,
    )
    assert await journal.record_news(item, "received", "new") is True
    assert await journal.record_news(item, "received", "again") is False  # redelivery
    assert await journal.news_seen("n-1") is True
    assert await journal.news_seen("n-2") is False

    norm = normalize_title(item.title)
    assert norm == "binance lists foo"
    assert await journal.recent_headline_seen(norm, T0) is True
    assert await journal.recent_headline_seen(norm, T0 + timedelta(seconds=3)) is False
    assert await journal.recent_headline_seen(norm, T0, exclude_id="n-1") is False
    assert await journal.recent_headline_seen("other", T0) is False

    await journal.update_news("n-1", "signal", "long FOO")
    [row] = await journal.recent_news(10)
    assert row["id"] == "n-1"
    assert row["outcome"] == "signal"
    assert row["reason"] == "long FOO"
    assert row["side"] == "long"
    assert row["published_at"] == T0.isoformat()
    assert row["received_at"] == (T0 + timedelta(seconds=2)).isoformat()
    json.dumps(row)  # plain, JSON-friendly values only


async def test_signal_round_trip(journal: Journal) -> None:
    sig = Signal(
        id="s-1",
        news_id="n-1",
        coin="ETH",
        side=Side.SHORT,
        confidence=0.75,
        terms=("hack", "exploit"),
        why=("hack 'hack': short 0.90", "decided by strength: long 0.00 vs short 0.90"),
        notional_usd=Decimal("123.45"),
        leverage=5,
        created_at=T0,
        source="webhook",
    )
    assert await journal.record_signal(sig, "accepted", "") is True
    assert await journal.record_signal(sig, "accepted", "") is False
    await journal.update_signal("s-1", "executed", "2 venues ok")
    [row] = await journal.recent_signals(5)
    assert row == {
        "id": "s-1",
        "news_id": "n-1",
        "coin": "ETH",
        "side": "short",
        "confidence": 0.75,
        "terms": ["hack", "exploit"],
        "why": ["hack 'hack': short 0.90", "decided by strength: long 0.00 vs short 0.90"],
        "notional_usd": "123.45",
        "leverage": 5,
        "source": "webhook",
        "created_at": T0.isoformat(),
        "status": "executed",
        "reason": "2 venues ok",
        "updated_at": row["updated_at"],
    }


async def test_insert_if_new_skips_only_a_duplicate_key(journal: Journal) -> None:
    """The one-statement insert (ON CONFLICT DO NOTHING) reports a duplicate key as "already
    there", but a row breaking another constraint (here NOT NULL) is an error, not a duplicate."""
    now = datetime.now(UTC)
    row = {"client_id": "c-1", "signal_id": "s-1", "venue": "hl", "coin": "BTC", "leg": "open"}
    row |= {"side": "buy", "size": Decimal(1), "order_type": "market", "reduce_only": False}
    row |= {"tif": "ioc", "max_slippage": Decimal("0.01"), "status": "pending", "created_at": now}
    row |= {"updated_at": now, "filled_size": Decimal(0)}
    assert await journal._write(lambda conn: _insert_if_new(conn, orders_table, row, ["client_id"])) is True
    assert await journal._write(lambda conn: _insert_if_new(conn, orders_table, row, ["client_id"])) is False
    broken = {**row, "client_id": "c-2", "coin": None}
    with pytest.raises(IntegrityError):
        await journal._write(lambda conn: _insert_if_new(conn, orders_table, broken, ["client_id"]))
    assert [i.client_id for i in await journal.pending_intents()] == ["c-1"]


async def test_intent_lifecycle_and_pending(journal: Journal) -> None:
    req = OrderRequest(
        coin="BTC",
        is_buy=False,
        size=Decimal("0.00012345"),
        client_id="0xabc",
        order_type=OrderType.LIMIT,
        limit_price=Decimal("65432.1"),
        reduce_only=True,
        tif=TimeInForce.GTC,
        max_slippage=Decimal("0.01"),
    )
    assert await journal.record_intent("s-1", "hl", "BTC", "close", "0xabc", req) is True
    assert await journal.record_intent("s-1", "hl", "BTC", "close", "0xabc", req) is False
    other = OrderRequest(coin="BTC", is_buy=True, size=Decimal("1"), client_id="0xdef")
    await journal.record_intent("s-1", "aster", "BTC", "open", "0xdef", other)

    [first, second] = await journal.pending_intents()
    assert first.client_id == "0xabc"
    assert first.request == req  # every field of the request survives exactly
    assert first.status == "pending"
    assert first.created_at.tzinfo is not None
    assert second.venue == "aster"

    result = OrderResult(
        client_id="0xabc",
        status=OrderStatus.FILLED,
        venue_order_id="987",
        filled_size=Decimal("0.00012345"),
        avg_price=Decimal("65430.5"),
    )
    assert await journal.update_intent("0xabc", "filled", result) is True
    await journal.update_intent("0xdef", "ambiguous", error="timeout after send")
    assert await journal.update_intent("nope", "failed") is False
    with pytest.raises(ValueError, match="unknown intent status"):
        await journal.update_intent("0xabc", "done")

    pending = await journal.pending_intents()
    assert [i.client_id for i in pending] == ["0xdef"]  # ambiguous is still unresolved
    done = await journal.intent("0xabc")
    assert done is not None
    assert done.status == "filled"
    assert done.venue_order_id == "987"
    assert done.filled_size == Decimal("0.00012345")
    assert done.avg_price == Decimal("65430.5")

    rows = await journal.recent_orders(10)
    assert [r["client_id"] for r in rows] == ["0xdef", "0xabc"]
    assert rows[0]["error"] == "timeout after send"
    assert rows[1]["size"] == "0.00012345"
    json.dumps(rows)


async def test_one_outcome_per_signal_and_venue(journal: Journal) -> None:
    """A second outcome of one signal on one account (an owner paused after its fencing check,
    woken once the new owner had finished the item) is refused by the journal; the first stands."""
    first = VenueOutcome("as-5", "BTC", OutcomeStatus.OK, reason="by bot-C", target_size=Decimal("0.01"))
    late = VenueOutcome("as-5", "BTC", OutcomeStatus.OK, reason="by bot-B", target_size=Decimal("0.01"))
    other = VenueOutcome("as-4", "BTC", OutcomeStatus.OK, reason="another account")
    assert await journal.record_outcome("s-1", first) is True
    assert await journal.record_outcome("s-1", late) is False
    assert await journal.record_outcome("s-1", other) is True
    assert await journal.record_outcome("s-2", late) is True
    rows = await journal.recent_outcomes(10)
    assert sorted((r["signal_id"], r["venue"], r["reason"]) for r in rows) == [
        ("s-1", "as-4", "another account"),
        ("s-1", "as-5", "by bot-C"),
        ("s-2", "as-5", "by bot-B"),
    ]
    done = await journal.venue_outcome("s-1", "as-5")
    assert done is not None and done.reason == "by bot-C"
    # Two writers at once (two bots' journals on one database): still one row.
    both = await asyncio.gather(*(journal.record_outcome("s-3", late) for _ in range(4)))
    assert sorted(both) == [False, False, False, True]


async def test_outcome_round_trip_with_latency(journal: Journal) -> None:
    ledger = LatencyLedger()
    ledger.mark("received", 100.0)
    ledger.mark("decided", 100.0004)
    ledger.mark("filled", 100.0254)
    outcome = VenueOutcome(
        venue="hl",
        coin="ETH",
        status=OutcomeStatus.OK,
        reason="flipped",
        exchange_size_before=Decimal("-0.5"),
        cached_size_before=Decimal("0"),
        target_size=Decimal("0.5"),
        exchange_size_after=Decimal("0.5"),
        orders=[OrderResult("c1", OrderStatus.FILLED, "1", Decimal("1.0"), Decimal("3000.1"))],
        latency=ledger,
    )
    await journal.record_outcome("s-9", outcome)
    [row] = await journal.recent_outcomes(5)
    assert row["signal_id"] == "s-9"
    assert row["status"] == "ok"
    assert row["exchange_size_before"] == "-0.5"
    assert row["target_size"] == "0.5"
    assert row["orders"][0]["filled_size"] == "1.0"
    assert row["orders"][0]["avg_price"] == "3000.1"
    assert row["latency"] == {"received": 100.0, "decided": 100.0004, "filled": 100.0254}
    assert list(row["latency_ms"]) == ["received", "decided", "filled"]
    assert row["latency_ms"]["filled"] == pytest.approx(25.4, abs=0.01)
    json.dumps(row)


async def test_events_and_cached_positions(journal: Journal) -> None:
    await journal.record_event("stale_local_cleared", "hl", "ETH", Decimal(0), Decimal("0.3"), "liquidated?")
    await journal.record_event("missing_local_adopted", "aster", "BTC", Decimal("-0.01"), None)
    events = await journal.recent_events(10)
    assert [e["kind"] for e in events] == ["missing_local_adopted", "stale_local_cleared"]
    assert events[0]["cached_size"] is None
    assert events[1]["cached_size"] == "0.3"
    assert events[1]["detail"] == "liquidated?"

    await journal.set_cached_position("hl", "ETH", Decimal("0.3"), Decimal("3000"))
    await journal.set_cached_position("hl", "ETH", Decimal("-0.7"), Decimal("3100.5"))  # overwrite
    await journal.set_cached_position("aster", "ETH", Decimal("1"), Decimal("2999"))
    cache = await journal.cached_positions()
    assert set(cache) == {("hl", "ETH"), ("aster", "ETH")}
    assert cache["hl", "ETH"].size == Decimal("-0.7")
    assert cache["hl", "ETH"].entry_price == Decimal("3100.5")
    assert set(await journal.cached_positions("aster")) == {("aster", "ETH")}

    await journal.set_cached_position("aster", "ETH", Decimal(0))  # flat means absent
    await journal.clear_cached_position("hl", "ETH")
    assert await journal.cached_positions() == {}


async def test_fills_are_idempotent_and_filtered(journal: Journal) -> None:
    def fill(venue: str, fill_id: str, minutes: int) -> Fill:
        return Fill(
            venue=venue,
            coin="ETH",
            is_buy=True,
            size=Decimal("0.1"),
            price=Decimal("3000.25"),
            fee=Decimal("0.000135"),
            realized_pnl=Decimal("-1.5"),
            time=T0 + timedelta(minutes=minutes),
            fill_id=fill_id,
            venue_order_id="o1",
            client_id="c1",
        )

    assert await journal.record_fill(fill("hl", "f1", 0)) is True
    assert await journal.record_fill(fill("hl", "f1", 0)) is False
    assert await journal.record_fill(fill("aster", "f1", 1)) is True  # same id, other venue
    assert await journal.record_fill(fill("hl", "f2", 2)) is True
    assert await journal.fills() == [fill("hl", "f1", 0), fill("aster", "f1", 1), fill("hl", "f2", 2)]
    assert [f.fill_id for f in await journal.fills(venue="hl")] == ["f1", "f2"]
    assert await journal.fills(since=T0 + timedelta(minutes=1), venue="aster") == [fill("aster", "f1", 1)]


async def test_control_values(journal: Journal) -> None:
    assert await journal.get_control("paused") is None
    assert await journal.get_control("paused", False) is False
    await journal.set_control("paused", True)
    await journal.set_control("hold_deadlines", {"hl:ETH": "2026-01-01T00:00:00+00:00"})
    await journal.set_control("paused", False)
    assert await journal.get_control("paused") is False
    assert await journal.get_control("hold_deadlines") == {"hl:ETH": "2026-01-01T00:00:00+00:00"}
    with pytest.raises(TypeError):
        await journal.set_control("bad", object())


async def test_many_concurrent_writers_lose_nothing(journal: Journal) -> None:
    tasks, per_task = 50, 20

    async def writer(t: int) -> None:
        for k in range(per_task):
            if k % 2:
                await journal.record_news(NewsItem(id=f"n-{t}-{k}", title=f"t {t} {k}"), "received")
            else:
                req = OrderRequest(coin="ETH", is_buy=True, size=Decimal(k + 1), client_id=f"c-{t}-{k}")
                await journal.record_intent(f"s-{t}", "hl", "ETH", "open", f"c-{t}-{k}", req)

    started = time.perf_counter()
    await asyncio.gather(*(writer(t) for t in range(tasks)))
    elapsed = time.perf_counter() - started
    counts = await journal.counts()
    assert counts["news"] == tasks * per_task // 2
    assert counts["orders"] == tasks * per_task // 2
    assert elapsed < 20, f"{tasks * per_task} writes took {elapsed:.1f}s"


async def test_one_failing_write_does_not_undo_its_group(journal: Journal) -> None:
    """A write that fails inside a group commit fails alone; the others in its group are kept."""
    ok_items = [NewsItem(id=f"ok-{i}", title="x") for i in range(20)]
    bad = NewsItem(id="bad", title="x", received_at=None)  # type: ignore[arg-type]  # NOT NULL column
    results = await asyncio.gather(
        *(journal.record_news(i, "received") for i in ok_items[:10]),
        journal.record_news(bad, "received"),
        *(journal.record_news(i, "received") for i in ok_items[10:]),
        return_exceptions=True,
    )
    assert sum(r is True for r in results) == 20
    assert sum(isinstance(r, Exception) for r in results) == 1
    assert (await journal.counts())["news"] == 20


async def test_two_journals_on_one_database(db_url: str) -> None:
    """Two processes' worth of writers (two bots, or a bot and a CLI verb) share one database
    without 'locked' errors; opened together, they migrate one at a time."""
    a, b = await asyncio.gather(Journal.open(db_url), Journal.open(db_url))
    try:

        async def write(j: Journal, prefix: str) -> None:
            for k in range(100):
                await j.record_news(NewsItem(id=f"{prefix}-{k}", title="x"), "received")

        await asyncio.gather(write(a, "a"), write(b, "b"), write(a, "a2"), write(b, "b2"))
        assert (await a.counts())["news"] == 400
        assert await b.news_seen("a-99")
    finally:
        await a.close()
        await b.close()


async def test_in_memory_url_and_closed_journal() -> None:
    j = await Journal.open("sqlite://")
    await j.set_control("k", [1, "2"])
    assert await j.get_control("k") == [1, "2"]
    # No file: the gate is read on the writer's one connection, with the same answers.
    await j.record_news(NewsItem(id="m-1", title="in memory", received_at=T0), "traded")
    assert await j.news_gate("m-1", "in memory", T0) == NewsGate("traded", False, False)
    assert await j.news_gate("m-2", "in memory", T0) == NewsGate(None, True, False)
    await j.close()
    with pytest.raises(JournalError, match="closed"):
        await j.get_control("k")
    with pytest.raises(JournalError, match="closed"):
        await j.news_gate("m-1", "in memory", None)


async def test_newer_schema_is_refused(db_url: str) -> None:
    j = await Journal.open(db_url)
    await j.close()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO schema_version VALUES (:v, :at)"),
            {"v": SCHEMA_VERSION + 1, "at": T0.isoformat()},
        )
    engine.dispose()
    with pytest.raises(JournalError, match="newer"):
        await Journal.open(db_url)


@pytest.mark.parametrize("made_at", ["0001", "0002"])
async def test_a_journal_from_before_alembic_is_upgraded(db_url: str, made_at: str) -> None:
    """A database made before Alembic (create_all plus, at schema 2, signals.why added by hand;
    no alembic_version) keeps its rows and gains what it lacks; a reopen at head changes nothing."""
    from alembic import command
    from alembic.config import Config

    engine = create_engine(db_url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, made_at)
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(
            text(
                "INSERT INTO orders (client_id, signal_id, venue, coin, leg, side, size, order_type,"
                " reduce_only, tif, max_slippage, status, filled_size, created_at, updated_at) VALUES"
                " ('old-1', 's', 'hl', 'ETH', 'open', 'buy', '1', 'market', false, 'ioc', '0.05',"
                " 'filled', '1', :at, :at)"
            ),
            {"at": T0.isoformat()},
        )
        conn.execute(
            text(
                "INSERT INTO signals (id, news_id, coin, side, confidence, terms, source, created_at,"
                " status, reason, updated_at) VALUES ('s-old', 'n-old', 'BTC', 'long', 1.0, '[]', 'x',"
                " :at, 'executed', '', :at)"
            ),
            {"at": T0.isoformat()},
        )
        for status in ("ok", "ok", "failed"):  # a doubled outcome, as two bots could write before 0004
            conn.execute(
                text(
                    "INSERT INTO outcomes (signal_id, venue, coin, status, reason, orders, latency,"
                    " created_at) VALUES ('s-old', 'hl', 'BTC', :status, '', '[]', '{}', :at)"
                ),
                {"status": status, "at": T0.isoformat()},
            )
    assert "instance" not in {c["name"] for c in inspect(engine).get_columns("orders")}
    assert ("why" in {c["name"] for c in inspect(engine).get_columns("signals")}) == (made_at == "0002")
    engine.dispose()
    for _ in range(2):
        j = await Journal.open(db_url, instance="bot-b")
        await j.close()
    j = await Journal.open(db_url)
    try:
        await j.record_signal(
            Signal(id="s-new", news_id="n-new", coin="ETH", side=Side.SHORT, why=("r",)), "accepted"
        )
        rows = {r["id"]: r for r in await j.recent_signals(10)}
        assert rows["s-old"]["why"] is None and rows["s-new"]["why"] == ["r"]
    finally:
        await j.close()
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT client_id, instance FROM orders")).all() == [("old-1", None)]
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0004"
        # one outcome per (signal, venue): the first of the doubled rows is kept
        kept = conn.execute(text("SELECT signal_id, venue, status FROM outcomes")).all()
        assert kept == [("s-old", "hl", "ok")]
        versions = [v for (v,) in conn.execute(text("SELECT version FROM schema_version ORDER BY 1"))]
    engine.dispose()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


async def test_each_migration_takes_back_its_schema_version_on_downgrade(db_url: str) -> None:
    """Stepping down one revision at a time removes that revision's schema_version row (and its
    change); stepping up again writes them back, and the journal opens at head."""
    from alembic import command
    from alembic.config import Config

    j = await Journal.open(db_url)
    await j.close()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn

        def versions() -> list[int]:
            return [v for (v,) in conn.execute(text("SELECT version FROM schema_version ORDER BY 1"))]

        assert versions() == list(range(1, SCHEMA_VERSION + 1))
        for top in range(SCHEMA_VERSION - 1, 0, -1):
            command.downgrade(config, "-1")
            assert versions() == list(range(1, top + 1))
        assert "why" not in {c["name"] for c in inspect(conn).get_columns("signals")}
        assert "instance" not in {c["name"] for c in inspect(conn).get_columns("orders")}
        command.upgrade(config, "head")
        assert versions() == list(range(1, SCHEMA_VERSION + 1))
    engine.dispose()
    j = await Journal.open(db_url)
    await j.close()


async def test_postgresql_commits_are_synchronous(pg_url: str) -> None:
    """Durable before return on PostgreSQL too: the writer's sessions run synchronous_commit=on."""
    j = await Journal.open(pg_url)
    try:
        setting = await j._write(lambda conn: conn.exec_driver_sql("SHOW synchronous_commit").scalar())
        assert setting == "on"
    finally:
        await j.close()


async def test_orders_carry_the_instance_that_journaled_them(db_url: str) -> None:
    a, b = await Journal.open(db_url, instance="bot-a"), await Journal.open(db_url, instance="bot-b")
    try:
        req = OrderRequest(coin="ETH", is_buy=True, size=Decimal(1), client_id="c-a")
        assert await a.record_intent("s1", "hl", "ETH", "open", "c-a", req)
        req_b = OrderRequest(coin="ETH", is_buy=False, size=Decimal(1), client_id="c-b")
        assert await b.record_intent("s1", "hl", "ETH", "close", "c-b", req_b)
        assert not await b.record_intent("s1", "hl", "ETH", "open", "c-a", req)  # a's, not stolen
        rows = {row["client_id"]: row["instance"] for row in await a.recent_orders()}
        assert rows == {"c-a": "bot-a", "c-b": "bot-b"}
    finally:
        await a.close()
        await b.close()


def test_reopen_after_kill_keeps_every_committed_write(db_url: str) -> None:
    """A process writing as fast as it can is SIGKILLed; everything it reported committed is there,
    including news items it only queued before awaiting their order intents (the pipeline's way)."""
    script = Path(__file__).with_name("journal_writer_proc.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    reported: list[tuple[str, str]] = []
    deadline = time.monotonic() + 60
    while len(reported) < 400 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(("n-", "c-")) and len(line.split()) == 2:  # anything else is log output
            news_id, client_id = line.split()
            reported.append((news_id, client_id))
    proc.send_signal(signal.SIGKILL)  # mid-write: the writers never pause
    rest = proc.stdout.read()  # lines it printed before dying are committed too
    proc.wait(timeout=10)
    for line in rest.splitlines():
        if line.startswith("n-") and len(line.split()) == 2:
            news_id, client_id = line.split()
            reported.append((news_id, client_id))
    assert len(reported) >= 400, "the writer process did not get going"

    if db_url.startswith("sqlite"):
        con = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()

    async def check() -> tuple[set[str], set[str]]:
        j = await Journal.open(db_url)
        try:
            news = {row["id"] for row in await j.recent_news(1_000_000)}
            orders = {row["client_id"] for row in await j.recent_orders(1_000_000)}
            return news, orders
        finally:
            await j.close()

    news, orders = asyncio.run(check())
    missing_news = [n for n, _ in reported if n not in news]
    missing_orders = [c for _, c in reported if c not in orders]
    assert missing_news == []
    assert missing_orders == []
    assert any(int(n.split("-")[1]) % 2 for n, _ in reported), "no queued-only lane reported"


async def test_queued_rows_share_the_order_intents_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group of queued-only rows (news, signal) waits for the intent that follows them, so the
    three are made durable by one commit (one fsync on the order's way, not two in a row). The
    wait is stretched here so the test does not depend on how fast this box is; an awaited
    write (the intent, `record_news`) never waits."""
    monkeypatch.setattr(journal_module, "QUEUED_ROWS_LINGER_S", 30.0)
    journal = await Journal.open(_url(tmp_path / "linger.db"))
    commits: list[int] = []
    event.listen(journal._writer._engine, "commit", lambda conn: commits.append(1))
    try:
        news = journal.queue_news(NewsItem(id="q-1", title="queued"), "received")
        signal = journal.queue_signal(Signal(id="s-1", news_id="q-1", coin="ETH", side=Side.LONG), "accepted")
        deadline = time.monotonic() + 10
        while not journal._writer._queue.empty():  # the writer has taken both rows
            assert time.monotonic() < deadline, "the journal writer never took the queued rows"
            await asyncio.sleep(0.001)
        req = OrderRequest(coin="ETH", is_buy=True, size=Decimal("1"), client_id="c-1")
        assert await journal.record_intent("s-1", "sim", "ETH", "open", "c-1", req) is True
        # The queued rows' futures settle just after the intent's (`QUEUED_ROWS_YIELD_S`).
        assert await news and await signal
        assert len(commits) == 1
        assert await journal.record_news(NewsItem(id="q-2", title="awaited"), "received") is True
        assert len(commits) == 2
    finally:
        await journal.close()


async def test_a_group_commit_takes_a_savepoint_per_write_only_when_one_fails(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The news + signal + intent group of an order runs as BEGIN, three inserts, COMMIT: each
    statement is a moment the writer thread gives up the GIL to a busy event loop. A group in
    which one write fails runs again with a savepoint per write (the others are kept, see
    `test_one_failing_write_does_not_undo_its_group`)."""
    monkeypatch.setattr(journal_module, "QUEUED_ROWS_LINGER_S", 30.0)  # the three share a group
    journal = await Journal.open(db_url)
    statements: list[str] = []

    def note(sql: str) -> None:
        statements.append(sql.split()[0].upper())

    def trace_sqlite(conn: Connection) -> None:  # SQLite: its hot statements skip SQLAlchemy
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        driver.set_trace_callback(note)

    engine = journal._writer._engine
    if db_url.startswith("sqlite"):
        event.listen(engine, "begin", trace_sqlite)
    else:
        event.listen(engine, "before_cursor_execute", lambda conn, cursor, sql, *_: note(sql))
    try:
        for n, bad in ((1, False), (2, True)):
            statements.clear()
            received = None if bad else T0  # NOT NULL: the bad group's news row fails
            item = NewsItem(id=f"q-{n}", title="queued", received_at=received)  # type: ignore[arg-type]
            news = journal.queue_news(item, "received")
            signal = journal.queue_signal(
                Signal(id=f"s-{n}", news_id=f"q-{n}", coin="ETH", side=Side.LONG), "accepted"
            )
            req = OrderRequest(coin="ETH", is_buy=True, size=Decimal(1), client_id=f"c-{n}")
            intent = journal.record_intent(f"s-{n}", "sim", "ETH", "open", f"c-{n}", req)
            results = await asyncio.gather(news, signal, intent, return_exceptions=True)
            if bad:
                assert isinstance(results[0], IntegrityError) and results[1:] == [True, True]
                assert statements.count("SAVEPOINT") == 3
            else:
                assert results == [True, True, True]
                assert [s for s in statements if s not in ("BEGIN", "COMMIT")] == ["INSERT"] * 3
        counts = await journal.counts()
        assert (counts["news"], counts["signals"], counts["orders"]) == (1, 2, 2)
    finally:
        await journal.close()


async def test_a_queued_write_is_durable_before_any_write_queued_after_it(tmp_path: Path) -> None:
    """The pipeline queues the news item and its signal without waiting, then awaits the order
    intent: once that returns, another connection (a restarted process) sees all three."""
    journal = await Journal.open(_url(tmp_path / "fifo.db"))
    try:
        for n in range(50):
            news = journal.queue_news(NewsItem(id=f"q-{n}", title=f"queued {n}"), "received")
            signal = journal.queue_signal(
                Signal(id=f"s-{n}", news_id=f"q-{n}", coin="ETH", side=Side.LONG), "accepted"
            )
            req = OrderRequest(coin="ETH", is_buy=True, size=Decimal("1"), client_id=f"c-{n}")
            await journal.record_intent(f"s-{n}", "sim", "ETH", "open", f"c-{n}", req)
            con = sqlite3.connect(tmp_path / "fifo.db")
            try:
                assert con.execute("SELECT count(*) FROM news WHERE id = ?", (f"q-{n}",)).fetchone()[0] == 1
                assert (
                    con.execute("SELECT count(*) FROM signals WHERE id = ?", (f"s-{n}",)).fetchone()[0] == 1
                )
            finally:
                con.close()
            assert await news and await signal  # their futures settle just after the intent's
    finally:
        await journal.close()


def _answered_at_once(coro: Coroutine[Any, Any, R]) -> R:
    """The coroutine's result when it finishes at its first step, never suspending (no thread
    hop, no I/O wait); AssertionError when it suspends."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("suspended: the read went through another thread")


async def test_reads_on_the_way_to_an_order_answer_without_a_thread_hop(tmp_path: Path) -> None:
    """On a SQLite file the news gate and the cached positions are read on the event loop's own
    thread (~10 µs each; a thread hop plus SQLAlchemy was ~1.3 ms and ~5 ms on the order's path in
    bench/news_to_order.py), with the same answers as the thread reader."""
    journal = await Journal.open(_url(tmp_path / "loop.db"))
    try:
        title = normalize_title("Binance will list FOO")
        await journal.record_news(NewsItem(id="n-1", title="Binance will list FOO", received_at=T0), "traded")
        await journal.set_cached_position("sim", "ETH", Decimal("-1.25"), Decimal("2000.5"))
        await journal.set_cached_position("other", "BTC", Decimal("0.5"))
        gate = _answered_at_once(journal.news_gate("n-1", title, T0))
        assert gate == NewsGate("traded", False, False)
        assert _answered_at_once(journal.news_gate("n-2", title, T0)) == NewsGate(None, True, False)
        assert _answered_at_once(journal.news_gate("n-2", title, None)) == NewsGate(None, False, False)
        later = T0 + timedelta(microseconds=1)  # the window starts after the row: not seen
        assert _answered_at_once(journal.news_gate("n-2", title, later)) == NewsGate(None, False, False)
        await journal.set_control("paused", True)
        assert _answered_at_once(journal.news_gate("n-3", "other", None)) == NewsGate(None, False, True)

        cached = _answered_at_once(journal.cached_positions("sim"))
        assert list(cached) == [("sim", "ETH")]
        eth = cached[("sim", "ETH")]
        assert (eth.size, eth.entry_price) == (Decimal("-1.25"), Decimal("2000.5"))
        assert eth.updated_at.tzinfo is not None
        assert set(_answered_at_once(journal.cached_positions())) == {("sim", "ETH"), ("other", "BTC")}

        # Another thread (another event loop) is answered by the thread reader, the same way.
        answers: list[object] = []

        async def read_elsewhere() -> None:
            with pytest.raises(AssertionError, match="suspended"):
                _answered_at_once(journal.news_gate("n-1", title, T0))
            answers.append(await journal.news_gate("n-1", title, T0))
            answers.append(await journal.cached_positions("sim"))

        def elsewhere() -> None:
            asyncio.run(read_elsewhere())

        thread = threading.Thread(target=elsewhere)
        thread.start()
        await asyncio.to_thread(thread.join)
        assert answers == [NewsGate("traded", False, True), cached]
    finally:
        await journal.close()


_OTHER_PROCESS = """
import asyncio, sys
from datetime import UTC, datetime
from newstrader.domain import NewsItem
from newstrader.journal import Journal

async def main() -> None:
    journal = await Journal.open(sys.argv[1])
    try:
        now = datetime.now(UTC)
        for news_id, title, outcome in (("n-1", "Binance will list FOO", "received"),
                                        ("n-9", "BINANCE will list foo!", "traded")):
            await journal.record_news(NewsItem(id=news_id, title=title, received_at=now), outcome)
        await journal.set_control("paused", True)
        await journal.set_cached_position("sim", "ETH", 3)
    finally:
        await journal.close()

asyncio.run(main())
"""


async def test_the_gate_sees_what_another_process_committed_just_before(db_url: str) -> None:
    """Another bot (or the CLI, or the kill switch) sharing the journal journals an item, the same
    headline under another id, a pause and a position; reads made right after its commits see
    all of them (on SQLite from the loop's own connection, whose earlier reads hold no snapshot)."""
    journal = await Journal.open(db_url)
    try:
        title = normalize_title("Binance will list FOO")
        since = datetime.now(UTC) - timedelta(minutes=5)
        assert await journal.news_gate("n-1", title, since) == NewsGate(None, False, False)
        assert await journal.cached_positions("sim") == {}
        other = await asyncio.create_subprocess_exec(sys.executable, "-c", _OTHER_PROCESS, db_url)
        assert await other.wait() == 0
        assert await journal.news_gate("n-1", title, since) == NewsGate("received", True, True)
        assert (await journal.cached_positions("sim"))[("sim", "ETH")].size == Decimal(3)
    finally:
        await journal.close()
