"""The soak's harness: the engine tests' bot-process World and the bench script, loaded by path.

`engine_sim` / `world` are the engine harness's own fixtures (a simulator process of the
module's own with fixed marks; fresh funded keys; bots started on them stop with the test).
`soak` is `bench/soak.py` as a module.
"""

from __future__ import annotations

import importlib.util
import sys
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


# The same module object bench/soak.py uses, so both see one harness.
harness = _load(ROOT / "tests" / "engine" / "conftest.py", "newstrader_engine_harness")
engine_sim = harness.engine_sim
world = harness.world


@pytest.fixture(scope="session")
def soak() -> Any:
    return _load(ROOT / "bench" / "soak.py", "newstrader_bench_soak")
