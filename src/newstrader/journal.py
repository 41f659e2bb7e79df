"""The durable record of everything the bot sees and does (SQLAlchemy Core; SQLite WAL by default,
or one PostgreSQL database shared by several bots: ``postgresql+psycopg://…``).

Every write is committed before the awaiting caller resumes, so a caller that writes *before*
acting never loses the record. Writes go through one writer thread that commits them in
groups (one fsync for all writers waiting at that moment), in the order they were queued;
reads use their own connections (on a SQLite file, the two reads on the way to an order are
answered on the event loop's own thread: see `_LoopReader`).

Because commits follow queue order, a write that is only *queued* (`queue_news`,
`queue_signal`) is durable no later than any write queued after it: the news pipeline queues
the news item and its signal without waiting and acts at once; the order intent, awaited
before anything is sent, cannot be durable without them.

Durability choice for SQLite: WAL with ``synchronous=FULL``. NORMAL survives a killed
process but may drop the last commits on power loss or an OS crash; with real money the
journal must not forget an order it said was recorded, and group commit keeps FULL cheap.
PostgreSQL runs with ``synchronous_commit = on`` (forced per connection): a commit returns only
after its WAL is flushed.

The schema is managed by Alembic (``newstrader/migrations``); opening a journal upgrades it to
head, serialised across processes (SQLite's write lock; a PostgreSQL advisory lock), and a
database written by a newer newstrader is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import queue
import re
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar

import structlog
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    event,
    exists,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy import delete as sa_delete
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.expression import Insert, Select
from sqlalchemy.sql.schema import ScalarElementColumnDefault
from sqlalchemy.types import TypeDecorator

from newstrader.domain import (
    Fill,
    NewsItem,
    OrderRequest,
    OrderResult,
    OrderType,
    OutcomeStatus,
    Side,
    Signal,
    TimeInForce,
    VenueOutcome,
)

log = structlog.get_logger("newstrader.journal")

T = TypeVar("T")

SCHEMA_VERSION: Final = 4  # the schema_version row the newest migration writes
SQLITE_BUSY_TIMEOUT_S: Final = 30.0
MAX_GROUP_COMMIT: Final = 512
# A group made only of queued news/signal rows waits this long for one more write before it
# commits: the order intent that usually follows them (~1–2 ms later) then shares their commit,
# one fsync instead of two in a row on the way to the order (bench/news_to_order.py).
QUEUED_ROWS_LINGER_S: Final = 0.003
# ...and once that commit is durable, its queued rows' waiters (the webhook's answer) give the
# loop to the orders for this long: the order's send takes ~0.6 ms of loop time to its bytes,
# and the answer ~0.4 ms that it used to spend in between (bench/news_to_order.py).
QUEUED_ROWS_YIELD_S: Final = 0.001
PG_IDLE_TX_TIMEOUT_MS: Final = 5000  # a journal transaction never idles this long unless its bot stopped

INTENT_STATUSES: Final = frozenset({"pending", "acked", "filled", "rejected", "failed", "ambiguous"})
UNRESOLVED_INTENT_STATUSES: Final = ("pending", "ambiguous")
# A news item still being handled; at start-up such a row was left by a crash and becomes
# `interrupted` (final, but resumed when the same id is delivered again).
NEWS_UNFINISHED: Final = "received"
NEWS_INTERRUPTED: Final = "interrupted"
# A signal decided for action whose execution has not finished (a crash may leave it so).
SIGNAL_ACCEPTED: Final = "accepted"


class JournalError(Exception):
    """The journal cannot be opened or used (closed, schema too new, bad URL)."""


# --------------------------------------------------------------------------- column types


class UTCDateTime(TypeDecorator[datetime]):
    """A tz-aware UTC datetime stored as fixed-width ISO text, so text order is time order."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:  # every timestamp in the system is UTC; a naive one means UTC
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def process_result_value(self, value: str | None, dialect: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


class DecimalText(TypeDecorator[Decimal]):
    """A Decimal stored as its exact string: no float ever touches money."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        return str(value if isinstance(value, Decimal) else Decimal(str(value)))

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class JSONText(TypeDecorator[Any]):
    """Any JSON value stored as text (Decimal → string), portable across databases."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str:
        return json.dumps(value, default=_json_default, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(value)


# --------------------------------------------------------------------------- schema

metadata = MetaData()

news_table = Table(
    "news",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False, default=""),
    Column("source", String(200), nullable=False),
    Column("url", Text),
    Column("coin", String(40)),
    Column("side", String(8)),
    Column("published_at", UTCDateTime),
    Column("received_at", UTCDateTime, nullable=False),
    Column("norm_title", Text, nullable=False),
    Column("outcome", String(40), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_news_norm_title_received", "norm_title", "received_at"),
    Index("ix_news_received", "received_at"),
)

signals_table = Table(
    "signals",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("news_id", String(200), nullable=False, index=True),
    Column("coin", String(40), nullable=False),
    Column("side", String(8), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("terms", JSONText, nullable=False),
    Column("why", JSONText),  # the parser's rules behind the signal (added in schema 2)
    Column("notional_usd", DecimalText),
    Column("leverage", Integer),
    Column("source", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    Column("status", String(40), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("updated_at", UTCDateTime, nullable=False),
)

orders_table = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(200), nullable=False, unique=True),
    Column("signal_id", String(200), nullable=False, index=True),
    Column("venue", String(80), nullable=False),
    Column("coin", String(40), nullable=False),
    Column("leg", String(40), nullable=False),
    Column("side", String(8), nullable=False),  # buy | sell
    Column("size", DecimalText, nullable=False),
    Column("order_type", String(16), nullable=False),
    Column("limit_price", DecimalText),
    Column("reduce_only", Boolean, nullable=False),
    Column("tif", String(16), nullable=False),
    Column("max_slippage", DecimalText, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("venue_order_id", String(200)),
    Column("filled_size", DecimalText, nullable=False),
    Column("avg_price", DecimalText),
    Column("error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("instance", String(200)),  # the bot instance that journaled (and so sent) it
    Index("ix_orders_instance", "instance"),
)

outcomes_table = Table(
    "outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("signal_id", String(200), nullable=False, index=True),
    Column("venue", String(80), nullable=False),
    Column("coin", String(40), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("exchange_size_before", DecimalText),
    Column("cached_size_before", DecimalText),
    Column("target_size", DecimalText),
    Column("exchange_size_after", DecimalText),
    Column("orders", JSONText, nullable=False),
    Column("latency", JSONText, nullable=False),  # stage → monotonic seconds
    Column("created_at", UTCDateTime, nullable=False),
    # One outcome per (signal, venue): a second run of a signal on an account (a paused owner
    # woken after a takeover, a resumed operation) cannot add a second record of it.
    Index("uq_outcomes_signal_venue", "signal_id", "venue", unique=True),
)

fills_table = Table(
    "fills",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("venue", String(80), nullable=False),
    Column("fill_id", String(200), nullable=False),
    Column("coin", String(40), nullable=False),
    Column("is_buy", Boolean, nullable=False),
    Column("size", DecimalText, nullable=False),
    Column("price", DecimalText, nullable=False),
    Column("fee", DecimalText, nullable=False),
    Column("realized_pnl", DecimalText, nullable=False),
    Column("time", UTCDateTime, nullable=False, index=True),
    Column("venue_order_id", String(200)),
    Column("client_id", String(200)),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("venue", "fill_id", name="uq_fills_venue_fill_id"),
)

events_table = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(60), nullable=False),
    Column("venue", String(80), nullable=False),
    Column("coin", String(40), nullable=False),
    Column("exchange_size", DecimalText),
    Column("cached_size", DecimalText),
    Column("detail", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False, index=True),
)

cached_positions_table = Table(
    "cached_positions",
    metadata,
    Column("venue", String(80), primary_key=True),
    Column("coin", String(40), primary_key=True),
    Column("size", DecimalText, nullable=False),
    Column("entry_price", DecimalText, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

control_table = Table(
    "control",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", JSONText, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

schema_version_table = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", UTCDateTime, nullable=False),
)


# --------------------------------------------------------------------------- value types


@dataclass(frozen=True, slots=True)
class Intent:
    """One order we meant to send, as journaled before sending; `status` says how far it got."""

    client_id: str
    signal_id: str
    venue: str
    coin: str
    leg: str
    request: OrderRequest
    status: str
    venue_order_id: str | None
    filled_size: Decimal
    avg_price: Decimal | None
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewsGate:
    """The journal's answer before a news item is acted on (see `Journal.news_gate`)."""

    outcome: str | None  # what this id already has; None when it was never journaled
    headline_seen: bool  # the same headline, under another id, within the dedupe window
    paused: bool


@dataclass(frozen=True, slots=True)
class CachedPosition:
    """Our last belief about a venue position: a cache the exchange always overrules."""

    venue: str
    coin: str
    size: Decimal
    entry_price: Decimal
    updated_at: datetime


_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalize_title(title: str) -> str:
    """Lower-case, punctuation-free, single-spaced headline: the key for cross-feed dedupe."""
    return _NON_WORD.sub(" ", title.casefold()).strip()


def _now() -> datetime:
    return datetime.now(UTC)


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a column value (Decimal → str, datetime → ISO text)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _row_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in row.items()}


def _order_result_dict(result: OrderResult) -> dict[str, Any]:
    return {
        "client_id": result.client_id,
        "status": str(result.status),
        "venue_order_id": result.venue_order_id,
        "filled_size": str(result.filled_size),
        "avg_price": None if result.avg_price is None else str(result.avg_price),
        "error": result.error,
    }


def _latency_ms(stamps: Mapping[str, float]) -> dict[str, float]:
    """Milliseconds from receipt (else the first stamp) to each stage, in stage order; the
    source's publication, when known, comes before receipt and so is negative."""
    if not stamps:
        return {}
    start = stamps.get("received", min(stamps.values()))
    ordered = sorted(stamps.items(), key=lambda kv: kv[1])
    return {stage: round((at - start) * 1000.0, 3) for stage, at in ordered}


def _from_row(cls: type[T], row: Mapping[Any, Any], *, skip: Collection[str] = (), **given: Any) -> T:
    """A journal dataclass from its row: each field from the column of the same name, except
    those `given` (converted by the caller) and those in `skip` (left at their default)."""
    taken = {
        f.name: row[f.name]
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name not in given and f.name not in skip and f.name in row
    }
    return cls(**taken, **given)


def _intent_from_row(row: Mapping[Any, Any]) -> Intent:
    request = OrderRequest(
        coin=row["coin"],
        is_buy=row["side"] == "buy",
        size=row["size"],
        client_id=row["client_id"],
        order_type=OrderType(row["order_type"]),
        limit_price=row["limit_price"],
        reduce_only=bool(row["reduce_only"]),
        tif=TimeInForce(row["tif"]),
        max_slippage=row["max_slippage"],
    )
    return _from_row(Intent, row, request=request)


def _fill_from_row(row: Mapping[Any, Any]) -> Fill:
    return _from_row(Fill, row, is_buy=bool(row["is_buy"]))


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A statement compiled once, run on the driver (a raw sqlite3 connection, else
    `exec_driver_sql`) with SQLAlchemy's own conversions of its parameters and result columns, so
    it takes and gives the values `Connection.execute` would. SQLAlchemy's per-execution work
    (parameter and default handling, execution context, result object) was ~75 µs of an insert's
    ~95 µs on this box: CPU that the writer thread takes from the event loop's order path (one GIL)."""

    sql: str
    slots: tuple[
        tuple[str, Callable[[Any], Any] | None, Any], ...
    ]  # per parameter: name, conversion, default
    positional: bool  # the dialect's parameters go as a tuple in `slots` order, else as a dict
    columns: tuple[str, ...]
    results: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(
        cls,
        stmt: Select[Any] | Insert,
        dialect: Dialect,
        *,
        column_keys: Sequence[str] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> _Prepared:
        """`stmt` compiled for `dialect`; an insert for the columns in `column_keys`, those
        not given at execution taking their value from `defaults`."""
        compiled = stmt.compile(
            dialect=dialect, column_keys=None if column_keys is None else list(column_keys)
        )
        given = {**compiled.params, **(defaults or {})}
        positional = compiled.positional and compiled.positiontup is not None
        names = compiled.positiontup if positional and compiled.positiontup else list(compiled.params)
        returned = list(stmt.exported_columns)
        return cls(
            compiled.string,
            tuple((name, compiled.binds[name].type.bind_processor(dialect), given[name]) for name in names),
            positional,
            tuple(str(column.key) for column in returned),
            tuple(column.type.result_processor(dialect, None) for column in returned),
        )

    def params(self, given: Mapping[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        values = []
        for name, process, default in self.slots:
            value = given.get(name, default)
            values.append(value if process is None else process(value))
        if self.positional:
            return tuple(values)
        return {slot[0]: value for slot, value in zip(self.slots, values, strict=True)}

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        return {
            name: value if process is None else process(value)
            for name, value, process in zip(self.columns, raw, self.results, strict=True)
        }


# "INSERT … ON CONFLICT (key) DO NOTHING", built once per (dialect, table, key, columns given):
# SQLite and PostgreSQL skip a duplicate key in the statement itself. Building an insert with
# `.values()` and wrapping it in a savepoint cost ~0.55 ms of an order intent's journal write, and
# running the compiled one through SQLAlchemy's execution ~75 µs more (bench/news_to_order.py).
_INSERT_IF_NEW: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], _Prepared | None] = {}


def _on_conflict_skip(
    dialect: Dialect, table: Table, key: list[str], given: Sequence[str]
) -> _Prepared | None:
    """The insert of the `given` columns that skips a duplicate `key`, returning the key only when
    it inserted (a driver's rowcount is not always reliable here: psycopg reports -1)."""
    if dialect.name == "sqlite":
        insert_stmt: Insert = sqlite_insert(table).on_conflict_do_nothing(index_elements=key)
    elif dialect.name == "postgresql":
        insert_stmt = postgresql_insert(table).on_conflict_do_nothing(index_elements=key)
    else:
        return None
    # Columns left out take their schema default, as `Connection.execute` would give them.
    defaults = {
        column.name: column.default.arg
        for column in table.columns
        if column.name not in given and isinstance(column.default, ScalarElementColumnDefault)
    }
    return _Prepared.of(insert_stmt.returning(table.c[key[0]]), dialect, column_keys=given, defaults=defaults)


def _insert_if_new(
    conn: Connection, table: Table, values: Mapping[str, Any], key: Sequence[str] | None = None
) -> bool:
    """Insert a row unless one with the same unique `key` exists; True when inserted.

    SQLite and PostgreSQL: one prepared "ON CONFLICT (key) DO NOTHING" insert; only a conflict
    on `key` is skipped, any other constraint failure propagates. Other dialects: the insert
    runs in a savepoint and a failure is a duplicate only when the key is really there."""
    key = key or [column.name for column in table.primary_key.columns]
    cache_key = (conn.dialect.name, table.name, tuple(key), tuple(values))
    if cache_key not in _INSERT_IF_NEW:
        _INSERT_IF_NEW[cache_key] = _on_conflict_skip(conn.dialect, table, list(key), list(values))
    prepared = _INSERT_IF_NEW[cache_key]
    if prepared is not None:
        return _run_insert(conn, prepared, values)
    try:
        with conn.begin_nested():
            conn.execute(insert(table).values(**values))
    except IntegrityError:
        where = [table.c[name] == values[name] for name in key]
        if conn.execute(select(*[table.c[name] for name in key]).where(*where)).first() is None:
            raise
        return False
    return True


def _run_insert(conn: Connection, prepared: _Prepared, values: Mapping[str, Any]) -> bool:
    """Run a prepared insert-if-new; True when it inserted. On SQLite straight on the driver's
    connection, inside the transaction SQLAlchemy began (half the cost of `exec_driver_sql`),
    its errors raised as SQLAlchemy's; elsewhere through `exec_driver_sql`."""
    params = prepared.params(values)
    driver = conn.connection.driver_connection
    if not isinstance(driver, sqlite3.Connection):
        return conn.exec_driver_sql(prepared.sql, params).first() is not None
    try:
        return bool(driver.execute(prepared.sql, params).fetchall())
    except sqlite3.Error as exc:
        raise DBAPIError.instance(prepared.sql, params, exc, sqlite3.Error, dialect=conn.dialect) from exc


def _insert_or_resume_news(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Insert a news row; a redelivered id is new again only when a crash interrupted it.

    The claim is one conditional UPDATE, so of two copies redelivered together one resumes."""
    if _insert_if_new(conn, news_table, values):
        return True
    resumed = conn.execute(
        update(news_table)
        .where(news_table.c.id == values["id"], news_table.c.outcome == NEWS_INTERRUPTED)
        .values(outcome=values["outcome"], reason="resumed after a restart", updated_at=values["updated_at"])
    )
    return bool(resumed.rowcount)


def _upsert(conn: Connection, table: Table, keys: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Update the row with these keys, or insert it; safe against a concurrent insert."""
    where = [table.c[name] == value for name, value in keys.items()]
    if conn.execute(update(table).where(*where).values(**values)).rowcount:
        return
    if not _insert_if_new(conn, table, {**keys, **values}, list(keys)):
        conn.execute(update(table).where(*where).values(**values))


# The news gate in one statement (one snapshot, one round trip): the outcome journaled for the
# item's id, whether the same headline arrived at or after `since` under another id (never, when
# `since` is NULL), and the pause switch.
_NEWS_GATE: Final = select(
    select(news_table.c.outcome)
    .where(news_table.c.id == bindparam("news_id"))
    .scalar_subquery()
    .label("outcome"),
    exists()
    .where(
        news_table.c.norm_title == bindparam("norm_title"),
        news_table.c.received_at >= bindparam("since", type_=UTCDateTime()),
        news_table.c.id != bindparam("news_id"),
    )
    .label("headline_seen"),
    select(control_table.c.value).where(control_table.c.key == "paused").scalar_subquery().label("paused"),
)
_CACHED_POSITIONS: Final = select(cached_positions_table)
_CACHED_POSITIONS_OF: Final = _CACHED_POSITIONS.where(cached_positions_table.c.venue == bindparam("venue"))


class _LoopReader:
    """SQLite only: the small indexed reads on the way to an order (the news gate, the cached
    positions), answered on the event loop's own thread from one raw sqlite3 connection, with no
    thread hop and no SQLAlchemy round (~10 µs instead of ~1 ms).

    Exact, not a cache: in WAL mode a reader never waits for a writer, and each statement reads a
    snapshot taken when it starts, which holds every transaction committed before, by this
    process or any other sharing the file. It never waits either: a busy database (WAL recovery
    after another process crashed, say) or a call from another thread answers None and the caller
    uses the thread reader, which may wait."""

    def __init__(self, path: Path) -> None:
        # timeout=0: a locked database raises at once instead of blocking the event loop.
        self._conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA query_only = ON")
        self._thread = threading.get_ident()
        self._dialect = sqlite_dialect.dialect(paramstyle="named")
        self._prepared: dict[Select[Any], _Prepared] = {}  # by statement: module constants only

    def rows(self, stmt: Select[Any], params: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        """The statement's rows, or None when it cannot be answered here and now."""
        if threading.get_ident() != self._thread:
            return None
        prepared = self._prepared.get(stmt)
        if prepared is None:
            prepared = self._prepared[stmt] = _Prepared.of(stmt, self._dialect)
        try:
            raw = self._conn.execute(prepared.sql, prepared.params(params)).fetchall()
        except sqlite3.OperationalError as exc:  # busy/locked: the thread reader waits for it
            log.info("journal_loop_read_deferred", error=str(exc))
            return None
        return [prepared.row(row) for row in raw]

    def close(self) -> None:
        self._conn.close()


# --------------------------------------------------------------------------- writer thread


@dataclass(slots=True)
class _Job:
    fn: Callable[[Connection], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    queued_only: bool = False  # queue_news / queue_signal: nobody awaits it before acting


def _settle(results: Sequence[tuple[_Job, bool, Any]]) -> None:
    """On the callers' loop: each job's future gets its result (or error).

    When a commit holds awaited writes (order intents) and queued rows (news, signal), the queued
    rows' results follow `QUEUED_ROWS_YIELD_S` later: their waiter is the webhook's answer, and
    running it now would put it between the intent and the order's bytes."""
    queued = [result for result in results if result[0].queued_only]
    if queued and len(queued) < len(results):
        asyncio.get_running_loop().call_later(QUEUED_ROWS_YIELD_S, _settle, queued)
        results = [result for result in results if not result[0].queued_only]
    for job, ok, value in results:
        if job.future.done():  # the caller was cancelled; the write still happened
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)


def _hand_back(results: Sequence[tuple[_Job, bool, Any]]) -> None:
    """Send a committed group's results to their loops: one wake-up per loop, not one per write
    (each is a write to the loop's self-pipe, and a moment this thread gives up the GIL)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, bool, Any]]] = {}
    for result in results:
        by_loop.setdefault(result[0].loop, []).append(result)
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the caller's loop is gone: nobody is waiting
            loop.call_soon_threadsafe(_settle, settled)


class _Writer(threading.Thread):
    """The one thread that writes: drains the queue and commits what it drained as one transaction."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(name="journal-writer", daemon=True)
        self._engine = engine
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()

    def submit(self, job: _Job | None) -> None:
        self._queue.put(job)

    def run(self) -> None:
        stopping = False
        conn: Connection | None = None
        try:
            while not stopping:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                stopping = self._drain(batch)
                if not stopping and all(job.queued_only for job in batch):
                    stopping = self._linger(batch)
                conn = self._commit(conn, batch)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _linger(self, batch: list[_Job]) -> bool:
        """Wait up to QUEUED_ROWS_LINGER_S for one more write, then drain; True on the stop sign."""
        try:
            more = self._queue.get(timeout=QUEUED_ROWS_LINGER_S)
        except queue.Empty:
            return False  # nothing came: commit what we have
        if more is None:
            return True
        batch.append(more)
        return self._drain(batch)

    def _drain(self, batch: list[_Job]) -> bool:
        """Add what is queued now to `batch`; True when the stop sign was among it."""
        while len(batch) < MAX_GROUP_COMMIT:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return False
            if job is None:
                return True
            batch.append(job)
        return False

    def _commit(self, conn: Connection | None, batch: Sequence[_Job]) -> Connection | None:
        """Run a batch in one transaction; the writer's connection, or None if it broke.

        The connection stays open between batches (a pool check-out and its reset cost more
        than the insert). The writes run without savepoints: every statement is a moment this
        thread lets go of the GIL, and taking it back from a busy event loop costs up to the
        switch interval, so the usual group (news, signal, intents) is n + 2 statements, not
        3n + 2. Only when a write of a group fails is the group rolled back and run again with
        a savepoint per write: one writer's failure must not undo the others."""
        outcomes: list[tuple[bool, Any]] = []
        try:
            if conn is None:
                conn = self._engine.connect()
            write_failed = False
            try:
                with conn.begin():
                    for job in batch:
                        try:
                            outcomes.append((True, job.fn(conn)))
                        except Exception:
                            write_failed = True
                            raise
            except Exception:
                if not write_failed or len(batch) == 1 or conn.invalidated:
                    raise  # BEGIN or COMMIT failed, or the lone write did
                outcomes = self._each_in_a_savepoint(conn, batch)
        except Exception as exc:  # the commit itself failed: nothing in this group is durable
            if len(batch) == 1 and len(outcomes) == 0:
                log.warning("journal_write_failed", error=str(exc))
            else:
                log.error("journal_commit_failed", error=str(exc), writes=len(batch))
            _hand_back([(job, False, exc) for job in batch])
            if conn is not None and conn.invalidated:
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            return conn
        _hand_back([(job, ok, value) for job, (ok, value) in zip(batch, outcomes, strict=True)])
        return conn

    @staticmethod
    def _each_in_a_savepoint(conn: Connection, batch: Sequence[_Job]) -> list[tuple[bool, Any]]:
        """Run the group again in one transaction, each write in its own savepoint."""
        outcomes: list[tuple[bool, Any]] = []
        with conn.begin():
            for job in batch:
                try:
                    with conn.begin_nested():
                        outcomes.append((True, job.fn(conn)))
                except Exception as exc:
                    outcomes.append((False, exc))
        return outcomes


# --------------------------------------------------------------------------- engines


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for memory/other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(database)


def _owner_only(path: Path) -> None:
    """The journal is the trading history: mode 0600 from its creation. SQLite gives the WAL
    and SHM files the database file's mode, so those follow; older files are tightened too."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            file.chmod(0o600)


def _configure_sqlite(engine: Engine, *, writer: bool) -> None:
    """WAL + FULL sync; the writer takes the write lock up front (BEGIN IMMEDIATE) so two
    processes never deadlock upgrading read locks, and savepoints work under pysqlite."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        if writer:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
        else:
            cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # On the driver's connection: SQLAlchemy's execution around one BEGIN cost ~0.1 ms of
        # every group commit on the order's way (bench/news_to_order.py).
        driver = conn.connection.driver_connection
        if not isinstance(driver, sqlite3.Connection):
            conn.exec_driver_sql(begin)
            return
        try:
            driver.execute(begin)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(begin, None, exc, sqlite3.Error, dialect=conn.dialect) from exc


def _make_engines(url: str) -> tuple[Engine, Engine | None]:
    """(writer engine, reader engine or None when reads must share the writer's database)."""
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        # Durable before return whatever the server's default: a commit waits for its WAL flush.
        # A transaction left open by a paused or cut-off bot is ended by the server, so its
        # uncommitted rows never block the bot that took its accounts over.
        options = f"-c synchronous_commit=on -c idle_in_transaction_session_timeout={PG_IDLE_TX_TIMEOUT_MS}"
        args = {"options": options, "connect_timeout": 10}
        writer = create_engine(url, connect_args=args, pool_size=1, max_overflow=0, pool_pre_ping=True)
        reader = create_engine(url, connect_args=args, pool_size=4, max_overflow=4, pool_pre_ping=True)
        return writer, reader
    if backend != "sqlite":
        engine = create_engine(url, pool_pre_ping=True)
        return engine, engine
    path = _sqlite_file(url)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    if path is None:  # an in-memory database exists only on the writer's one connection
        writer = create_engine(url, connect_args=connect_args, poolclass=StaticPool)
        _configure_sqlite(writer, writer=True)
        return writer, None
    path.parent.mkdir(parents=True, exist_ok=True)
    _owner_only(path)
    writer = create_engine(url, connect_args=connect_args, pool_size=1, max_overflow=0)
    _configure_sqlite(writer, writer=True)
    reader = create_engine(url, connect_args=connect_args, pool_size=4, max_overflow=4)
    _configure_sqlite(reader, writer=False)
    return writer, reader


# --------------------------------------------------------------------------- the journal


class Journal:
    """Async facade over the database: every write is durable when its coroutine returns."""

    def __init__(
        self, url: str, writer_engine: Engine, reader_engine: Engine | None, instance: str | None = None
    ) -> None:
        self.url = url
        self.instance = instance
        self._engine = writer_engine
        self._reader = reader_engine
        self._writer = _Writer(writer_engine)
        self._loop_reader: _LoopReader | None = None
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, instance: str | None = None) -> Journal:
        """Open (creating or upgrading) the journal at a SQLAlchemy URL, e.g. ``sqlite:///newstrader.db``.

        `instance` names this bot among several sharing the journal; every order it journals
        carries it."""
        try:
            writer, reader = _make_engines(url)
        except Exception as exc:
            raise JournalError(f"cannot open journal {url!r}: {exc}") from exc
        journal = cls(url, writer, reader, instance)
        journal._writer.start()
        try:
            await journal._write(_migrate)
            path = _sqlite_file(url)
            if path is not None:  # the schema exists now
                journal._loop_reader = _LoopReader(path)
        except BaseException:
            await journal.close()
            raise
        return journal

    async def close(self) -> None:
        """Finish queued writes, then release the database."""
        if self._closed:
            return
        self._closed = True
        if self._loop_reader is not None:
            self._loop_reader.close()
        self._writer.submit(None)
        await asyncio.to_thread(self._writer.join)
        self._engine.dispose()
        if self._reader is not None and self._reader is not self._engine:
            self._reader.dispose()

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        return await self._queue(fn)

    def _queue(self, fn: Callable[[Connection], T], *, queued_only: bool = False) -> asyncio.Future[T]:
        """Queue a write now; the future settles once it is committed (see the module doc)."""
        if self._closed:
            raise JournalError("journal is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._writer.submit(_Job(fn, loop, future, queued_only))
        return future

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        if self._closed:
            raise JournalError("journal is closed")
        if self._reader is None:
            return await self._write(fn)
        reader = self._reader

        def run() -> T:
            with reader.connect() as conn:
                return fn(conn)

        return await asyncio.to_thread(run)

    async def _lookup(self, stmt: Select[Any], **params: Any) -> list[dict[str, Any]]:
        """A small indexed read on the way to an order (`stmt` is one of this module's
        constants): on the event loop's thread when the journal is a SQLite file (see
        `_LoopReader`), else through the thread reader."""
        if self._closed:
            raise JournalError("journal is closed")
        if self._loop_reader is not None:
            rows = self._loop_reader.rows(stmt, params)
            if rows is not None:
                return rows
        found = await self._read(lambda conn: conn.execute(stmt, params).mappings().all())
        return [dict(row) for row in found]

    # ---- news

    async def record_news(
        self, item: NewsItem, outcome: str, reason: str = "", *, norm_title: str | None = None
    ) -> bool:
        """Journal an arriving item; False when its id is already there (a redelivery), unless
        a crash interrupted that item: then it is claimed again and True (see `interrupt_unfinished_news`)."""
        return await self._queue(self._news_write(item, outcome, reason, norm_title))

    def queue_news(
        self, item: NewsItem, outcome: str, reason: str = "", *, norm_title: str | None = None
    ) -> asyncio.Future[bool]:
        """`record_news` without waiting: queued now, durable before any write queued later (its
        commit may wait `QUEUED_ROWS_LINGER_S` for the order intent that usually follows)."""
        return self._queue(self._news_write(item, outcome, reason, norm_title), queued_only=True)

    def _news_write(
        self, item: NewsItem, outcome: str, reason: str, norm_title: str | None
    ) -> Callable[[Connection], bool]:
        now = _now()
        values = {
            "id": item.id,
            "title": item.title,
            "body": item.body,
            "source": item.source,
            "url": item.url,
            "coin": item.coin,
            "side": None if item.side is None else str(item.side),
            "published_at": item.published_at,
            "received_at": item.received_at,
            "norm_title": normalize_title(item.title) if norm_title is None else norm_title,
            "outcome": outcome,
            "reason": reason,
            "updated_at": now,
        }
        return lambda conn: _insert_or_resume_news(conn, values)

    async def news_gate(self, news_id: str, norm_title: str, since: datetime | None) -> NewsGate:
        """What the pipeline must know before acting on an item, in one read: the outcome
        already journaled for this id (None: new), whether the same headline arrived since
        `since` under another id, and whether trading is paused. Exact: it sees every write
        committed before the call, by any process sharing the journal."""
        (row,) = await self._lookup(_NEWS_GATE, news_id=news_id, norm_title=norm_title, since=since)
        outcome = row["outcome"]
        return NewsGate(
            None if outcome is None else str(outcome), bool(row["headline_seen"]), bool(row["paused"])
        )

    async def interrupt_unfinished_news(
        self, reason: str, *, keep: Collection[str] = (), id_suffix: str | None = None
    ) -> list[str]:
        """Mark items a crash left half-handled (still `received`) as `interrupted`; their ids.

        Called at start-up, when nothing of this process is in flight: the item then has a
        final outcome even if it never comes again, and a redelivery resumes it (see
        `record_news`), its orders found again by their client ids. Items in `keep` are being
        resumed now (see `unfinished_signals`) and stay unfinished until they finish. With
        `id_suffix`, only ids ending so (one account's items, when several bots share the journal)."""

        def mark(conn: Connection) -> list[str]:
            where = news_table.c.outcome == NEWS_UNFINISHED
            if keep:
                where = and_(where, news_table.c.id.not_in(list(keep)))
            if id_suffix is not None:
                where = and_(where, news_table.c.id.endswith(id_suffix, autoescape=True))
            ids = [row[0] for row in conn.execute(select(news_table.c.id).where(where))]
            if ids:
                conn.execute(
                    update(news_table)
                    .where(where, news_table.c.id.in_(ids))
                    .values(outcome=NEWS_INTERRUPTED, reason=reason, updated_at=_now())
                )
            return ids

        return await self._write(mark)

    async def update_news(self, news_id: str, outcome: str, reason: str = "") -> None:
        """Record the final outcome of an item."""
        stmt = (
            update(news_table)
            .where(news_table.c.id == news_id)
            .values(outcome=outcome, reason=reason, updated_at=_now())
        )
        await self._write(lambda conn: conn.execute(stmt))

    async def news_seen(self, news_id: str) -> bool:
        """Whether an item with this id was ever journaled (dedupe across restarts)."""
        stmt = select(news_table.c.id).where(news_table.c.id == news_id)
        return await self._read(lambda conn: conn.execute(stmt).first() is not None)

    async def recent_headline_seen(
        self, norm_title: str, since: datetime, *, exclude_id: str | None = None
    ) -> bool:
        """Whether the same normalised headline arrived at or after `since` (other than `exclude_id`)."""
        stmt = select(news_table.c.id).where(
            news_table.c.norm_title == norm_title, news_table.c.received_at >= since
        )
        if exclude_id is not None:
            stmt = stmt.where(news_table.c.id != exclude_id)
        return await self._read(lambda conn: conn.execute(stmt.limit(1)).first() is not None)

    # ---- signals

    async def record_signal(self, signal: Signal, status: str, reason: str = "") -> bool:
        """Journal a signal; False when its id is already there."""
        return await self._queue(self._signal_write(signal, status, reason))

    def queue_signal(self, signal: Signal, status: str, reason: str = "") -> asyncio.Future[bool]:
        """`record_signal` without waiting: queued now, durable before any write queued later (its
        commit may wait `QUEUED_ROWS_LINGER_S` for the order intent that usually follows)."""
        return self._queue(self._signal_write(signal, status, reason), queued_only=True)

    def _signal_write(self, signal: Signal, status: str, reason: str) -> Callable[[Connection], bool]:
        now = _now()
        values = {
            "id": signal.id,
            "news_id": signal.news_id,
            "coin": signal.coin,
            "side": str(signal.side),
            "confidence": float(signal.confidence),
            "terms": list(signal.terms),
            "why": list(signal.why),
            "notional_usd": signal.notional_usd,
            "leverage": signal.leverage,
            "source": signal.source,
            "created_at": signal.created_at,
            "status": status,
            "reason": reason,
            "updated_at": now,
        }
        return lambda conn: _insert_if_new(conn, signals_table, values)

    async def update_signal(self, signal_id: str, status: str, reason: str = "") -> None:
        """Record how a signal ended (executed, superseded, failed …)."""
        stmt = (
            update(signals_table)
            .where(signals_table.c.id == signal_id)
            .values(status=status, reason=reason, updated_at=_now())
        )
        await self._write(lambda conn: conn.execute(stmt))

    async def unfinished_signals(self) -> list[Signal]:
        """Signals accepted for an item that is still unfinished (`received`), oldest first: the
        executions a crash cut short, which start-up resumes."""
        stmt = (
            select(signals_table)
            .join(news_table, news_table.c.id == signals_table.c.news_id)
            .where(signals_table.c.status == SIGNAL_ACCEPTED, news_table.c.outcome == NEWS_UNFINISHED)
            .order_by(signals_table.c.created_at)
        )
        rows = await self._read(lambda conn: conn.execute(stmt).mappings().all())
        return [
            Signal(
                id=row["id"],
                news_id=row["news_id"],
                coin=row["coin"],
                side=Side(row["side"]),
                confidence=row["confidence"],
                terms=tuple(row["terms"] or ()),
                why=tuple(row["why"] or ()),
                notional_usd=row["notional_usd"],
                leverage=row["leverage"],
                created_at=row["created_at"],
                source=row["source"],
            )
            for row in rows
        ]

    async def signal_view(self, signal_id: str) -> dict[str, Any] | None:
        """One signal as a JSON-friendly dict with its per-venue `outcomes` (None when unknown)."""

        def read(conn: Connection) -> tuple[Any, Sequence[Any]]:
            signal = (
                conn.execute(select(signals_table).where(signals_table.c.id == signal_id)).mappings().first()
            )
            outcomes = (
                conn.execute(
                    select(outcomes_table)
                    .where(outcomes_table.c.signal_id == signal_id)
                    .order_by(outcomes_table.c.id)
                )
                .mappings()
                .all()
            )
            return signal, outcomes

        signal, outcomes = await self._read(read)
        if signal is None:
            return None
        view = _row_dict(signal)
        view["outcomes"] = [_row_dict(row) for row in outcomes]
        for row in view["outcomes"]:
            row["latency_ms"] = _latency_ms(row["latency"] or {})
        return view

    # ---- intents (orders)

    async def record_intent(
        self, signal_id: str, venue: str, coin: str, leg: str, client_id: str, req: OrderRequest
    ) -> bool:
        """Journal an order as `pending` before it is sent; False when the client id already exists."""
        now = _now()
        values = {
            "client_id": client_id,
            "signal_id": signal_id,
            "venue": venue,
            "coin": coin,
            "leg": leg,
            "side": "buy" if req.is_buy else "sell",
            "size": req.size,
            "order_type": str(req.order_type),
            "limit_price": req.limit_price,
            "reduce_only": req.reduce_only,
            "tif": str(req.tif),
            "max_slippage": req.max_slippage,
            "status": "pending",
            "venue_order_id": None,
            "filled_size": Decimal(0),
            "avg_price": None,
            "error": None,
            "created_at": now,
            "updated_at": now,
            "instance": self.instance,
        }
        return await self._write(lambda conn: _insert_if_new(conn, orders_table, values, ["client_id"]))

    async def update_intent(
        self, client_id: str, status: str, result: OrderResult | None = None, error: str | None = None
    ) -> bool:
        """Move an intent on (acked/filled/rejected/failed/ambiguous); False when the id is unknown."""
        if status not in INTENT_STATUSES:
            raise ValueError(f"unknown intent status {status!r}; one of {sorted(INTENT_STATUSES)}")
        values: dict[str, Any] = {"status": status, "updated_at": _now()}
        if result is not None:
            values["filled_size"] = result.filled_size
            values["avg_price"] = result.avg_price
            if result.venue_order_id is not None:
                values["venue_order_id"] = result.venue_order_id
            if result.error is not None:
                values["error"] = result.error
        if error is not None:
            values["error"] = error
        stmt = update(orders_table).where(orders_table.c.client_id == client_id).values(**values)
        return await self._write(lambda conn: conn.execute(stmt).rowcount > 0)

    async def pending_intents(self) -> list[Intent]:
        """Intents a crash may have left unresolved (`pending` or `ambiguous`), oldest first."""
        stmt = (
            select(orders_table)
            .where(orders_table.c.status.in_(UNRESOLVED_INTENT_STATUSES))
            .order_by(orders_table.c.id)
        )
        rows = await self._read(lambda conn: conn.execute(stmt).mappings().all())
        return [_intent_from_row(row) for row in rows]

    async def intent(self, client_id: str) -> Intent | None:
        """One intent by client id."""
        stmt = select(orders_table).where(orders_table.c.client_id == client_id)
        row = await self._read(lambda conn: conn.execute(stmt).mappings().first())
        return None if row is None else _intent_from_row(row)

    # ---- outcomes

    async def record_outcome(self, signal_id: str, outcome: VenueOutcome) -> bool:
        """Journal what one venue did with one signal, with its latency ledger; False (nothing
        written) when that (signal, venue) has an outcome already: the first one stands."""
        values = {
            "signal_id": signal_id,
            "venue": outcome.venue,
            "coin": outcome.coin,
            "status": str(outcome.status),
            "reason": outcome.reason,
            "exchange_size_before": outcome.exchange_size_before,
            "cached_size_before": outcome.cached_size_before,
            "target_size": outcome.target_size,
            "exchange_size_after": outcome.exchange_size_after,
            "orders": [_order_result_dict(o) for o in outcome.orders],
            "latency": dict(outcome.latency.stamps),
            "created_at": _now(),
        }
        return await self._write(
            lambda conn: _insert_if_new(conn, outcomes_table, values, ["signal_id", "venue"])
        )

    async def venue_outcome(self, signal_id: str, venue: str) -> VenueOutcome | None:
        """The journaled outcome of a signal on one venue (the first), or None: an operation
        resumed after a crash or a takeover is done there already when this is not None."""
        table = outcomes_table
        stmt = (
            select(table)
            .where(table.c.signal_id == signal_id, table.c.venue == venue)
            .order_by(table.c.id)
            .limit(1)
        )
        row = await self._read(lambda conn: conn.execute(stmt).mappings().first())
        if row is None:
            return None
        # The orders and latency columns are JSON summaries, not the outcome's objects.
        return _from_row(VenueOutcome, row, skip=("orders", "latency"), status=OutcomeStatus(row["status"]))

    # ---- reconciliation events

    async def record_event(
        self,
        kind: str,
        venue: str,
        coin: str,
        exchange_size: Decimal | None,
        cached_size: Decimal | None,
        detail: str = "",
    ) -> None:
        """Journal one reconciliation finding (stale_local_cleared, missing_local_adopted, size_mismatch…)."""
        values = {
            "kind": kind,
            "venue": venue,
            "coin": coin,
            "exchange_size": exchange_size,
            "cached_size": cached_size,
            "detail": detail,
            "created_at": _now(),
        }
        await self._write(lambda conn: conn.execute(insert(events_table).values(**values)))

    # ---- cached positions

    async def cached_positions(self, venue: str | None = None) -> dict[tuple[str, str], CachedPosition]:
        """The cache, keyed by (venue, coin)."""
        if venue is None:
            rows = await self._lookup(_CACHED_POSITIONS)
        else:
            rows = await self._lookup(_CACHED_POSITIONS_OF, venue=venue)
        return {(row["venue"], row["coin"]): _from_row(CachedPosition, row) for row in rows}

    async def set_cached_position(
        self, venue: str, coin: str, size: Decimal, entry_price: Decimal = Decimal(0)
    ) -> None:
        """Remember a position; a zero size clears it (flat coins are absent, as on the venue)."""
        if size == 0:
            await self.clear_cached_position(venue, coin)
            return
        keys = {"venue": venue, "coin": coin}
        values = {"size": size, "entry_price": entry_price, "updated_at": _now()}
        await self._write(lambda conn: _upsert(conn, cached_positions_table, keys, values))

    async def clear_cached_position(self, venue: str, coin: str) -> None:
        """Forget a cached position."""
        table = cached_positions_table
        stmt = sa_delete(table).where(table.c.venue == venue, table.c.coin == coin)
        await self._write(lambda conn: conn.execute(stmt))

    # ---- fills

    async def record_fill(self, fill: Fill) -> bool:
        """Journal a venue fill; False when (venue, fill_id) is already there."""
        values = {
            "venue": fill.venue,
            "fill_id": fill.fill_id,
            "coin": fill.coin,
            "is_buy": fill.is_buy,
            "size": fill.size,
            "price": fill.price,
            "fee": fill.fee,
            "realized_pnl": fill.realized_pnl,
            "time": fill.time,
            "venue_order_id": fill.venue_order_id,
            "client_id": fill.client_id,
            "recorded_at": _now(),
        }
        return await self._write(lambda conn: _insert_if_new(conn, fills_table, values, ["venue", "fill_id"]))

    async def fills(self, since: datetime | None = None, venue: str | None = None) -> list[Fill]:
        """Journaled fills in time order, optionally from `since` and for one venue."""
        stmt = select(fills_table).order_by(fills_table.c.time, fills_table.c.id)
        if since is not None:
            stmt = stmt.where(fills_table.c.time >= since)
        if venue is not None:
            stmt = stmt.where(fills_table.c.venue == venue)
        rows = await self._read(lambda conn: conn.execute(stmt).mappings().all())
        return [_fill_from_row(row) for row in rows]

    # ---- control

    async def get_control(self, key: str, default: Any = None) -> Any:
        """A control value (`paused`, hold deadlines …), or `default` when never set."""
        stmt = select(control_table.c.value).where(control_table.c.key == key)
        row = await self._read(lambda conn: conn.execute(stmt).first())
        return default if row is None else row[0]

    async def set_control(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable control value."""
        json.dumps(value, default=_json_default)  # fail in the caller, not in the writer thread
        values = {"value": value, "updated_at": _now()}
        await self._write(lambda conn: _upsert(conn, control_table, {"key": key}, values))

    # ---- views for web and CLI (plain dicts, newest first)

    async def _recent(self, table: Table, order: Iterable[Any], limit: int) -> list[dict[str, Any]]:
        stmt = select(table).order_by(*order).limit(max(0, int(limit)))
        rows = await self._read(lambda conn: conn.execute(stmt).mappings().all())
        return [_row_dict(row) for row in rows]

    async def recent_news(self, limit: int = 50) -> list[dict[str, Any]]:
        """Latest news items as JSON-friendly dicts."""
        return await self._recent(news_table, [news_table.c.received_at.desc()], limit)

    async def recent_signals(self, limit: int = 50) -> list[dict[str, Any]]:
        """Latest signals as JSON-friendly dicts."""
        return await self._recent(signals_table, [signals_table.c.created_at.desc()], limit)

    async def recent_orders(self, limit: int = 50) -> list[dict[str, Any]]:
        """Latest order intents as JSON-friendly dicts."""
        return await self._recent(orders_table, [orders_table.c.id.desc()], limit)

    async def recent_events(self, limit: int = 50) -> list[dict[str, Any]]:
        """Latest reconciliation events as JSON-friendly dicts."""
        return await self._recent(events_table, [events_table.c.id.desc()], limit)

    async def recent_outcomes(self, limit: int = 50) -> list[dict[str, Any]]:
        """Latest per-venue outcomes, each with `latency_ms` (ms from the first stamp to each stage)."""
        rows = await self._recent(outcomes_table, [outcomes_table.c.id.desc()], limit)
        for row in rows:
            row["latency_ms"] = _latency_ms(row["latency"] or {})
        return rows

    async def counts(self) -> dict[str, int]:
        """Row count per table (for status pages and tests)."""
        tables = [news_table, signals_table, orders_table, outcomes_table, fills_table, events_table]

        def run(conn: Connection) -> dict[str, int]:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in tables
            }

        return await self._read(run)


MIGRATIONS: Final = Path(__file__).with_name("migrations")
# A database made before Alembic managed the schema is stamped by its schema_version:
# 1 = the first release, 2 = signals.why (added by hand before the migrations existed).
PRE_ALEMBIC_REVISIONS: Final = {1: "0001", 2: "0002"}
# Any constant: the key of the transaction-level advisory lock that serialises migrations.
_MIGRATION_LOCK_KEY: Final = 0x6E657773_6D696772
# Alembic's `context` and `op` are process-wide proxies: two journals migrating at once in one
# process (`check --trade-test` opens one per venue, in parallel) would run on each other's.
_ALEMBIC_IN_USE = threading.Lock()


def _migrate(conn: Connection) -> int:
    """Bring the schema to head with Alembic; returns the schema version. A database from a
    newer newstrader is refused before anything is touched."""
    from alembic import command
    from alembic.config import Config

    if conn.dialect.name == "postgresql":  # two bots starting together migrate one at a time
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
    tables = set(inspect(conn).get_table_names())
    version = None
    if "schema_version" in tables:
        version = conn.execute(select(func.max(schema_version_table.c.version))).scalar()
        if version is not None and version > SCHEMA_VERSION:
            raise JournalError(
                f"journal schema version {version} is newer than this newstrader"
                f" understands ({SCHEMA_VERSION})"
            )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    with _ALEMBIC_IN_USE:
        if "news" in tables and "alembic_version" not in tables:
            command.stamp(config, PRE_ALEMBIC_REVISIONS.get(int(version or 1), "0001"))
        command.upgrade(config, "head")
    return int(conn.execute(select(func.max(schema_version_table.c.version))).scalar_one())
