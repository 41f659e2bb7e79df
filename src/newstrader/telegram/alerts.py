"""Bus events and journal rows → alert lines; many alerts → one message of at most 4096 chars.

An `Alert` has a category (the `[telegram] events` names), a merge key and its text parts: the
per-venue outcomes of one signal share the key `trade:<signal id>`, so a trade on two venues is
one line. `render` turns a batch into one message whose first line counts what it holds
(``newstrader · 3 trades · 1 drift``), so a burst of headlines reads as one summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from newstrader.domain import Fill

MAX_MESSAGE_CHARS = 4096  # the Bot API's limit for a text message
MAX_LINES = 25  # past this a message shows the newest lines and counts the rest
MAX_LINE_CHARS = 600

# Journal event kinds worth a phone alert, and their category.
JOURNAL_KINDS = {
    "paused": "pause",
    "resumed": "pause",
    "daily_loss_limit": "pause",
    "protection_failed": "tpsl",
    "protection_close": "tpsl",
    "time_exit": "tpsl",
}
_STATUS_MARK = {"ok": "✅", "failed": "❌", "skipped": "⏭"}
_NOUNS = {
    "trade": ("trade", "trades"),
    "drift": ("drift", "drifts"),
    "quarantine": ("venue alert", "venue alerts"),
    "tpsl": ("TP/SL", "TP/SL"),
    "pause": ("control", "controls"),
    "lifecycle": ("status", "status"),
}


@dataclass(slots=True)
class Alert:
    """One line of a message; alerts with the same key are merged into one line."""

    category: str
    key: str
    head: str
    parts: list[str] = field(default_factory=list)

    def merge(self, other: Alert) -> None:
        self.parts.extend(p for p in other.parts if p not in self.parts)

    def line(self) -> str:
        return f"{self.head} {'; '.join(self.parts)}".strip()[:MAX_LINE_CHARS]


class TradeAssembler:
    """Holds a signal's per-venue outcomes until every venue has reported (or `wait_s` passed),
    so a trade is one line even when one venue answers after the outbox's coalescing window."""

    def __init__(self, venues: Iterable[str], *, wait_s: float = 10.0, max_open: int = 1000) -> None:
        self.venues = frozenset(venues)
        self.wait_s = wait_s
        self.max_open = max_open
        self._open: dict[str, tuple[Alert, set[str], float]] = {}  # key → (alert, venues seen, deadline)

    def add(self, alert: Alert, venue: str, now: float) -> list[Alert]:
        """File one venue's outcome; returns the alerts ready to send (this trade when complete)."""
        held = self._open.get(alert.key)
        if held is None:
            held = (alert, set(), now + self.wait_s)
            self._open[alert.key] = held
        else:
            held[0].merge(alert)
        held[1].add(venue)
        ready = []
        if held[1] >= self.venues:
            ready.append(self._open.pop(alert.key)[0])
        while len(self._open) > self.max_open:  # bounded: the oldest goes out as it is
            ready.append(self._open.pop(next(iter(self._open)))[0])
        return ready

    def expired(self, now: float) -> list[Alert]:
        """The trades some venue never reported within `wait_s`: sent with what came."""
        late = [key for key, (_, _, deadline) in self._open.items() if deadline <= now]
        return [self._open.pop(key)[0] for key in late]

    def next_deadline(self) -> float | None:
        return min((deadline for _, _, deadline in self._open.values()), default=None)


def _num(value: Any) -> str:
    """A decimal string without float noise (`0.0200` → `0.02`); '-' when absent."""
    if value is None or value == "":
        return "-"
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _ms(value: Any) -> str:
    return "" if value is None else f" {float(value):.0f} ms"


def from_event(event: dict[str, Any]) -> Alert | None:
    """The alert for one bus event, or None for events a phone does not need (news, orders)."""
    kind = event.get("type")
    venue = str(event.get("venue", "?"))
    coin = str(event.get("coin", "?"))
    if kind == "outcome":
        signal_id = str(event.get("signal_id", "?"))
        status = str(event.get("status", "?"))
        reason = f" ({event['reason']})" if event.get("reason") else ""
        latency = _ms(event.get("fill_ms") if event.get("fill_ms") is not None else event.get("ack_ms"))
        after = _num(event.get("exchange_size_after"))
        part = f"{venue} {_STATUS_MARK.get(status, status)} {status}{latency} → {after}{reason}"
        return Alert("trade", f"trade:{signal_id}", f"{coin} [{signal_id}]:", [part])
    if kind == "drift":
        part = (
            f"{event.get('kind', 'drift')}: exchange {_num(event.get('exchange_size'))},"
            f" cache {_num(event.get('cached_size'))}"
        )
        return Alert("drift", f"drift:{venue}:{coin}:{part}", f"⚠️ drift {venue} {coin}:", [part])
    if kind == "alert" and event.get("kind") == "venue_quarantined":
        return Alert("quarantine", f"q:{venue}", f"⛔ {venue} quarantined:", [str(event.get("reason", ""))])
    if kind == "alert" and event.get("kind") == "venue_released":
        return Alert("quarantine", f"r:{venue}", f"✅ {venue} released:", ["health read succeeded"])
    return None


def from_journal_event(row: dict[str, Any]) -> Alert | None:
    """The alert for one journal event row (pause, resume, loss limit, protection, time exit)."""
    kind = str(row.get("kind", ""))
    category = JOURNAL_KINDS.get(kind)
    if category is None:
        return None
    detail = str(row.get("detail") or "")
    mark = {"paused": "⏸", "resumed": "▶️", "daily_loss_limit": "🛑"}.get(kind, "🛡")
    where = "" if category == "pause" else f" {row.get('venue', '')} {row.get('coin', '')}"
    return Alert(category, f"j:{row.get('id')}", f"{mark} {kind.replace('_', ' ')}{where}:", [detail])


