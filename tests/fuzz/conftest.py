"""A running bot process for the API fuzzing: the engine harness's bot against its simulator."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(path: Path, name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up while being built
        spec.loader.exec_module(module)
    return module


harness = _load(ROOT / "tests" / "engine" / "conftest.py", "newstrader_engine_harness")
engine_sim = harness.engine_sim


@pytest.fixture(scope="module")
def fuzzed(engine_sim: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A world (fresh funded keys) with one bot process serving its API; stopped after the module."""
    world = harness.World(sim=engine_sim, workdir=tmp_path_factory.mktemp("fuzzed"))
    world.start_bot()
    yield world
    for bot in world.bots:
        bot.stop()
