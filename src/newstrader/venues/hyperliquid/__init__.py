"""Hyperliquid perpetuals adapter: signing, HTTP transport and the Venue implementation."""
