"""A running bot process for the API fuzzing: the engine harness's bot (tests/harness/bots.py)
against the worker's simulator (`engine_sim`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.harness.bots import World


@pytest.fixture(scope="module")
def fuzzed(engine_sim: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A world (fresh funded keys) with one bot process serving its API; stopped after the module."""
    world = World(sim=engine_sim, workdir=tmp_path_factory.mktemp("fuzzed"))
    world.start_bot()
    yield world
    for bot in world.bots:
        bot.stop()
