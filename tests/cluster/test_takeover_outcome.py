"""A takeover while the old owner is between its last fencing check and its outcome write.

The e2e test's SIGSTOP can land there: the paused owner (B) had filled the order and passed the
check before the outcome write; the standby (C) took the account, found no outcome journaled,
ran the signal again (the exchange already held the target: no order), and journaled its
outcome; B, woken, wrote a second one. Here the pause is placed exactly (a fence that holds B
after its outcome check) against real PostgreSQL ownership, two journals and the simulator.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from eth_account import Account
from tests.cluster.takeover import owner_and_standby

from newstrader.cluster.ownership import lock_key
from newstrader.domain import OutcomeStatus, Side, Signal
from newstrader.engine.settings import EngineSettings

VENUE = "as-5"
CHECKS_PER_ONE_LEG = 3  # before the intent is journaled, before the send, before the outcome


async def test_a_woken_owner_journals_no_second_outcome_beside_the_new_owners(sim: Any, pg_url: str) -> None:
    sim.admin.set_price("ETH", Decimal(2000))
    user, signer = Account.create(), Account.create()
    sim.admin.create_account(user.address, usd=1_000_000, venue="aster", signers=[signer.address])
    config = {
        "name": VENUE,
        "kind": "aster",
        "url": sim.aster_url,
        "account": user.address,
        "signer": signer.address,
        "secret": "0x" + bytes(signer.key).hex(),
    }
    signal = Signal(id="s-taproot", news_id="n-taproot@as-5", coin="ETH", side=Side.LONG)
    lock = lock_key("aster", user.address)
    takeover = owner_and_standby(
        pg_url, lock, config, hold_after=CHECKS_PER_ONE_LEG, engine=EngineSettings(), notional=Decimal(100)
    )
    async with takeover as rig:
        journals, executors, fence_b = rig.journals, rig.executors, rig.fence_b
        run_b = asyncio.create_task(executors["B"].execute(signal, venues=[VENUE]))
        await asyncio.wait_for(fence_b.held.wait(), 30)  # B filled and passed its outcome check
        target = Decimal(sim.admin.position("aster", user.address, "ETH"))
        assert target > 0

        # B's session ends (as the server ends a paused owner's silent session); C takes over.
        rig.end_b_session()
        assert await rig.owners["C"].wait_owned(VENUE, 10)
        # The new owner's lane: nothing journaled for (signal, account) yet, so it runs the signal.
        assert await journals["C"].venue_outcome(signal.id, VENUE) is None
        [by_c] = await executors["C"].execute(signal, venues=[VENUE])
        assert by_c.status is OutcomeStatus.OK and by_c.orders == []  # the exchange held the target

        fence_b.resume.set()  # B wakes past its check and writes its outcome
        [by_b] = await asyncio.wait_for(run_b, 30)
        assert len(by_b.orders) == 1

        # One outcome for the signal on the account, the new owner's; one order, one fill, not doubled.
        outcomes = [o for o in await journals["C"].recent_outcomes(10) if o["signal_id"] == signal.id]
        assert [(o["venue"], o["orders"]) for o in outcomes] == [(VENUE, [])]
        assert Decimal(sim.admin.position("aster", user.address, "ETH")) == target
        orders = [o for o in await journals["C"].recent_orders(10) if o["signal_id"] == signal.id]
        assert [(o["instance"], o["status"]) for o in orders] == [("bot-B", "filled")]
