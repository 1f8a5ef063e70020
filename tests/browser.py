"""Real headless Chromium for the journey tests (Debian's chromium; no browser download)."""

import os
import shutil
from pathlib import Path

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")


def screenshots_dir(*, default: Path) -> Path:
    """Where a journey saves its screenshots: `default` (a temporary folder) unless
    SCREENSHOTS_DIR names one, as `make screenshots` does for the README's static/screenshots/.
    A plain `make test` must leave the checkout as it found it."""
    chosen = os.environ.get("SCREENSHOTS_DIR")
    return Path(chosen) if chosen else default
