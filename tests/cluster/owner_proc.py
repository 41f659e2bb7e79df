"""Helper process for the ownership tests: claims accounts and "sends" while it owns them.

Not a test module. Usage: python owner_proc.py DSN INSTANCE VENUE[,VENUE...]
Prints ``owned VENUE``, ``sent VENUE <unix time the check started>`` after every passed fencing
check (every 50 ms), and ``fenced VENUE`` when a check says the account moved.
"""

from __future__ import annotations

import asyncio
import sys
import time

from newstrader.cluster.ownership import AccountOwnership, lock_key
from newstrader.engine.ports import NotOwner


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(dsn: str, instance: str, venues: list[str]) -> None:
    async def acquired(venue: str) -> None:
        say(f"owned {venue}")

    ownership = AccountOwnership(
        dsn,
        instance,
        {venue: lock_key("sim", venue) for venue in venues},
        heartbeat_s=0.3,
        session_timeout_s=1.5,
        on_acquired=acquired,
    )
    await ownership.start()
    say("ready")
    fenced: set[str] = set()
    while True:
        for venue in venues:
            if ownership.acquired_at(venue) is None:  # never owned: a standby sends nothing
                continue
            # Stamped when the check starts: a SIGSTOP after a check that passed (while still the
            # owner) must not read as a send decided after the takeover.
            checked_at = time.time()
            try:
                await ownership.ensure_owner(venue)
            except NotOwner:
                if venue not in fenced:
                    fenced.add(venue)
                    say(f"fenced {venue}")
                continue
            say(f"sent {venue} {checked_at:.6f}")
        await asyncio.sleep(0.05)  # the pace of the pretend order flow


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3].split(",")))
