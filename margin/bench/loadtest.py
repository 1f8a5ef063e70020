"""`make loadtest`: simulated users against the real stack on 127.0.0.1, bounded in time.

Its own PostgreSQL database (LOADTEST_DATABASE, dropped and made anew) and Redis key prefix;
gunicorn + worker + beat from the Procfile under the runner, as `make serve` runs them. The users
join over `--ramp` seconds; then, for `--seconds`, all of them at once: traders (`--users` less
`--officers`) poll their dashboard every 2 s as the page does (one htmx request for its three
live sections, `trader:live`) and place a small market order now and then through the API;
officers page through the desk's at-risk queue. It prints one line of figures: requests,
p50/p95/max per kind and requests/s over those `--seconds`; errors, and revaluation ticks started
and complete against the ticks due, over the whole run, ramp included; the load average. Exit 1
when a target is missed (0 errors, fragment p95 <= 250 ms, no tick missed).

Why a ramp: all 180 traders at once on a server that has just started met five gunicorn
processes each loading the dashboard's code, templates and market on its first requests; the
backlog of those seconds took ~20 s to drain at ~90 % load (2026-12-05: p95 1861 ms over the run
from the first second, 334 ms from the 20th on). People log in over minutes, not in one second,
and the figures are of the load, not of a cold start.

Users are logged in by creating their sessions in the database, as Django's test client's
force_login does, an officer's with the second factor verified as a code would leave it (each
officer gets an authenticator of its own), so the load test does not depend on the login form.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from base64 import b32encode
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from margin.bench import PROJECT_ROOT

FRAGMENT_P95_TARGET_MS = 250
POLL_S = 2.0
ORDER_EVERY_S = 30.0  # a trader's mean time between orders
QUEUE_PAGE_EVERY_S = 5.0  # the queue page's own refresh
REQUEST_TIMEOUT_S = 30


def environment(args) -> dict[str, str]:
    # The run's Redis keys (queues, results, cache) under one prefix, removed after it.
    prefix = f"loadtest-{uuid.uuid4().hex[:8]}:"
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.database}",
        "CELERY_BROKER_URL": args.broker,
        "CELERY_KEY_PREFIX": prefix,
        # Sessions are read from the cache there, as `make serve` does (settings.SESSION_ENGINE)
        "CACHE_URL": args.broker,
        "CACHE_KEY_PREFIX": prefix,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_VAR_DIR": args.var,
        "PORT": str(args.port),
        "HOST": "127.0.0.1",
        # the users poll far faster than a person: no API rate limit in the way of the figures
        "API_THROTTLE_USER": "100000/min",
    }


def prepare(env: dict[str, str], args) -> None:
    for command in (["dropdb", "--if-exists"], ["createdb"]):
        subprocess.run([*command, "-h", "127.0.0.1", "-U", "postgres", args.database], check=True)
    for step in (["migrate", "--noinput"], ["seed_demo"], ["sync_schedule"]):
        subprocess.run(
            [sys.executable, "manage.py", *step, "-v0"], cwd=PROJECT_ROOT, env=env, check=True
        )


def users_with_sessions(traders: int, officers: int) -> tuple[list[dict], list[dict]]:
    """Traders with a funded account holding a position, and risk officers; each with a session
    cookie, traders also with an API token for their orders."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group
    from django.utils.module_loading import import_string
    from django_otp import DEVICE_ID_SESSION_KEY

    from accounts.authentication import api_token_create
    from accounts.models import User
    from accounts.roles import RISK_OFFICER, TRADER
    from accounts.second_factor import totp_device_ensure
    from margin.services.collateral import collateral_deposit
    from margin.services.ledger import margin_account_open
    from margin.services.positions import position_market_fill

    # The engine the server reads them with: with the cache in front, the first poll needs no
    # database read either.
    session_store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")

    def session_for(user, *, second_factor=None) -> str:
        session = session_store()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        if second_factor is not None:
            # What a verified code leaves in the session (django_otp.login): the desk answers.
            session[DEVICE_ID_SESSION_KEY] = second_factor.persistent_id
        session.create()
        return session.session_key

    def user(name: str, role: str):
        # No password: they never use the login form, and hashing 200 (PBKDF2) takes minutes.
        made = User(username=name)
        made.set_unusable_password()
        made.save()
        made.groups.set([Group.objects.get(name=role)])
        return made

    run = uuid.uuid4().hex[:6]
    trader_rows, officer_rows = [], []
    for n in range(traders):
        owner = user(f"load-trader-{run}-{n}", TRADER)
        account = margin_account_open(owner=owner, name="Main", credit_tier="standard")
        key = f"loadtest:{account.pk}"
        collateral_deposit(
            account=account, asset="USDT", amount=Decimal(50_000), idempotency_key=f"{key}:usdt"
        )
        position_market_fill(
            account=account,
            instrument="BTCUSDT" if n % 2 else "ETHUSDT",
            side="buy" if n % 3 else "sell",
            quantity=Decimal("0.05") if n % 2 else Decimal("1"),
            idempotency_key=f"{key}:fill",
        )
        _, token = api_token_create(user=owner, name="loadtest")
        trader_rows.append({"account": account.pk, "session": session_for(owner), "token": token})
    for n in range(officers):
        officer = user(f"load-officer-{run}-{n}", RISK_OFFICER)
        device = totp_device_ensure(user=officer, secret=b32encode(os.urandom(20)).decode())
        officer_rows.append({"session": session_for(officer, second_factor=device)})
    return trader_rows, officer_rows


