"""Prices: source quotes, the demo market that simulates them, the index guard and the mark."""
