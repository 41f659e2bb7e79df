"""The `signal` and `replay` verbs: thin shells over the parser, the pipeline and the replay source.

Both work without any config file (default rules, the default market list); `replay` with
`--config` sends each item through a real bot (journal, filters, engine).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from newstrader.domain import NewsItem
from newstrader.news.parser import Parser, ParseResult, RulesError, load_rules
from newstrader.news.pipeline import NewsOutcome, PipelineSettings

_DEFAULT_MIN_CONFIDENCE = PipelineSettings().min_confidence


def decide(parsed: ParseResult, min_confidence: float = _DEFAULT_MIN_CONFIDENCE) -> dict[str, Any]:
    """The stateless part of the pipeline's decision, as the JSON the `signal` verb prints."""
    if parsed.signal is not None and parsed.confidence < min_confidence:
        return {
            "signal": None,
            "reason": f"low confidence: {parsed.confidence:.2f} < min_confidence {min_confidence:g}",
            "why": list(parsed.why),
        }
    return parsed.as_dict()


def _parser(rules: Path | None) -> Parser:
    try:
        return Parser(load_rules(rules))
    except RulesError as exc:
        print(f"rules error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def signal_command(text: str, *, as_json: bool, rules: Path | None = None) -> dict[str, Any]:
    """Parse one headline and print the parse and the decision; returns the decision."""
    parser = _parser(rules)
    parsed = parser.parse_text(text)
    decision = decide(parsed)
    if as_json:
        print(json.dumps(decision))
        return decision
    from rich.console import Console
    from rich.table import Table

    table = Table(title="newstrader signal", show_header=False)
    table.add_row("headline", text)
    table.add_row("coin", parsed.coin or "-")
    table.add_row("side", parsed.side.value if parsed.side else "-")
    table.add_row("confidence", f"{parsed.confidence:.2f}")
    table.add_row("terms", ", ".join(parsed.terms) or "-")
    table.add_row("why", "\n".join(parsed.why) or "-")
    table.add_row("parse", parsed.reason)
    verdict = "trade" if decision["signal"] else "no trade"
    table.add_row("decision", f"{verdict}: {decision['reason']}")
    Console().print(table)
    return decision


def _row(offset: float, item: NewsItem, coin: str | None, side: str | None, conf: float, reason: str) -> str:
    direction = f"{side.upper():5} {coin}" if side and coin else "-"
    return f"{offset:7.1f}s  {direction:16} {conf:4.2f}  {reason[:48]:48}  {item.title[:90]}"


async def _replay_standalone(file: Path, speed: float, rules: Path | None, as_json: bool) -> int:
    from newstrader.news.sources.replay import ReplaySource

    parser = _parser(rules)
    counts = {"items": 0, "signals": 0}
    source: ReplaySource | None = None

    async def submit(item: NewsItem) -> None:
        assert source is not None
        parsed = parser.parse(item)
        decision = decide(parsed)
        counts["items"] += 1
        counts["signals"] += decision["signal"] is not None
        offset = source.lines[counts["items"] - 1].offset_s  # the file's own time
        if as_json:
            print(json.dumps({"t": round(offset, 3), "title": item.title, **decision}), flush=True)
        else:
            signal = decision["signal"]
            print(
                _row(
                    offset,
                    item,
                    signal["coin"] if signal else parsed.coin,
                    signal["side"] if signal else None,
                    parsed.confidence,
                    decision["reason"],
                ),
                flush=True,
            )

    source = ReplaySource(file, submit, speed=speed)
    await source.start()
    await source.wait()
    if not as_json:
        print(f"replayed {counts['items']} items: {counts['signals']} signals")
    return 0


async def _replay_with_bot(file: Path, speed: float, config: Path, as_json: bool, live: bool) -> int:
    from newstrader.bot import Bot
    from newstrader.config import ConfigError, load_settings
    from newstrader.news.sources.replay import ReplaySource

    try:
        settings = load_settings(config)
        bot = Bot(settings, serve_web=False, live=live)  # mainnet without --live stops here
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    await bot.start()
    counts = {"items": 0, "traded": 0}
    try:

        async def submit(item: NewsItem) -> None:
            decision = await bot.submit_news(item)
            counts["items"] += 1
            counts["traded"] += decision.outcome is NewsOutcome.TRADED
            signal = decision.signal
            if as_json:
                payload = {
                    "news_id": decision.news_id,
                    "title": item.title,
                    "outcome": decision.outcome.value,
                    "signal": None
                    if signal is None
                    else {"coin": signal.coin, "side": signal.side.value, "why": list(signal.why)},
                    "reason": decision.reason,
                }
                print(json.dumps(payload), flush=True)
            else:
                direction = f"{signal.side.value.upper():5} {signal.coin}" if signal else "-"
                print(f"{direction:16} {decision.reason[:70]:70}  {item.title[:80]}", flush=True)

        source = ReplaySource(file, submit, speed=speed)
        await source.start()
        await source.wait()
    finally:
        await bot.stop()
    if not as_json:
        print(f"replayed {counts['items']} items through the bot")
    return 0


def replay_command(
    file: Path,
    *,
    speed: float,
    config: Path | None,
    as_json: bool = False,
    rules: Path | None = None,
    live: bool = False,
) -> int:
    """Run a JSONL file through the parser (standalone) or, with a config, through a bot."""
    from newstrader.news.sources.replay import ReplayFileError, read_replay_file

    if speed < 0:
        print("replay: --speed must be ≥ 0 (0 = as fast as possible)", file=sys.stderr)
        return 2
    try:
        read_replay_file(file)
    except ReplayFileError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    if config is not None:
        return asyncio.run(_replay_with_bot(file, speed, config, as_json, live))
    return asyncio.run(_replay_standalone(file, speed, rules, as_json))
