"""One bot process with every kind of configured secret, for the security tests.

The bot is the engine harness's (`tests/harness/bots.py`): `newstrader run` against the
simulator process, secrets only in the environment. On top of its Hyperliquid key and Aster
API-wallet key it gets a third venue on Aster's legacy HMAC scheme (an API key in the config,
the HMAC secret from `NEWSTRADER_ASTERHMAC_SECRET`), and its `[web]` section names no host,
so the default bind address is the one in use.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from tests.harness.bots import World


@dataclass
class SecretWorld(World):
    """The harness's world plus an Aster legacy-HMAC account; the config omits `[web] host`."""

    hmac_user: str = field(default_factory=lambda: str(Account.create().address))
    hmac_api_key: str = field(default_factory=lambda: "apikey" + secrets.token_hex(16))
    hmac_secret: str = field(default_factory=lambda: "hmacsecret" + secrets.token_hex(24))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.sim.admin.create_account(
            self.hmac_user, usd=1_000_000, venue="aster", api_key=self.hmac_api_key, secret=self.hmac_secret
        )

    def config(self, **kwargs: Any) -> str:
        text: str = super().config(**kwargs)
        assert 'host = "127.0.0.1"\n' in text
        text = text.replace('host = "127.0.0.1"\n', "")  # the default bind address, untold
        hmac_venue = f"""
[[venues]]
name = "asterhmac"
kind = "aster"
network = "sim"
auth = "hmac"
url = "{self.sim.aster_url}"
account = "{self.hmac_user}"
api_key = "{self.hmac_api_key}"
"""
        return text.replace("\n[news]", hmac_venue + "\n[news]", 1)

    def secret_values(self, token: str) -> dict[str, str]:
        """Every configured secret by name (the HMAC API key is an identifier, sent as a header)."""
        return {
            "hyperliquid key": self.keys.hl_key,
            "aster signer key": self.keys.aster_signer_key,
            "aster hmac secret": self.hmac_secret,
            "web token": token,
        }


@pytest.fixture(scope="module")
def secured(engine_sim: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A bot with all the secrets, serving on the default host; stopped after the module."""
    world = SecretWorld(sim=engine_sim, workdir=tmp_path_factory.mktemp("secured"))
    env = {"NEWSTRADER_ASTERHMAC_SECRET": world.hmac_secret}
    world.start_bot(env=env)
    yield world
    for bot in world.bots:
        bot.stop()
