"""Websocket push plumbing shared by both simulated venues.

- `PushHub` (one per venue) listens to `Exchange.on_change` and, once the synchronous exchange call
  that made the changes is over, hands one `Changes` batch to every live connection. So every
  state change (orders, fills, triggers, liquidations, `/admin` positions and prices) is pushed,
  whoever caused it, and a connection never sees half of one operation.
- `PushConnection` owns one accepted websocket: an outgoing queue drained by a sender task that
  applies the websocket faults (`ws_disconnect`, `ws_stall_ms`, `ws_drop_message`, see
  `faults.py`), a receive loop with an idle timeout, and registration with the hub.
- `asgi_post` runs an HTTP POST through the whole simulator app in-process (middleware, faults and
  stats included): Hyperliquid's websocket `post` uses it to reach `/info` and `/exchange`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from newstrader.sim.market import ChangeKind, FillRecord, OrderRecord

if TYPE_CHECKING:
    from newstrader.sim.app import Sim

log = structlog.get_logger("newstrader.sim.push")

CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL_ERROR = 1011  # what a `ws_disconnect` fault looks like to the client
CLOSE_SERVICE_RESTART = 1012  # `POST /admin/reset`


@dataclass(slots=True)
class Changes:
    """Everything one exchange operation changed, for the push builders."""

    orders: dict[int, OrderRecord] = field(default_factory=dict)  # oid → record, in change order
    fills: list[FillRecord] = field(default_factory=list)
    marks: set[str] = field(default_factory=set)  # coins whose mark moved
    accounts: set[str] = field(default_factory=set)  # addresses whose balance or positions changed


class Subscriber(Protocol):
    """A live connection that turns a change batch into its own venue's messages."""

    def deliver(self, changes: Changes) -> None: ...

    def close_soon(self, code: int, reason: str = "") -> None: ...


class PushHub:
    """Collects one venue's exchange changes and fans each batch out to the connections."""

    def __init__(self, sim: Sim, venue: str) -> None:
        self.sim = sim
        self.venue = venue
        self.subscribers: set[Subscriber] = set()
        self._pending: Changes | None = None
        self.attach()
        sim.on_reset(self.reset)

    def attach(self) -> None:
        """Listen to the venue's current exchange."""
        self.sim.exchanges[self.venue].on_change = self._on_change

    def reset(self) -> None:
        """`POST /admin/reset` replaced the exchange: listen to the new one, drop every client."""
        self._pending = None
        self.attach()
        for subscriber in list(self.subscribers):
            subscriber.close_soon(CLOSE_SERVICE_RESTART, "simulator reset")

    def _on_change(self, kind: ChangeKind, item: OrderRecord | FillRecord | str) -> None:
        pending = self._pending
        if pending is None:
            pending = self._pending = Changes()
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (a synchronous caller): nothing can be listening
                self._pending = None
                return
        if kind == "order":
            assert isinstance(item, OrderRecord)
            pending.orders.pop(item.oid, None)
            pending.orders[item.oid] = item
        elif kind == "fill":
            assert isinstance(item, FillRecord)
            pending.fills.append(item)
            pending.accounts.add(item.account)
        elif kind == "mark":
            assert isinstance(item, str)
            pending.marks.add(item)
        else:
            assert isinstance(item, str)
            pending.accounts.add(item)

    def flush(self) -> None:
        """Deliver the pending batch (runs right after the operation that made it)."""
        changes, self._pending = self._pending, None
        if changes is None:
            return
        for subscriber in list(self.subscribers):
            subscriber.deliver(changes)


