"""The operator verbs of the CLI, talking to a running bot over its HTTP API.

Where the bot is: `NEWSTRADER_WEB_URL` (else `http://<[web] host>:<[web] port>` of the config
file, else http://127.0.0.1:8080). The token: `NEWSTRADER_WEB_TOKEN`, else `[web] token` of
the config file. Only the `[web]` table is read, so the CLI needs no venue secrets.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

DEFAULT_URL = "http://127.0.0.1:8080"


class RemoteError(Exception):
    """Something the operator must read: no bot there, token refused, request refused."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    token: str


def resolve_endpoint(config: Path | None) -> Endpoint:
    """URL and token from env, then the config file's `[web]` table."""
    web: dict[str, Any] = {}
    if config is not None and config.exists():
        try:
            web = tomllib.loads(config.read_text()).get("web", {}) or {}
        except tomllib.TOMLDecodeError as exc:
            raise RemoteError(f"{config}: not valid TOML: {exc}") from exc
        if not isinstance(web, dict):
            raise RemoteError(f"{config}: [web] must be a table")
    url = os.environ.get("NEWSTRADER_WEB_URL")
    if not url:
        host = str(web.get("host", "127.0.0.1"))
        url = f"http://{host}:{int(web.get('port', 8080))}" if web else DEFAULT_URL
    token = os.environ.get("NEWSTRADER_WEB_TOKEN") or str(web.get("token") or "")
    if not token:
        raise RemoteError(
            "no token: set NEWSTRADER_WEB_TOKEN (the bot prints it at start-up) or [web] token in "
            f"{config or 'the config file'}"
        )
    return Endpoint(url=url.rstrip("/"), token=token)


