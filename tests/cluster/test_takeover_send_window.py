"""A takeover while the old owner is between its pre-send fencing check and its send.

The old owner (B) journals its order's intent, passes the check right before the send, and stops
there (a SIGSTOP, a GC pause, a VM stall). The server ends its silent lock session; the standby
(C) takes the account over, settles what B left (B's pending intent is in flight until its
validity window from the intent's journal time has passed, and the venue has not seen it), then
runs the signal itself and fills the target. B wakes and its order goes out: the venue refuses it,
since the window the order carries ends at B's intent time plus the venue's validity, not at the
send. Exactly one fill for the signal; the position is the target, not twice it. Real PostgreSQL
ownership, two journals on one database, the simulator; the pause is placed exactly by B's fence.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account
from tests.cluster.takeover import owner_and_standby

from newstrader.cluster.ownership import lock_key
from newstrader.domain import OutcomeStatus, Side, Signal
from newstrader.engine.ports import NotOwner
from newstrader.engine.reconcile import Reconciler
from newstrader.engine.settings import EngineSettings

VENUE = "acct-1"
PRE_SEND_CHECK = 2  # a leg's checks: before its intent is journaled, right before its send
# Short waits: the in-flight grace is ambiguous_grace_s + order_timeout_s; Hyperliquid's window
# (expiresAfter) is set to 1 s, Aster v3's is the venue's fixed 10 s nonce window.
ENGINE = EngineSettings(position_source="rest", ambiguous_grace_s=0.5, order_timeout_s=1.0)


def _account(sim: Any, kind: str) -> tuple[dict[str, Any], str]:
    """(venue settings, account address) of a funded account traded by an API-wallet signer."""
    user, signer = Account.create(), Account.create()
    sim.admin.create_account(user.address, usd=1_000_000, venue=kind, signers=[signer.address])
    config: dict[str, Any] = {
        "name": VENUE,
        "kind": kind,
        "url": sim.hl_url if kind == "hyperliquid" else sim.aster_url,
        "account": user.address,
        "secret": "0x" + bytes(signer.key).hex(),
    }
    if kind == "hyperliquid":
        config["order_validity_s"] = 1.0
    else:
        config["signer"] = signer.address
    return config, user.address


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["hyperliquid", "aster"])
async def test_an_owner_stopped_before_its_send_wakes_after_the_takeover_and_the_venue_refuses_it(
    sim: Any, pg_url: str, kind: str
) -> None:
    sim.admin.set_price("ETH", Decimal(2000))
    config, account = _account(sim, kind)
    signal = Signal(id=f"s-window-{kind}", news_id=f"n-window-{kind}@{VENUE}", coin="ETH", side=Side.LONG)

    def position() -> Decimal:
        return Decimal(sim.admin.position(kind, account, "ETH"))

    def fills() -> int:
        return int(sim.admin.state()["venues"][kind]["accounts"][account.lower()]["fills"])

    takeover = owner_and_standby(
        pg_url,
        lock_key(kind, account),
        config,
        hold_after=PRE_SEND_CHECK,
        engine=ENGINE,
        notional=Decimal(1000),
    )
    async with takeover as rig:
        journals, venues, executors, fence_b = rig.journals, rig.venues, rig.executors, rig.fence_b
        run_b = asyncio.create_task(executors["B"].execute(signal, venues=[VENUE]))
        await asyncio.wait_for(fence_b.held.wait(), 30)  # B journaled its intent, passed the pre-send check
        [b_intent] = await journals["C"].pending_intents()
        assert position() == 0 and fills() == 0

        # B's session ends; C takes the account and settles it as the node does on acquiring it
        # (B's intent stays in flight, its coin held, until its window has passed), then runs the
        # signal: the venue never saw B's order, so C sends the target itself.
        rig.end_b_session()
        assert await rig.owners["C"].wait_owned(VENUE, 10)
        settle = Reconciler({VENUE: venues["C"]}, journals["C"], state=executors["C"].state, config=ENGINE)
        await settle.resolve_pending()
        [by_c] = await executors["C"].execute(signal, venues=[VENUE])
        assert by_c.status is OutcomeStatus.OK and len(by_c.orders) == 1
        target = position()
        assert target > 0 and fills() == 1

        # B wakes past its check and sends: the venue refuses the order (its window ended at B's
        # intent time plus the venue's validity). B reads the exchange at the target, then finds
        # at its outcome check that the account is no longer its own.
        fence_b.resume.set()
        with pytest.raises(NotOwner):
            await asyncio.wait_for(run_b, 30)

        assert position() == target and fills() == 1  # one fill for the signal, not doubled
        assert await venues["C"].order_status(b_intent.client_id, "ETH") is None  # never executed
        orders = sorted(
            (o for o in await journals["C"].recent_orders(10) if o["signal_id"] == signal.id),
            key=lambda o: o["id"],
        )
        assert [(o["instance"], o["client_id"] == b_intent.client_id, o["status"]) for o in orders] == [
            ("bot-B", True, "failed"),
            ("bot-C", False, "filled"),
        ]
        outcomes = [o for o in await journals["C"].recent_outcomes(10) if o["signal_id"] == signal.id]
        assert len(outcomes) == 1 and outcomes[0]["status"] == "ok"
