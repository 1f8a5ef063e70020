"""Benchmarks and load tools: each prints its figures with the data size it ran on."""

from pathlib import Path

# The checkout's root (manage.py, Procfile): the tools that start the project's own processes
# run them from there.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
