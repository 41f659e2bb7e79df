"""Aster (asterdex) USDT-margined perpetuals adapter: v3 EIP-712 and legacy HMAC auth."""
