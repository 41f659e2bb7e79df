"""`newstrader cluster`: who owns each account and who stands by, read from the server's locks."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from newstrader.cluster.ownership import OwnershipError, cluster_view, libpq_dsn, lock_key
from newstrader.config import ConfigError, Settings, load_settings


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One account lock: its venue name, its owner (or None) and its standbys, in waiting order."""

    venue: str
    owner: str | None
    standby: list[str] = field(default_factory=list)


async def accounts(settings: Settings) -> tuple[list[AccountRow], dict[str, list[str]]]:
    """(every account lock seen or configured, instance → owned venues)."""
    dsn = libpq_dsn(settings.journal.url)
    view = await cluster_view(dsn)
    names = {lock_key(v.kind, v.account or v.name): v.name for v in settings.venues}
    rows: list[AccountRow] = []
    for key in [*names, *(k for k in view if k not in names)]:
        sessions = view.get(key, [])
        venue = names.get(key) or (sessions[0].venue if sessions else str(key))
        owner = next((s.instance for s in sessions if s.granted), None)
        rows.append(AccountRow(venue, owner, [s.instance for s in sessions if not s.granted]))
    instances: dict[str, list[str]] = {}
    for sessions in view.values():
        for s in sessions:
            owned = instances.setdefault(s.instance, [])
            if s.granted:
                owned.append(s.venue)
    return rows, {name: sorted(owned) for name, owned in sorted(instances.items())}


def run_cluster(config_path: Path, as_json: bool) -> int:
    """Print the cluster; the exit code (2 for a config that is not a shared journal)."""
    try:
        settings = load_settings(config_path)
        rows, instances = asyncio.run(accounts(settings))
    except (ConfigError, OwnershipError) as exc:
        print(f"newstrader cluster: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps({"accounts": [asdict(r) for r in rows], "instances": instances}))
        return 0
    print("instances:")
    for name, owned in instances.items():
        print(f"  {name}: owns {', '.join(owned) or 'nothing (standby)'}")
    print("accounts:")
    for row in rows:
        standby = ", ".join(row.standby) or "none"
        print(f"  {row.venue}: owner {row.owner or 'none'}; standby {standby}")
    return 0
