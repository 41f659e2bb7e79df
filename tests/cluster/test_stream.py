"""The news stream against a real nats-server: server-side dedupe by news id, ack after
handling, redelivery to the next consumer of the account's durable, and the ingest verb."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from newstrader.cluster.stream import NewsStream, StreamError, item_from_json, item_to_json
from newstrader.domain import NewsItem, Side


def _stream(nats_server: Any, ack_wait_s: float = 1.0) -> NewsStream:
    tag = uuid.uuid4().hex[:8]
    return NewsStream(nats_server.url, stream=f"S{tag}", subject=f"s{tag}.news", ack_wait_s=ack_wait_s)


def test_wire_form_round_trips_and_bad_messages_are_named() -> None:
    item = NewsItem(id="n-1", title="ETH up", source="wire", coin="ETH", side=Side.LONG, url="https://x.test")
    assert item_from_json(item_to_json(item)) == item
    with pytest.raises(StreamError, match="not a news item"):
        item_from_json(b'{"title": "no id"}')


async def test_same_news_id_is_stored_once(nats_server: Any) -> None:
    stream = _stream(nats_server)
    await stream.connect()
    try:
        first = await stream.publish(NewsItem(id="n-1", title="a"))
        again = await stream.publish(NewsItem(id="n-1", title="a (resent)"))
        other = await stream.publish(NewsItem(id="n-2", title="b"))
        assert (first.duplicate, again.duplicate, other.duplicate) == (False, True, False)
        assert again.seq == first.seq
        assert (await stream.js.stream_info(stream.stream)).state.messages == 2
    finally:
        await stream.close()


async def test_unacked_item_comes_again_to_the_next_owner(nats_server: Any) -> None:
    """A handler that fails (an owner dying mid-item) leaves the item unacked: the account's
    next consumer gets it again after ack_wait; handled items are acked and never come back."""
    stream = _stream(nats_server, ack_wait_s=1.0)
    await stream.connect()
    try:
        for k in range(3):
            await stream.publish(NewsItem(id=f"n-{k}", title=f"t{k}"))
        first_seen: list[str] = []
        stop = asyncio.Event()

        async def dies_on_second(item: NewsItem) -> None:
            first_seen.append(item.id)
            if item.id == "n-1":
                raise RuntimeError("owner died")

        with pytest.raises(RuntimeError, match="owner died"):
            await stream.consume("acct-a", dies_on_second, stop)
        assert first_seen == ["n-0", "n-1"]
        assert await stream.lag("acct-a") == 2  # n-1 delivered but unacked, n-2 waiting

        second_seen: list[str] = []

        async def handles(item: NewsItem) -> None:
            second_seen.append(item.id)
            if len(second_seen) == 2:
                stop.set()

        await asyncio.wait_for(stream.consume("acct-a", handles, stop), 20)
        assert sorted(second_seen) == ["n-1", "n-2"]
        deadline = time.monotonic() + 10
        while await stream.lag("acct-a") != 0:
            assert time.monotonic() < deadline, "acks not seen by the server"
            await asyncio.sleep(0.05)  # poll interval
        assert await stream.lag("acct-b") is None  # another account's consumer is its own
    finally:
        await stream.close()


def _cli(verb: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSTRADER_")}
    return subprocess.run(
        [sys.executable, "-m", "newstrader.cli", verb, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_ingest_needs_a_bus_url_and_says_which_key(tmp_path: Path) -> None:
    config = tmp_path / "ingest.toml"
    config.write_text("[news]\nmin_confidence = 0\n")
    result = _cli("ingest", config)
    assert result.returncode == 2
    assert "bus.url" in result.stderr and "Traceback" not in result.stderr


def test_cluster_verb_needs_a_postgresql_journal(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(f'[journal]\nurl = "sqlite:///{tmp_path / "j.db"}"\n')
    result = _cli("cluster", config)
    assert result.returncode == 2
    assert "PostgreSQL" in result.stderr and "Traceback" not in result.stderr
