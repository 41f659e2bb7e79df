"""Operator operations (close, flatten) journaled while they run, so a restart finishes them.

A signal is resumed from its news item; an operator's close or flatten has no such record,
so the engine keeps one: the operation's id and what it was asked, written before its first
order and removed when it finishes. The id seeds the client ids of its orders, so the run
after a crash finds the legs already sent and resolves them instead of sending them again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from newstrader.engine.ports import ControlStore

OPERATIONS_KEY = "operations"  # journal control key: {op_id: {"kind": ..., ...}}


def new_operation_id(kind: str) -> str:
    """A fresh operation id (random, never the clock: two operations in one tick stay distinct)."""
    return f"{kind}-{uuid.uuid4().hex[:16]}"


class OperationLog:
    """The unfinished operator operations, in one journal control key."""

    def __init__(self, store: ControlStore) -> None:
        self.store = store
        self._lock = asyncio.Lock()  # read-modify-write of one key

    async def unfinished(self) -> dict[str, dict[str, Any]]:
        value = await self.store.get_control(OPERATIONS_KEY, {})
        return dict(value) if isinstance(value, dict) else {}

    async def begin(self, op_id: str, record: dict[str, Any]) -> None:
        async with self._lock:
            ops = await self.unfinished()
            ops[op_id] = record
            await self.store.set_control(OPERATIONS_KEY, ops)

    async def finish(self, op_id: str) -> None:
        async with self._lock:
            ops = await self.unfinished()
            if ops.pop(op_id, None) is not None:
                await self.store.set_control(OPERATIONS_KEY, ops)

    @asynccontextmanager
    async def running(self, op_id: str, record: dict[str, Any]) -> AsyncIterator[None]:
        """Journal the operation for the block; a cancelled block (a stop) stays journaled."""
        await self.begin(op_id, record)
        try:
            yield
        except asyncio.CancelledError:
            raise
        except BaseException:
            await self.finish(op_id)
            raise
        await self.finish(op_id)
