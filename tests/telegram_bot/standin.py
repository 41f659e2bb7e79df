"""A local stand-in for the Telegram Bot API, like our venue simulator: the real client talks to it.

It serves ``/bot<token>/<method>`` with the Bot API's shapes (core.telegram.org/bots/api):
every answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N,
"description": "...", "parameters": {"retry_after": S}}``; parameters arrive as a query
string, a form (non-string values JSON-encoded, as python-telegram-bot sends them) or JSON.

Methods: getMe, deleteWebhook, getUpdates (long polling with `offset` confirmation and
`timeout`), sendMessage, answerCallbackQuery, editMessageText. Faults: `rate_limit(retry_after)`
answers 429 with `retry_after`; `hang()` holds requests until the client gives up (a timeout).

The test drives it from its own thread: `send_command` / `press` queue updates as a user's
messages and button presses; `messages(chat_id)` is what the bot sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from newstrader.web.server import LoopbackServer

BOT_ID = 7_000_000_001
BOT_USERNAME = "newstrader_test_bot"
FAULT_METHODS = frozenset({"sendMessage", "editMessageText", "answerCallbackQuery"})


@dataclass
class Sent:
    """One message the bot sent (and its later edits)."""

    message_id: int
    chat_id: int
    text: str
    reply_markup: dict[str, Any] | None
    at: float
    edits: list[str] = field(default_factory=list)

    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]


@dataclass
class Fault:
    kind: str  # "429" or "hang"
    retry_after: int = 1
    hang_s: float = 30.0


class BotApiStandIn:
    """The stand-in's state; every method is thread-safe (the server runs in its own thread)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self._lock = threading.Lock()
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1000
        self._next_message_id = 1
        self._confirmed_offset = 0
        self.sent: list[Sent] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.calls: dict[str, int] = {}
        self.faulted: dict[str, int] = {}
        self.fault: Fault | None = None
        self.unauthorized = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self.url = ""

    # ---------------------------------------------------------------- test side

    def start(self) -> None:
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            async def main() -> None:
                self._loop = asyncio.get_running_loop()
                self._wake = asyncio.Event()
                self._stop = asyncio.Event()
                server = LoopbackServer(self.app())
                await server.start()
                self.url = server.url
                ready.set()
                await self._stop.wait()
                await server.stop()

            try:
                asyncio.run(main())
            except BaseException as exc:
                errors.append(exc)
                ready.set()

        self._thread = threading.Thread(target=serve, name="bot-api-standin", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors or not self.url:
            raise RuntimeError(f"stand-in did not start: {errors}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    @property
    def api_url(self) -> str:
        """What `[telegram] api_url` (python-telegram-bot's `base_url`) is set to."""
        return f"{self.url}/bot"

    def _push(self, update: dict[str, Any]) -> int:
        with self._lock:
            update_id = self._next_update_id
            self._next_update_id += 1
            self._updates.append({"update_id": update_id, **update})
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
        return update_id

    def send_command(self, chat_id: int, text: str) -> int:
        """A user in `chat_id` (a private chat: user id = chat id) sends `text`; the update id."""
        with self._lock:
            message_id = self._next_message_id
            self._next_message_id += 1
        entities = []
        if text.startswith("/"):
            entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return self._push(
            {
                "message": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"},
                    "from": {"id": chat_id, "is_bot": False, "first_name": f"user{chat_id}"},
                    "text": text,
                    "entities": entities,
                }
            }
        )

    def press(self, chat_id: int, message: Sent, data: str) -> int:
        """A user in `chat_id` presses an inline button carrying `data` under `message`."""
        return self._push(
            {
                "callback_query": {
                    "id": f"cq-{time.monotonic_ns()}",
                    "from": {"id": chat_id, "is_bot": False, "first_name": f"user{chat_id}"},
                    "message": {
                        "message_id": message.message_id,
                        "date": int(message.at),
                        "chat": {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"},
                        "from": {"id": BOT_ID, "is_bot": True, "first_name": "newstrader"},
                        "text": message.text,
                    },
                    "chat_instance": f"ci-{chat_id}",
                    "data": data,
                }
            }
        )

    def consumed(self, update_id: int) -> bool:
        """True once the bot confirmed (by a later getUpdates offset) that it took `update_id`."""
        with self._lock:
            return self._confirmed_offset > update_id

    def messages(self, chat_id: int | None = None) -> list[Sent]:
        with self._lock:
            return [m for m in self.sent if chat_id is None or m.chat_id == chat_id]

    def set_fault(self, fault: Fault | None) -> None:
        with self._lock:
            self.fault = fault

    def count(self, method: str) -> int:
        with self._lock:
            return self.calls.get(method, 0)

    def faulted_count(self, kind: str) -> int:
        with self._lock:
            return self.faulted.get(kind, 0)

    # ---------------------------------------------------------------- server side

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/bot{token}/{method}", self.endpoint, methods=["GET", "POST"])])

    async def endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        if request.path_params["token"] != self.token:
            with self._lock:
                self.unauthorized += 1
            return _error(401, "Unauthorized")
        params = await _params(request)
        with self._lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            fault = self.fault if method in FAULT_METHODS else None
        if fault is not None:
            with self._lock:
                self.faulted[fault.kind] = self.faulted.get(fault.kind, 0) + 1
            if fault.kind == "429":
                return _error(
                    429,
                    f"Too Many Requests: retry after {fault.retry_after}",
                    {"retry_after": fault.retry_after},
                )
            await asyncio.sleep(fault.hang_s)  # the fault itself: an answer that comes too late
        handler: Callable[[dict[str, Any]], Any] | None = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        result = handler(params)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, JSONResponse):
            return result
        return JSONResponse({"ok": True, "result": result})

    def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "newstrader",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates"):
            with self._lock:
                self._updates.clear()
        return True

    async def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        assert self._wake is not None
        while True:
            with self._lock:
                if offset:
                    self._confirmed_offset = max(self._confirmed_offset, offset)
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = self._updates[:limit]
                self._wake.clear()
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0:
                return ready
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return []

    def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        text = str(params.get("text", ""))
        if not text:
            return _error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return _error(400, "Bad Request: message is too long")
        chat_id = int(params["chat_id"])
        with self._lock:
            message_id = self._next_message_id
            self._next_message_id += 1
            sent = Sent(message_id, chat_id, text, params.get("reply_markup"), time.time())
            self.sent.append(sent)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(sent.at),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "newstrader", "username": BOT_USERNAME},
            "text": text,
        }
        if sent.reply_markup:
            message["reply_markup"] = sent.reply_markup
        return message

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        with self._lock:
            self.callback_answers.append(params)
        return True

    def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        message_id = int(params["message_id"])
        with self._lock:
            found = next((m for m in self.sent if m.chat_id == chat_id and m.message_id == message_id), None)
            if found is None:
                return _error(400, "Bad Request: message to edit not found")
            found.edits.append(str(params.get("text", "")))
        return {
            "message_id": message_id,
            "date": int(found.at),
            "edit_date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "newstrader"},
            "text": params.get("text", ""),
        }


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code)


_JSON_PARAMS = {"chat_id", "reply_markup", "offset", "limit", "timeout", "allowed_updates", "message_id"}


async def _params(request: Request) -> dict[str, Any]:
    """Query string, JSON body or form body; form values of object/number type are JSON text."""
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if "application/json" in content_type:
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
        return params
    if "application/x-www-form-urlencoded" in content_type:
        params.update(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    for key in list(params):
        value = params[key]
        if isinstance(value, str) and (key in _JSON_PARAMS or value in ("true", "false")):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params
