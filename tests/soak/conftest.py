"""The soak's harness: the bench script as a module, over the engine tests' bot-process harness.

`engine_sim` / `world` are the root conftest's (the worker's simulator at the fixed marks; fresh
funded keys; bots started on them stop with the test). `soak` is `bench/soak.py` as a module,
which drives `tests/harness/bots.py` itself.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def soak() -> Any:
    name = "newstrader_bench_soak"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "soak.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up while being built
        spec.loader.exec_module(module)
    return module
