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


def _fmt(value: Any, places: int | None = None) -> str:
    if value is None or value == "":
        return "–"
    if places is not None:
        try:
            return f"{Decimal(str(value)):.{places}f}"
        except InvalidOperation:
            return str(value)
    return str(value)


def _signed_style(value: Any) -> str:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError):
        return ""
    return "green" if number > 0 else "red" if number < 0 else ""


def _table(title: str, columns: Iterable[str]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in _NUMERIC else "left")
    return table


_NUMERIC = {"Exchange", "Cache", "Entry", "Mark", "uPnL", "TP", "SL", "Size", "Price", "PnL", "Fee", "Value"}


def render_positions(console: Console, data: dict[str, Any]) -> None:
    """Exchange size next to the cache, one row per venue and coin."""
    table = _table(
        "Positions (exchange is the truth)" + ("  [yellow]PAUSED[/]" if data.get("paused") else ""),
        ["Venue", "Coin", "Exchange", "Cache", "State", "Entry", "Mark", "uPnL", "TP", "SL"],
    )
    for p in data.get("positions", []):
        state = "[yellow]drift[/]" if p.get("drift") else "[green]in sync[/]"
        table.add_row(
            p.get("venue"),
            p.get("coin"),
            f"[{_signed_style(p.get('exchange_size'))}]{_fmt(p.get('exchange_size'))}[/]",
            _fmt(p.get("cached_size")),
            state,
            _fmt(p.get("entry_price")),
            _fmt(p.get("mark_price")),
            f"[{_signed_style(p.get('unrealized_pnl'))}]{_fmt(p.get('unrealized_pnl'), 2)}[/]",
            _fmt(p.get("take_profit")),
            _fmt(p.get("stop_loss")),
        )
    if not data.get("positions"):
        console.print("No positions on any venue." + ("  (paused)" if data.get("paused") else ""))
        return
    console.print(table)


def render_events(console: Console, events: list[dict[str, Any]], title: str) -> None:
    """Reconciliation events (drift) as a table."""
    if not events:
        console.print(f"{title}: none")
        return
    table = _table(title, ["Time", "Kind", "Venue", "Coin", "Exchange", "Cache", "Detail"])
    for e in events:
        table.add_row(
            str(e.get("created_at", ""))[:19],
            str(e.get("kind", "")),
            str(e.get("venue", "")),
            str(e.get("coin", "")),
            _fmt(e.get("exchange_size")),
            _fmt(e.get("cached_size")),
            str(e.get("detail", ""))[:60],
        )
    console.print(table)


def render_control(console: Console, data: dict[str, Any]) -> None:
    """The answer to pause / resume / close / flatten."""
    state = "paused" if data.get("paused") else "trading"
    console.print(f"[bold]{data.get('action')}[/]: {'done' if data.get('ok') else 'failed'} (bot is {state})")
    detail = data.get("detail")
    if detail not in (None, [], {}):
        console.print_json(json.dumps(detail))


def render_history(console: Console, news: list[dict[str, Any]], signals: list[dict[str, Any]]) -> None:
    """Recent news with their decision, then recent signals with per-venue outcomes."""
    table = _table("News", ["Received", "Source", "Title", "Outcome", "Reason"])
    for n in news:
        table.add_row(
            str(n.get("received_at", ""))[11:19],
            str(n.get("source", "")),
            str(n.get("title", ""))[:70],
            str(n.get("outcome", "")),
            str(n.get("reason", ""))[:40],
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
            str(s.get("created_at", ""))[11:19],
            str(s.get("coin", "")),
            f"[{'green' if side == 'long' else 'red'}]{side}[/]",
            str(s.get("status", "")),
            " ".join(per_venue),
        )
    console.print(table)


def render_stats(console: Console, data: dict[str, Any]) -> None:
    """Realized PnL and fees from exchange fills, plus the auto trader's summary."""
    table = _table("Stats (from exchange fills)", ["Metric", "Value"])
    table.add_row("realized PnL (net of fees)", _fmt(data.get("realized_pnl"), 4))
    table.add_row("fees", _fmt(data.get("fees"), 4))
    table.add_row("fills", str(data.get("fills", 0)))
    table.add_row("paused", "yes" if data.get("paused") else "no")
    for key, value in sorted((data.get("summary") or {}).items()):
        if not isinstance(value, dict | list):
            table.add_row(str(key), _fmt(value))
    console.print(table)


def print_json(data: Any) -> None:
    """Plain JSON on stdout, one document, for scripts."""
    print(json.dumps(data, indent=2, sort_keys=True))