def exit_kind(leg: str | None) -> str | None:
    """What a fill that realized PnL was, from the leg of the journaled order it filled: 'TP' or
    'SL' (the engine's trigger legs `tp0`, `sl1`, …), 'exit' when it filled no order the bot
    journaled (a trade by hand: every order the bot sends is journaled first), or None for the
    bot's own entries, flips and closes."""
    if leg is None:
        return "exit"
    return {"tp": "TP", "sl": "SL"}.get(leg[:2].lower())


def from_fill(fill: Fill, kind: str) -> Alert:
    """An exit the exchange filled on its own, with the realized PnL net of the fee it reported."""
    what = f"{kind} filled" if kind in ("TP", "SL") else "exit filled (not a bot order: by hand?)"
    net = fill.realized_pnl - fill.fee
    side = "bought" if fill.is_buy else "sold"
    part = (
        f"{side} {_num(fill.size)} @ {_num(fill.price)}, PnL {'+' if net >= 0 else ''}{_num(net)} USD"
        f" (fee {_num(fill.fee)})"
    )
    return Alert("tpsl", f"fill:{fill.venue}:{fill.fill_id}", f"🎯 {what} {fill.venue} {fill.coin}:", [part])


def lifecycle(text: str) -> Alert:
    return Alert("lifecycle", f"life:{text}", "ℹ️", [text])


def render(alerts: list[Alert], dropped: int = 0) -> str:
    """One message: a header counting each category, then a line per alert (the newest, bounded)."""
    counts = Counter(a.category for a in alerts)
    header = " · ".join(f"{n} {_NOUNS.get(cat, (cat, cat))[0 if n == 1 else 1]}" for cat, n in counts.items())
    lines = [f"newstrader · {header}" if header else "newstrader"]
    if dropped:
        lines.append(f"({dropped} older alerts dropped: the queue was full)")
    # Past the limits the newest lines are kept: after an outage the latest state matters most.
    size = sum(len(line) + 41 for line in lines)
    body: list[str] = []
    for alert in reversed(alerts):
        line = alert.line()
        if len(body) == MAX_LINES or size + len(line) + 1 > MAX_MESSAGE_CHARS:
            break
        body.append(line)
        size += len(line) + 1
    if len(body) < len(alerts):
        lines.append(f"… {len(alerts) - len(body)} earlier not shown")
    return "\n".join(lines + body[::-1])


def format_positions(rows: list[dict[str, Any]], paused: bool) -> str:
    """`/positions`: per venue and coin, the exchange's size (read now) next to the cache."""
    lines = [f"Positions: exchange | cache{' · PAUSED' if paused else ''}"]
    for row in rows:
        if row.get("error"):
            lines.append(f"{row.get('venue')}: unreadable ({row['error']})")
            continue
        drift = " ⚠️ drift" if row.get("drift") else ""
        upnl = row.get("unrealized_pnl")
        pnl = f" uPnL {_num(upnl)}" if upnl is not None else ""
        lines.append(
            f"{row.get('venue')} {row.get('coin')}: {_num(row.get('exchange_size'))}"
            f" | {_num(row.get('cached_size'))}{pnl}{drift}"
        )
    if len(lines) == 1:
        lines.append("no positions on any venue")
    return "\n".join(lines)[:MAX_MESSAGE_CHARS]


def format_stats(stats: dict[str, Any], paused: bool) -> str:
    """`/stats`: realized PnL, fees, trades and latency from the exchanges' fills."""
    keys = (
        ("net_pnl", "net PnL (USD)"),
        ("realized_pnl", "realized PnL"),
        ("fees", "fees"),
        ("trades", "trades"),
        ("win_rate", "win rate"),
        ("open_trades", "open trades"),
        ("signal_to_fill_ms_p50", "signal→fill p50 ms"),
        ("signal_to_fill_ms_p95", "signal→fill p95 ms"),
    )
    lines = [f"Stats{' · PAUSED' if paused else ''}"]
    lines += [f"{label}: {_num(stats[key])}" for key, label in keys if stats.get(key) is not None]
    reason = stats.get("paused_reason")
    if paused and reason:
        lines.append(f"paused: {reason}")
    return "\n".join(lines)


def format_result(action: str, result: Any) -> str:
    """A control's answer (close, flatten) in a few lines."""
    if isinstance(result, dict) and "venues" in result:
        venues = result["venues"]
        lines = [f"{action}: {'flat' if result.get('flat', True) else 'NOT flat'}"]
        for name, info in venues.items():
            remaining = info.get("remaining", info.get("positions")) if isinstance(info, dict) else info
            errors = info.get("errors") if isinstance(info, dict) else None
            lines.append(f"{name}: {remaining}{' · ' + '; '.join(map(str, errors)) if errors else ''}")
        return "\n".join(lines)[:MAX_MESSAGE_CHARS]
    if isinstance(result, list):
        lines = [f"{action}:"] + [
            f"{r.get('venue')} {r.get('coin')}: {r.get('status')} → {_num(r.get('exchange_size_after'))}"
            for r in result
            if isinstance(r, dict)
        ]
        return "\n".join(lines)[:MAX_MESSAGE_CHARS]
    return f"{action}: {result}"[:MAX_MESSAGE_CHARS]
