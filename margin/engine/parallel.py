"""Running independent chunks of NumPy work on every core.

NumPy releases the GIL inside its loops, so threads over chunks of a book add up across cores;
the chunks write disjoint slices of preallocated arrays, so results do not depend on how many
threads run them.
"""

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor


def default_workers() -> int:
    return os.cpu_count() or 1


def run_tasks(tasks: Sequence[Callable[[], None]], workers: int | None = None) -> None:
    """Run every task, on `workers` threads (default: one per core); inline when one would do."""
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            task()
        return
    with ThreadPoolExecutor(min(workers, len(tasks))) as pool:
        for done in [pool.submit(task) for task in tasks]:
            done.result()