class Recorder:
    """Every request's error, and the time of those started from `since` (a `perf_counter()`
    reading: the end of the ramp) on."""

    def __init__(self, since: float = 0.0) -> None:
        self.since = since
        self.times_ms: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_samples: list[str] = []

    async def request(
        self, base: str, kind: str, method: str, path: str, headers: dict, body: bytes = b""
    ):
        started = time.perf_counter()
        try:
            status = await http_request(base, method, path, headers, body)
            ok = status < 400
            detail = f"{status} {method} {path}"
        except (OSError, TimeoutError, ValueError, IndexError) as exc:
            ok, detail = False, f"{type(exc).__name__} {method} {path}"
        if started >= self.since:
            self.times_ms[kind].append((time.perf_counter() - started) * 1000)
        if not ok:
            self.errors[kind] += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(detail)


async def http_request(base: str, method: str, path: str, headers: dict, body: bytes) -> int:
    """One request on a connection of its own, as the server takes them (keep-alive off), read to
    its end; its status. A few lines of asyncio rather than httpx's client: the users share the
    two cores with the server, and httpx spent ~2.2 ms of CPU a request (0.19 of the cores at 85
    requests/s, 2026-12-05), which the server's requests queued behind."""
    address = urlsplit(base)
    head = "".join(
        f"{name}: {value}\r\n"
        for name, value in {
            "Host": address.netloc,
            "Connection": "close",
            "Content-Length": len(body),
            **headers,
        }.items()
    )
    async with asyncio.timeout(REQUEST_TIMEOUT_S):
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        try:
            writer.write(f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode() + body)
            response = await reader.read()  # until the server closes the connection
        finally:
            writer.close()
    return int(response.split(b" ", 2)[1])  # "HTTP/1.1 200 OK"


async def trader(
    base: str, row: dict, deadline: float, record: Recorder, rng: random.Random, ramp_s: float
):
    poll_headers = {"Cookie": f"sessionid={row['session']}", "HX-Request": "true"}
    account = row["account"]
    await asyncio.sleep(rng.uniform(0, max(ramp_s, POLL_S)))
    next_order = time.monotonic() + rng.expovariate(1 / ORDER_EVERY_S)
    while time.monotonic() < deadline:
        round_started = time.monotonic()
        await record.request(base, "fragment", "GET", f"/accounts/{account}/live/", poll_headers)
        if time.monotonic() >= next_order:
            next_order += rng.expovariate(1 / ORDER_EVERY_S)
            order = {"instrument": "BTCUSDT", "side": rng.choice(["buy", "sell"])}
            await record.request(
                base,
                "order",
                "POST",
                f"/api/v1/accounts/{account}/orders/",
                {
                    "Authorization": f"Bearer {row['token']}",
                    "Idempotency-Key": uuid.uuid4().hex,
                    "Content-Type": "application/json",
                },
                json.dumps(order | {"quantity": "0.001"}).encode(),
            )
        await asyncio.sleep(max(0.0, POLL_S - (time.monotonic() - round_started)))


async def officer(
    base: str, row: dict, deadline: float, record: Recorder, rng: random.Random, ramp_s: float
):
    headers = {"Cookie": f"sessionid={row['session']}", "HX-Request": "true"}
    await asyncio.sleep(rng.uniform(0, max(ramp_s, QUEUE_PAGE_EVERY_S)))
    page = 1
    while time.monotonic() < deadline:
        await record.request(base, "queue", "GET", f"/desk/?page={page}", headers)
        page = page % 3 + 1
        await asyncio.sleep(QUEUE_PAGE_EVERY_S)


