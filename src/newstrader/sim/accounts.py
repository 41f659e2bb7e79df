"""Fresh keys for the simulator's two venues: what the demo, `init --sim` and the tests fund.

One Hyperliquid account, and an Aster v3 user with the API wallet (signer) it approves; the
bot signs Aster orders with the signer's key, never the user's.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account


@dataclass(frozen=True, slots=True)
class SimAccounts:
    """Fresh keys for one run; the private keys live only in the process that made them."""

    hl_key: str
    hl_address: str
    aster_user_key: str
    aster_user: str
    aster_signer_key: str
    aster_signer: str

    @classmethod
    def fresh(cls) -> SimAccounts:
        hl, user, signer = Account.create(), Account.create(), Account.create()
        return cls(
            hl_key="0x" + bytes(hl.key).hex(),
            hl_address=str(hl.address),
            aster_user_key="0x" + bytes(user.key).hex(),
            aster_user=str(user.address),
            aster_signer_key="0x" + bytes(signer.key).hex(),
            aster_signer=str(signer.address),
        )

    def address(self, venue: str) -> str:
        """The account a venue kind ("hyperliquid" or "aster") trades on."""
        return self.hl_address if venue == "hyperliquid" else self.aster_user
