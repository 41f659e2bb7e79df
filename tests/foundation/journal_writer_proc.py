"""Helper process for the kill test: writes to a journal forever, printing each id once committed.

Not a test module. Usage: python journal_writer_proc.py SQLALCHEMY_URL
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

from newstrader.domain import NewsItem, OrderRequest
from newstrader.journal import Journal

WRITERS = 8


async def writer(journal: Journal, lane: int) -> None:
    """Even lanes await each write; odd lanes write as the news pipeline does: the news item
    only queued (never awaited), then the order intent awaited, which must make both durable."""
    n = 0
    while True:
        news_id = f"n-{lane}-{n}"
        item = NewsItem(id=news_id, title=f"headline {lane} {n}")
        if lane % 2:
            journal.queue_news(item, "received")
        else:
            await journal.record_news(item, "received")
        client_id = f"c-{lane}-{n}"
        req = OrderRequest(coin="ETH", is_buy=n % 2 == 0, size=Decimal("0.0123"), client_id=client_id)
        await journal.record_intent(news_id, "sim", "ETH", "open", client_id, req)
        # Printed only after the intent's await returned: these are the writes we claim are durable.
        sys.stdout.write(f"{news_id} {client_id}\n")
        sys.stdout.flush()
        n += 1


async def main(url: str) -> None:
    journal = await Journal.open(url)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.gather(*(writer(journal, lane) for lane in range(WRITERS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
