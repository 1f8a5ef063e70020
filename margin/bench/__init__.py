"""Benchmarks and load tools: each prints its figures with the data size it ran on."""
