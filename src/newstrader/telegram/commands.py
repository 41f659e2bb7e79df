"""Commands from the phone, obeyed only from the configured chats.

Every command calls the bot's `BotApi`, the seam the dashboard is typed against (and /stats the
same summary as its `/api/stats`), so an order placed from Telegram passes through the engine
like any other. `/flatten` only asks:
it answers with a Confirm/Cancel keyboard whose button carries a one-time nonce for that chat;
only pressing Confirm within `CONFIRM_TTL_S` flattens.

Updates from any other chat stop at the gate (handler group -1) before any handler runs; each
such chat is logged once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import Any

import structlog
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    TypeHandler,
)

from newstrader.botapi import BotApi
from newstrader.telegram.alerts import format_positions, format_result, format_stats

log = structlog.get_logger("newstrader.telegram")

CONFIRM_TTL_S = 60.0
MAX_STRANGERS_LOGGED = 1000  # bounded memory against a flood of strangers
HELP = (
    "newstrader commands:\n"
    "/positions: exchange vs cache, per venue\n"
    "/stats: PnL, fees, trades, latency\n"
    "/pause, /resume: stop or restart opening positions\n"
    "/close COIN: close one coin on every venue\n"
    "/flatten: close everything (asks to confirm)"
)

Context = ContextTypes.DEFAULT_TYPE


class Commands:
    """The handlers of one Telegram bot over one running bot's `BotApi`."""

    def __init__(self, api: BotApi, chat_ids: Iterable[int]) -> None:
        self.api = api
        self.allowed = frozenset(chat_ids)
        self._strangers: set[int] = set()
        self._confirms: dict[str, tuple[int, float]] = {}  # nonce → (chat id, expiry)

    def install(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        app.add_handler(TypeHandler(Update, self.gate), group=-1)
        for name, handler in (
            ("start", self.help),
            ("help", self.help),
            ("positions", self.positions),
            ("stats", self.stats),
            ("pause", self.pause),
            ("resume", self.resume),
            ("close", self.close),
            ("flatten", self.flatten),
        ):
            app.add_handler(CommandHandler(name, handler))
        app.add_handler(CallbackQueryHandler(self.confirm, pattern=r"^(flatten|cancel):"))
        app.add_error_handler(self.on_error)

    # ---------------------------------------------------------------- the gate

    async def gate(self, update: Update, context: Context) -> None:
        """Stop every update that is not from an allowed chat (logged once per chat)."""
        chat = update.effective_chat
        if chat is not None and chat.id in self.allowed:
            return
        chat_id = chat.id if chat is not None else None
        key = chat_id if chat_id is not None else 0
        if key not in self._strangers and len(self._strangers) < MAX_STRANGERS_LOGGED:
            self._strangers.add(key)
            user = update.effective_user
            log.warning(
                "telegram_stranger_ignored",
                chat_id=chat_id,
                user_id=user.id if user is not None else None,
                username=user.username if user is not None else None,
                message="not in [telegram] chat_ids; this chat's updates are ignored (logged once)",
            )
        raise ApplicationHandlerStop

    # ---------------------------------------------------------------- commands

    async def _reply(self, update: Update, text: str, **kwargs: Any) -> None:
        if update.effective_message is not None:
            await update.effective_message.reply_text(text, **kwargs)

    async def help(self, update: Update, context: Context) -> None:
        await self._reply(update, HELP)

    async def positions(self, update: Update, context: Context) -> None:
        rows = await self.api.positions_view()
        await self._reply(update, format_positions(rows, await self.api.paused()))

    async def stats(self, update: Update, context: Context) -> None:
        from newstrader.autotrade.stats import compute_stats

        stats = await compute_stats(self.api.journal)
        await self._reply(update, format_stats(stats, await self.api.paused()))

    async def pause(self, update: Update, context: Context) -> None:
        await self.api.pause("telegram")
        log.warning("telegram_control", action="pause", chat_id=_chat(update))
        await self._reply(update, "⏸ paused: no new positions (exits and TP/SL stay)")

    async def resume(self, update: Update, context: Context) -> None:
        await self.api.resume()
        log.warning("telegram_control", action="resume", chat_id=_chat(update))
        await self._reply(update, "▶️ resumed")

    async def close(self, update: Update, context: Context) -> None:
        args = context.args or []
        if len(args) != 1 or not args[0].isalnum() or len(args[0]) > 32:
            await self._reply(update, "usage: /close COIN  (e.g. /close BTC)")
            return
        coin = args[0].upper()
        log.warning("telegram_control", action="close", coin=coin, chat_id=_chat(update))
        result = await self.api.close(coin)
        await self._reply(update, format_result(f"close {coin}", result))

    async def flatten(self, update: Update, context: Context) -> None:
        """Ask first: the keyboard's Confirm button carries a nonce valid for this chat only."""
        chat_id = _chat(update)
        now = time.monotonic()
        self._confirms = {n: v for n, v in self._confirms.items() if v[1] > now}
        nonce = secrets.token_urlsafe(12)
        self._confirms[nonce] = (chat_id, now + CONFIRM_TTL_S)
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("Flatten everything", callback_data=f"flatten:{nonce}"),
                    InlineKeyboardButton("Cancel", callback_data=f"cancel:{nonce}"),
                ]
            ]
        )
        await self._reply(
            update,
            f"Close every position on every venue and pause? Confirm within {CONFIRM_TTL_S:.0f} s.",
            reply_markup=keyboard,
        )

    async def confirm(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None or query.data is None:
            return
        action, _, nonce = query.data.partition(":")
        entry = self._confirms.pop(nonce, None)
        chat_id = _chat(update)
        if entry is None or entry[0] != chat_id or entry[1] < time.monotonic():
            await query.answer("expired: send /flatten again")
            await query.edit_message_text("Flatten: expired, nothing done.")
            return
        if action == "cancel":
            await query.answer("cancelled")
            await query.edit_message_text("Flatten cancelled, nothing done.")
            return
        await query.answer("flattening…")
        log.warning("telegram_control", action="flatten", chat_id=chat_id)
        result = await self.api.flatten()
        await query.edit_message_text(format_result("flatten", result))

    async def on_error(self, update: object, context: Context) -> None:
        error = context.error
        log.error(
            "telegram_handler_failed",
            chat_id=_chat(update) if isinstance(update, Update) else None,
            error=f"{type(error).__name__}: {error}",
        )
        if isinstance(update, Update) and update.effective_message is not None:
            try:
                await update.effective_message.reply_text(f"failed: {type(error).__name__}: {error}"[:500])
            except Exception as exc:  # the Bot API itself is failing; the log has it
                log.warning("telegram_error_reply_failed", error=repr(exc))


def _chat(update: Update) -> int:
    return update.effective_chat.id if update.effective_chat is not None else 0
