"""The engine's end-to-end fixtures: the bot as a real process against the simulator process.

The harness itself (World, BotProcess, MARKS, ...) is `tests/harness/bots.py`; its names are
re-exported here for the tests that import them from this module.

A bot process takes seconds to start on a loaded 2-core box, so a module shares one bot per mode
(`shared_worlds`); tests on a shared bot each use their own coin, and every `World` has its own
fresh accounts. The simulator is the worker's one process (`engine_sim`, tests/conftest.py),
reset and set to the fixed marks at the start of each module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.harness.bots import (
    BOT_START_DEADLINE_S,
    MARKS,
    MODES,
    NOTIONAL_USD,
    VENUES,
    BotProcess,
    World,
    target_size,
    wait_ready,
    wait_until,
)

__all__ = [
    "BOT_START_DEADLINE_S",
    "MARKS",
    "MODES",
    "NOTIONAL_USD",
    "VENUES",
    "BotProcess",
    "World",
    "target_size",
    "wait_ready",
    "wait_until",
]


@pytest.fixture(scope="module")
def shared_worlds(engine_sim: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, World]]:
    """One bot per mode for the whole module, both started at once (their imports overlap)."""
    worlds = {
        mode: World(sim=engine_sim, workdir=tmp_path_factory.mktemp(f"shared-{mode}")) for mode in MODES
    }
    try:
        for mode, w in worlds.items():
            w.mode = mode
            w.start_bot(mode=mode, max_signal_age_s=8, wait=False)
        for w in worlds.values():
            wait_ready(w.bot)
        yield worlds
    finally:
        for w in worlds.values():
            for bot in w.bots:
                bot.stop()


@pytest.fixture(params=MODES)
def on_shared(shared_worlds: dict[str, World], request: Any) -> Iterator[World]:
    """The shared bot of one mode (tests use a coin of their own); faults and fill settings reset after."""
    world = shared_worlds[request.param]
    yield world
    world.sim.admin.clear_faults()
    world.sim.admin.settings(partial_fill_probability=0.0)