class PushConnection:
    """One accepted websocket: fault-aware outgoing queue, receive loop, idle timeout."""

    def __init__(self, sim: Sim, hub: PushHub, websocket: WebSocket, idle_timeout_s: float | None) -> None:
        self.sim = sim
        self.hub = hub
        self.websocket = websocket
        self.idle_timeout_s = idle_timeout_s
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._closing: tuple[int, str] | None = None
        self.closed = False

    def deliver(self, changes: Changes) -> None:
        """Turn one change batch into this venue's messages (each venue's connection says how)."""
        raise NotImplementedError

    def send(self, label: str, payload: Any) -> None:
        """Queue one JSON message; `label` (`ws:<channel>`) is what websocket faults match."""
        if not self.closed:
            self._queue.put_nowait((label, json.dumps(payload, separators=(",", ":"))))

    def close_soon(self, code: int, reason: str = "") -> None:
        """Close after what is already queued (e.g. the venue's idle or lifetime cut)."""
        self._closing = (code, reason)
        self._queue.put_nowait(("", ""))

    async def _sender(self) -> None:
        venue = self.hub.venue
        while True:
            label, text = await self._queue.get()
            if not label:
                if self._closing is not None:
                    await self._close(*self._closing)
                    return
                continue
            drop = False
            for fault in self.sim.faults.pick(venue, label, "ws"):
                self.sim.stats.record_fault(fault.kind)
                log.info("sim_fault_fired", venue=venue, kind=fault.kind, request=label, fault_id=fault.id)
                if fault.kind == "ws_disconnect":
                    await self._close(CLOSE_INTERNAL_ERROR, "connection dropped (fault injection)")
                    return
                if fault.kind == "ws_stall_ms":
                    await asyncio.sleep((fault.ms or 0) / 1000)
                drop = drop or fault.kind == "ws_drop_message"
            if not drop:
                await self.websocket.send_text(text)

    async def _close(self, code: int, reason: str) -> None:
        self.closed = True
        if self.websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                await self.websocket.close(code, reason)

    async def _receiver(self, on_text: Callable[[str], Awaitable[None]]) -> None:
        while True:
            try:
                message = await asyncio.wait_for(self.websocket.receive(), self.idle_timeout_s)
            except TimeoutError:
                self.close_soon(CLOSE_GOING_AWAY, "idle timeout")
                return
            if message["type"] == "websocket.disconnect":
                self.closed = True
                return
            text = message.get("text")
            if text is None and message.get("bytes") is not None:
                text = message["bytes"].decode("utf-8", "replace")
            if text is not None:
                self.sim.stats.record(self.hub.venue, "ws:message")
                await on_text(text)

    async def serve(
        self, on_text: Callable[[str], Awaitable[None]], max_lifetime_s: float | None = None
    ) -> None:
        """Run until either side closes; the caller has accepted the websocket already."""
        self.sim.stats.record(self.hub.venue, "ws:connect")
        self.hub.subscribers.add(self)
        sender = asyncio.create_task(self._sender())
        receiver = asyncio.create_task(self._receiver(on_text))
        lifetime = asyncio.create_task(asyncio.sleep(max_lifetime_s)) if max_lifetime_s else None
        try:
            waiting = {sender, receiver} | ({lifetime} if lifetime else set())
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if lifetime in done:
                self.close_soon(CLOSE_GOING_AWAY, "connection lifetime reached")
            if sender not in done:
                # The receiver ended (client gone, or idle cut queued): let the sender finish the
                # queue and the close, but never wait on a client that is gone.
                if self.closed:
                    sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            else:
                sender.result()
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass
        finally:
            self.closed = True
            self.hub.subscribers.discard(self)
            for task in (sender, receiver, lifetime):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            await self._close(CLOSE_GOING_AWAY, "")


async def asgi_post(websocket: WebSocket, path: str, body: bytes) -> tuple[int, bytes]:
    """POST `body` to `path` through the whole simulator app in-process; (status, body)."""
    app = websocket.scope["app"]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": websocket.scope.get("client"),
        "server": websocket.scope.get("server"),
        "app": app,
    }
    delivered = False
    status = 500
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.Event().wait()  # no disconnect while the handler runs
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(scope, receive, send)
    except Exception as exc:  # a dropped-response fault ends the request this way
        log.info("sim_ws_post_failed", error=type(exc).__name__)
        return 502, b""
    return status, b"".join(chunks)