class BotClient:
    """A small synchronous client of the bot's API."""

    def __init__(self, endpoint: Endpoint, timeout: float = 40.0) -> None:  # > the API's longest `?wait`
        self.endpoint = endpoint
        self._http = httpx.Client(
            base_url=endpoint.url,
            headers={"Authorization": f"Bearer {endpoint.token}"},
            timeout=timeout,
            trust_env=False,  # loopback only: never route through a proxy
        )

    def __enter__(self) -> BotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request; any failure becomes a `RemoteError` with a sentence an operator can act on."""
        try:
            response = self._http.request(method, path, json=body)
        except httpx.ConnectError as exc:
            raise RemoteError(
                f"no bot answering at {self.endpoint.url}: "
                "start one with `newstrader run` or `newstrader demo`"
            ) from exc
        except httpx.HTTPError as exc:
            raise RemoteError(f"{method} {path} failed: {exc}") from exc
        if response.status_code == 401:
            raise RemoteError(f"the bot at {self.endpoint.url} refused the token")
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            detail = data.get("detail") if isinstance(data, dict) else response.text
            raise RemoteError(f"{method} {path}: {response.status_code} {detail}")
        return data


# ---------------------------------------------------------------- rendering
# Cells are `Text`, never markup strings: a value (a headline, an empty style) is never parsed
# as rich markup, so no row can raise a MarkupError or lose its brackets.


def _number(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _fmt(value: Any, places: int | None = None) -> str:
    """A number as a plain decimal without trailing zeros (never `3.2E+3`), `places` fixed when
    given; anything else as its text."""
    if value is None or value == "":
        return "–"
    number = _number(value)
    if number is None:
        return str(value)
    if places is not None:
        return f"{number:.{places}f}"
    return format(number.normalize(), "f")  # 0.0000 → 0, 1.50 → 1.5, 3.2E+3 → 3200


def _money(value: Any) -> str:
    return _fmt(value, 2)


def _signed(value: Any, places: int | None = None) -> Text:
    number = _number(value)
    style = "" if number is None or number == 0 else "green" if number > 0 else "red"
    return Text(_fmt(value, places), style=style)


def _text(value: Any, limit: int | None = None) -> Text:
    shown = "" if value is None else str(value)
    return Text(shown[:limit] if limit else shown)


def _table(title: str, columns: Iterable[str]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in _NUMERIC else "left")
    return table


_NUMERIC = {
    "Exchange",
    "Cache",
    "Entry",
    "Mark",
    "uPnL",
    "TP",
    "SL",
    "Size",
    "Price",
    "PnL",
    "Fee",
    "Value",
    "Size before",
    "Remaining",
    "Net PnL (USD)",
    "Fees (USD)",
    "Volume (USD)",
    "Trades",
    "Win rate",
    "Open orders",
}


def _paused_line(data: dict[str, Any]) -> str:
    reason = data.get("paused_reason")
    since = data.get("paused_since")
    why = f" ({reason}" + (f", since {since}" if since else "") + ")" if reason else ""
    return f"PAUSED{why}: no new positions until `newstrader resume`."


def render_positions(console: Console, data: dict[str, Any]) -> None:
    """Exchange size next to the cache, one row per venue and coin."""
    if data.get("paused"):
        console.print(Text(_paused_line(data), style="yellow"))
    if not data.get("positions"):
        console.print("No positions on any venue.")
        return
    table = _table(
        "Positions (exchange is the truth)",
        ["Venue", "Coin", "Exchange", "Cache", "State", "Entry", "Mark", "uPnL", "TP", "SL"],
    )
    for p in data.get("positions", []):
        state = Text("drift", style="yellow") if p.get("drift") else Text("in sync", style="green")
        table.add_row(
            _text(p.get("venue")),
            _text(p.get("coin")),
            _signed(p.get("exchange_size")),
            _text(_fmt(p.get("cached_size"))),
            state,
            _text(_fmt(p.get("entry_price"))),
            _text(_fmt(p.get("mark_price"))),
            _signed(p.get("unrealized_pnl"), 2),
            _text(_fmt(p.get("take_profit"))),
            _text(_fmt(p.get("stop_loss"))),
        )
    console.print(table)


def render_events(console: Console, events: list[dict[str, Any]], title: str) -> None:
    """Reconciliation events (drift) as a table."""
    if not events:
        console.print(f"{title}: none")
        return
    table = _table(title, ["Time", "Kind", "Venue", "Coin", "Exchange", "Cache", "Detail"])
    for e in events:
        table.add_row(
            _text(str(e.get("created_at", ""))[:19]),
            _text(e.get("kind", "")),
            _text(e.get("venue", "")),
            _text(e.get("coin", "")),
            _text(_fmt(e.get("exchange_size"))),
            _text(_fmt(e.get("cached_size"))),
            _text(e.get("detail", ""), 60),
        )
    console.print(table)


def render_control(console: Console, data: dict[str, Any]) -> None:
    """The answer to pause / resume / close / flatten, as sentences and a table (never raw JSON)."""
    action = str(data.get("action"))
    detail = data.get("detail")
    trading = "paused: it opens no new positions" if data.get("paused") else "trading"
    if not data.get("ok"):
        console.print(Text(f"{action} failed; the bot is {trading}.", style="red"))
    elif action == "pause":
        reason = detail.get("reason") if isinstance(detail, dict) else None
        console.print(
            f"Paused{f' ({reason})' if reason else ''}: no new positions until `newstrader resume`."
        )
        console.print("Open positions and their take-profit / stop-loss stay on the exchanges.")
    elif action == "resume":
        console.print(f"Resumed: the bot is {trading}.")
    elif action == "close":
        _render_close(console, detail)
        console.print(f"The bot is {trading}.")
    elif action == "flatten":
        _render_flatten(console, detail)
        console.print(f"The bot is {trading}.")
    else:
        console.print(f"{action}: done; the bot is {trading}.")


def _render_close(console: Console, detail: Any) -> None:
    reports = list(detail.get("venues", {}).values()) if isinstance(detail, dict) else detail or []
    coin = detail.get("coin") if isinstance(detail, dict) else None
    table = _table(f"Close {coin or ''}".rstrip(), ["Venue", "Coin", "Size before", "Remaining", "Result"])
    flat = True
    for r in reports if isinstance(reports, list) else []:
        done = r.get("flat", r.get("status") == "ok")
        flat = flat and bool(done)
        errors = "; ".join(str(e) for e in r.get("errors") or []) or r.get("reason") or ""
        table.add_row(
            _text(r.get("venue")),
            _text(r.get("coin", coin)),
            _text(_fmt(r.get("size_before", r.get("exchange_size_before")))),
            _text(_fmt(r.get("remaining", r.get("exchange_size_after")))),
            Text("flat" if done else f"NOT flat {errors}".strip(), style="green" if done else "red"),
        )
    console.print(table)
    console.print(
        "Closed: flat on every venue asked." if flat else Text("Not flat everywhere: see above.", "red")
    )


def _render_flatten(console: Console, detail: Any) -> None:
    venues = detail.get("venues", {}) if isinstance(detail, dict) else {}
    table = _table("Flatten", ["Venue", "Closed", "Remaining", "Open orders", "Result"])
    for name, v in venues.items():
        closed = ", ".join(str(c.get("coin")) for c in v.get("closed") or []) or "nothing to close"
        remaining = ", ".join(f"{c} {_fmt(size)}" for c, size in (v.get("positions") or {}).items()) or "none"
        errors = "; ".join(str(e) for e in v.get("errors") or [])
        done = bool(v.get("flat"))
        table.add_row(
            _text(name),
            _text(closed),
            _text(remaining),
            _text(str(v.get("open_orders", "–"))),
            Text("flat" if done else f"NOT flat {errors}".strip(), style="green" if done else "red"),
        )
    console.print(table)
    if isinstance(detail, dict) and detail.get("flat"):
        console.print("Flat: no position and no open order on any venue.")
    else:
        console.print(Text("NOT flat everywhere: see the table; run flatten again or act by hand.", "red"))


def render_history(console: Console, news: list[dict[str, Any]], signals: list[dict[str, Any]]) -> None:
    """Recent news with their decision, then recent signals with per-venue outcomes."""
    table = _table("News", ["Received", "Source", "Title", "Outcome", "Reason"])
    for n in news:
        table.add_row(
            _text(str(n.get("received_at", ""))[11:19]),
            _text(n.get("source", "")),
            _text(n.get("title", ""), 70),
            _text(n.get("outcome", "")),
            _text(n.get("reason", ""), 40),
        )
    console.print(table)
    table = _table("Signals", ["Time", "Coin", "Side", "Status", "Per venue"])
    for s in signals:
        per_venue = []
        for o in s.get("outcomes", []):
            stages = [float(v) for v in (o.get("latency_ms") or {}).values()]
            ms = f" {max(stages):.1f}ms" if stages else ""
            per_venue.append(f"{o.get('venue')}:{o.get('status')}{ms}")
        side = str(s.get("side", ""))
        table.add_row(
            _text(str(s.get("created_at", ""))[11:19]),
            _text(s.get("coin", "")),
            Text(side, style="green" if side == "long" else "red"),
            _text(s.get("status", "")),
            _text(" ".join(per_venue)),
        )
    console.print(table)


def _percent(value: Any) -> str:
    number = _number(value)
    return "–" if number is None else f"{number * 100:.1f} %"


def render_stats(console: Console, data: dict[str, Any]) -> None:
    """Realized PnL and fees from exchange fills: money in USD with two decimals, each figure once."""
    summary = data.get("summary") or {}
    net = summary.get("net_pnl", data.get("realized_pnl"))
    fees = summary.get("fees", data.get("fees"))
    table = _table("Stats (from exchange fills)", ["Figure", "Value"])
    if "realized_pnl" in summary:
        table.add_row("Realized PnL before fees (USD)", _signed(summary["realized_pnl"], 2))
    table.add_row("Fees (USD)", _text(_money(fees)))
    table.add_row("Net realized PnL (USD)", _signed(net, 2))
    if "volume_usd" in summary:
        table.add_row("Volume (USD)", _text(_money(summary["volume_usd"])))
    table.add_row("Fills", _text(summary.get("fills", data.get("fills", 0))))
    if "trades" in summary:
        table.add_row("Closed trades", _text(summary["trades"]))
        table.add_row("Win rate", _text(_percent(summary.get("win_rate"))))
        hold = _number(summary.get("avg_hold_s"))
        table.add_row("Average hold", _text("–" if hold is None else f"{hold:.0f} s"))
        table.add_row("Open trades", _text(summary.get("open_trades", 0)))
    if "signal_to_fill_samples" in summary:
        p50, p95 = summary.get("signal_to_fill_ms_p50"), summary.get("signal_to_fill_ms_p95")
        latency = "–" if p50 is None else f"{_fmt(p50, 1)} ms median, {_fmt(p95, 1)} ms p95"
        table.add_row(f"Signal to fill ({summary['signal_to_fill_samples']} samples)", _text(latency))
    paused = "yes" + (f" ({summary['paused_reason']})" if summary.get("paused_reason") else "")
    table.add_row("Paused", _text(paused if data.get("paused") else "no"))
    console.print(table)
    for group, label in (("by_venue", "Venue"), ("by_coin", "Coin")):
        rows = summary.get(group) or {}
        if not rows:
            continue
        per = _table(
            f"By {label.lower()}",
            [label, "Net PnL (USD)", "Fees (USD)", "Volume (USD)", "Trades", "Win rate"],
        )
        for key, row in rows.items():
            per.add_row(
                _text(key),
                _signed(row.get("net_pnl"), 2),
                _text(_money(row.get("fees"))),
                _text(_money(row.get("volume_usd"))),
                _text(row.get("trades", 0)),
                _text(_percent(row.get("win_rate"))),
            )
        console.print(per)


def print_json(data: Any) -> None:
    """Plain JSON on stdout, one document, for scripts."""
    print(json.dumps(data, indent=2, sort_keys=True))