async def drive(
    base: str, traders, officers, seconds: float, record: Recorder, *, ramp_s: float = 0.0
) -> None:
    """Each user starts at a random time within the ramp (within its first period without
    one); all stop `seconds` after the ramp."""
    rng = random.Random(7)
    deadline = time.monotonic() + ramp_s + seconds
    await asyncio.gather(
        *(
            trader(base, row, deadline, record, random.Random(rng.random()), ramp_s)
            for row in traders
        ),
        *(
            officer(base, row, deadline, record, random.Random(rng.random()), ramp_s)
            for row in officers
        ),
    )


def keys_remove(broker_url: str, prefix: str) -> None:
    """The run's Redis keys (queues, bindings, cached sessions) go with it."""
    import redis

    client = redis.Redis.from_url(broker_url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0


def wait_healthy(base: str, timeout: float) -> None:
    """Until /healthz answers 200: database, broker and a fresh heartbeat from beat via worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"the stack did not become healthy in {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--officers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60, help="measured, after the ramp")
    parser.add_argument("--ramp", type=float, default=20, help="seconds over which users join")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--database", default=os.environ.get("LOADTEST_DATABASE", "exchange_load"))
    parser.add_argument(
        "--broker", default=os.environ.get("LOADTEST_BROKER_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args(argv)
    args.var = tempfile.mkdtemp(prefix="exchange-loadtest-")
    env = environment(args)
    prepare(env, args)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
    import django

    django.setup()
    from django.conf import settings

    from margin.models import RevaluationTick

    traders, officers = users_with_sessions(args.users - args.officers, args.officers)
    log = Path(args.var) / "stack.log"
    with log.open("w") as out:
        stack = subprocess.Popen(
            [sys.executable, "-m", "exchange_site.runner", "--var", args.var],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{args.port}"
    try:
        wait_healthy(base, timeout=300)
        first_tick = RevaluationTick.objects.order_by("-pk").values_list("pk", flat=True).first()
        started = time.monotonic()
        record = Recorder(since=time.perf_counter() + args.ramp)
        asyncio.run(drive(base, traders, officers, args.seconds, record, ramp_s=args.ramp))
        elapsed = time.monotonic() - started
        # the last tick started in the window may still be running: give it its timeout
        time.sleep(min(settings.REVALUATION_TICK_TIMEOUT_S, 2 * settings.REVALUATION_INTERVAL_S))
    finally:
        os.killpg(stack.pid, signal.SIGTERM)
        stack.wait(timeout=90)
        keys_remove(args.broker, env["CELERY_KEY_PREFIX"])
    ticks = RevaluationTick.objects.filter(pk__gt=first_tick or 0)
    due = int(elapsed // settings.REVALUATION_INTERVAL_S)
    started_ticks = ticks.count()
    complete = ticks.filter(status=RevaluationTick.Status.COMPLETE).count()
    figures = {
        "users": args.users,
        "traders": len(traders),
        "officers": len(officers),
        "ramp_s": args.ramp,
        "seconds": round(elapsed - args.ramp, 1),
        "requests": sum(len(v) for v in record.times_ms.values()),
        "errors": sum(record.errors.values()),
    }
    for kind in ("fragment", "order", "queue"):
        times = record.times_ms[kind]
        figures[f"{kind}_n"] = len(times)
        figures[f"{kind}_p50_ms"] = round(statistics.median(times)) if times else 0
        figures[f"{kind}_p95_ms"] = round(percentile(times, 0.95))
        figures[f"{kind}_max_ms"] = round(max(times, default=0))
    figures |= {
        "req_per_s": round(figures["requests"] / figures["seconds"], 1),
        "ticks_due": due,
        "ticks_started": started_ticks,
        "ticks_complete": complete,
        "load_avg_1m_5m_15m": "/".join(f"{x:.2f}" for x in os.getloadavg()),
        "cores": os.cpu_count(),
    }
    print(" ".join(f"{key}={value}" for key, value in figures.items()))
    for sample in record.error_samples:
        print(f"error: {sample}")
    print(f"stack log: {log}")
    missed = (
        figures["errors"] or figures["fragment_p95_ms"] > FRAGMENT_P95_TARGET_MS or complete < due
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
