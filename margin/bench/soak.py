"""`make soak`: worker + beat on the embedded broker (SQLite, `embedded://`) at a fast tick rate,
under the runner, for a fixed time; prints its figures and exits 1 on any crash.

The market ticks every 0.25 s, the revaluation and the heartbeat every second: twenty times the
demo's message rate through the broker folders, the traffic that killed kombu's filesystem
transport after ~17 minutes at the demo's rate. Its own folder (DJANGO_VAR_DIR) and database, so
it runs beside `make run`.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from margin.bench import PROJECT_ROOT

FAST = {
    "MARKET_TICK_INTERVAL_S": "0.25",
    "REVALUATION_INTERVAL_S": "1",
    "HEARTBEAT_INTERVAL_S": "1",
    "PRUNE_INTERVAL_S": "30",
}
# Log lines that mean something went wrong in a process.
TROUBLE = re.compile(r"Traceback|JSONDecodeError| ERROR | CRITICAL |exited: .*not expected")


def soak_environment(var: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_KEY_PREFIX")
    }
    return {**env, **FAST, "DJANGO_VAR_DIR": str(var), "DJANGO_DEBUG": "false"}


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args, "-v0"], cwd=PROJECT_ROOT, env=env, check=True
    )


def runner_pids(var: Path, env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "exchange_site.runner", "--var", str(var), "--ctl", "status"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    return dict(re.findall(r"^(\w+)\s+RUNNING\s+pid (\d+)", out, re.MULTILINE))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args(argv)
    var = Path(tempfile.mkdtemp(prefix="exchange-soak-"))
    env = soak_environment(var)
    manage("migrate", "--noinput", env=env)
    manage("seed_demo", env=env)
    manage("sync_schedule", env=env)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
    import django

    django.setup()
    from margin.models import Heartbeat

    processes = [line for line in (PROJECT_ROOT / "Procfile").read_text().splitlines() if line]
    procfile = var / "Procfile"
    procfile.write_text("\n".join(p for p in processes if p.startswith(("worker:", "beat:"))))
    log = var / "soak.log"
    with log.open("w") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "exchange_site.runner", str(procfile), "--var", str(var)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    # The clock starts at the first heartbeat (beat sent it, the worker ran it): starting the
    # processes takes from seconds to minutes, depending on the machine's load.
    deadline = time.monotonic() + 600
    while not Heartbeat.objects.exists():
        if time.monotonic() > deadline or runner.poll() is not None:
            print(f"worker and beat never ran a heartbeat; see {log}")
            return 1
        time.sleep(1)
    since = timezone_now()
    started = time.monotonic()
    seen: dict[str, set[str]] = {"worker": set(), "beat": set()}
    while time.monotonic() - started < args.seconds:
        time.sleep(5)
        for name, pid in runner_pids(var, env).items():
            seen.setdefault(name, set()).add(pid)
    runner.send_signal(signal.SIGTERM)
    runner.wait(timeout=60)
    figures = measure(var, log, seen, since=since, seconds=time.monotonic() - started)
    print(" ".join(f"{key}={value}" for key, value in figures.items()))
    crashed = figures["worker_restarts"] + figures["beat_restarts"] + figures["trouble_lines"]
    return 1 if crashed or not figures["revaluation_ticks_complete"] else 0


def timezone_now():
    from django.utils import timezone

    return timezone.now()


def measure(var: Path, log: Path, seen: dict[str, set[str]], *, since, seconds: float) -> dict:
    from margin.models import MarkPriceHistory, RevaluationTick

    ticks = RevaluationTick.objects.filter(started_at__gte=since)
    market_ticks = MarkPriceHistory.objects.filter(at__gte=since).values("at").distinct().count()
    text = log.read_text()
    damaged = var / "broker" / "processed" / "damaged"
    return {
        "soak_s": round(seconds),
        "broker": "embedded://",
        "market_ticks": market_ticks,
        "market_ticks_per_s": round(market_ticks / seconds, 2),
        "revaluation_ticks_complete": ticks.filter(status=RevaluationTick.Status.COMPLETE).count(),
        "revaluation_ticks_abandoned": ticks.filter(
            status=RevaluationTick.Status.ABANDONED
        ).count(),
        # one pid seen is no restart; a pid never seen means the process never came up
        "worker_restarts": max(len(seen.get("worker", ())) - 1, 0)
        + (0 if seen.get("worker") else 1),
        "beat_restarts": max(len(seen.get("beat", ())) - 1, 0) + (0 if seen.get("beat") else 1),
        "trouble_lines": sum(1 for line in text.splitlines() if TROUBLE.search(line)),
        "damaged_messages": len(list(damaged.iterdir())) if damaged.exists() else 0,
        "load_avg_1m_5m_15m": "/".join(f"{x:.2f}" for x in os.getloadavg()),
        "log": str(log),
    }


if __name__ == "__main__":
    sys.exit(main())
