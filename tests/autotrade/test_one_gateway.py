"""Issue 14, Must show 5: no module but the engine sends an order.

Two checks. A static one over the source tree: outside `engine/` (and the venue adapters that
implement these calls, and the simulator's own exchange), no code calls a venue's order method;
the auto trader calls them on its `gateway` (the engine) only. And a running one: every venue of
a real bot is wrapped in a recorder that notes which module asked it to place or cancel, then
the bot trades, protects, closes one coin, time-exits and flattens; every caller is the engine.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from newstrader.autotrade.trader import CHECK_INTERVAL_ENV

VENUES = ("hyperliquid", "aster")
Rig = Any  # tests/autotrade/conftest.py: the `rig` fixture
# The venue's order methods, and the engine's own senders that take an order from a caller.
ORDER_METHODS = frozenset(
    {
        "place_order",
        "prepare_order",
        "send_order",
        "place_triggers",
        "cancel_triggers",
        "cancel_by_client_id",
        "place_resting",
        "cancel_order",
    }
)
# What a bot sends: an order as `prepare_order` (while its intent is written) then `send_order`.
RUNTIME_METHODS = frozenset({"place_order", "send_order", "place_triggers", "cancel_triggers"})
SENT_BY_A_BOT = frozenset({"send_order", "place_triggers", "cancel_triggers"})
SRC = Path(__file__).resolve().parents[2] / "src" / "newstrader"
# Where those names may be called on a venue: the engine sends; adapters implement; the
# simulator is the exchange itself.
ALLOWED = ("engine", "venues", "sim")


def _receiver(node: ast.Attribute) -> str:
    return ast.unparse(node.value)


def order_calls_outside_the_engine(root: Path = SRC) -> list[str]:
    """`path:line receiver.method` for every order call outside the engine not made on `gateway`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in ALLOWED:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr in ORDER_METHODS and not _receiver(node.func).endswith("gateway"):
                found.append(f"{relative}:{node.lineno} {_receiver(node.func)}.{node.func.attr}")
    return found


def test_no_module_outside_the_engine_calls_a_venue_order_method() -> None:
    assert order_calls_outside_the_engine() == []


def test_the_static_check_sees_a_direct_send(tmp_path: Path) -> None:
    """The check above is not vacuous: a stray `venue.place_order` in a module is reported."""
    (tmp_path / "autotrade").mkdir()
    (tmp_path / "autotrade" / "stray.py").write_text(
        "async def f(venue, req):\n    await venue.place_order(req)\n"
    )
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "ok.py").write_text("async def f(venue, req):\n    await venue.place_order(req)\n")
    assert order_calls_outside_the_engine(tmp_path) == ["autotrade/stray.py:2 venue.place_order"]


class RecordingVenue:
    """A venue whose order methods note the module that called them (past the adapter's own frames)."""

    def __init__(self, inner: Any, callers: list[tuple[str, str]]) -> None:
        self._inner = inner
        self._callers = callers

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name not in RUNTIME_METHODS:
            return value
        return self._recorded(name, value)

    def _recorded(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            caller = inspect.stack()[1]
            self._callers.append((name, str(caller.frame.f_globals.get("__name__"))))
            return await method(*args, **kwargs)

        return call


async def test_every_order_of_a_running_bot_comes_from_the_engine(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CHECK_INTERVAL_ENV, "0.3")
    bot = await rig.start_bot(max_hold_s=2)
    callers: list[tuple[str, str]] = []
    assert bot.executor is not None
    for name in VENUES:
        wrapped = RecordingVenue(bot.venues[name], callers)
        bot.venues[name] = wrapped  # the auto trader's view (the same dict)
        bot.executor.venues[name] = wrapped
    # A signal (orders + TP/SL placement), an operator close (cancel + reduce-only order),
    # a time exit by the monitor, and a flatten.
    await rig.news(bot, "ETH", "long")
    await rig.news(bot, "SOL", "short")
    await rig.wait_for(
        lambda: all(rig.position(v, "ETH") > 0 and len(rig.triggers(v, "ETH")) == 2 for v in VENUES),
        timeout=30,
    )
    await bot.close("ETH")
    assert rig.positions("ETH") == {v: Decimal(0) for v in VENUES}
    await rig.wait_for(lambda: all(rig.position(v, "SOL") == 0 for v in VENUES), timeout=15)
    await rig.news(bot, "BTC", "long")
    result = await bot.flatten()
    assert result["flat"] is True, result
    kinds = {name for name, _ in callers}
    assert kinds == SENT_BY_A_BOT, callers
    assert {module for _, module in callers} == {"newstrader.engine.executor"}, callers
