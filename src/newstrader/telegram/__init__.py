"""Alerts to, and control from, a phone: the Telegram bot (python-telegram-bot).

- It sees the bot only through `newstrader.botapi.BotApi`, the seam the web app uses.
- `alerts`: bus events and journal rows → short alert lines, merged per signal.
- `outbox`: one bounded, coalescing, rate-limited sender per chat, off the trading path.
- `commands`: /positions, /stats, /pause, /resume, /close COIN, /flatten (with confirmation),
  obeyed only from the configured chats.
- `service`: `TelegramService`, which the Bot starts when `[telegram]` is configured.
"""
