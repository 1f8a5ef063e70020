"""gunicorn, the application server behind `make run`, `make serve` and the Procfile's web line.

Everything comes from the environment. gthread workers: each page and fragment is a short,
synchronous Django request doing database work. One thread a process and 2 × cores + 1 processes by
default: a poll makes ~10 database round trips, and a thread coming back from one waits for the
interpreter lock behind the process's other threads, so with 4 threads a request spent far longer
waiting than computing (`make loadtest` on 2 cores: 2 × 4 threads 66 requests/s, fragment p95 3.5
s; 5 × 1: 81.5/s, p95 1.8 s; 8 × 1: 70/s, the cores saturated). The threads of one process share
its database pool (DATABASE_POOL_MAX_SIZE should be at least GUNICORN_THREADS).
Graceful reload: `kill -HUP <master pid>` (or `supervisorctl signal HUP web`) starts new workers
on the new code and lets the old ones finish their requests.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1) + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A request still running after this many seconds gets its worker killed and replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# How long a worker may finish its requests on a reload or stop.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# A connection per request, taken only by a process with a free thread: every process waits on
# the one listening socket, so the next request goes to whichever is idle. With keep-alive (it
# was 5 s) a process kept each connection it had accepted, and accepted more while its thread was
# busy: `make loadtest`'s 180 pollers sat 63/65/59/6/7 on the 5 processes, three queueing while
# two idled (fragment max 5.2 s against 1.5 s without; tests/skeleton/test_gunicorn.py).
keepalive = 0
worker_connections = threads
# Replace each worker after so many requests (with jitter): bounds any slow leak.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = max_requests // 10
# `make dev` reloads on code changes.
reload = os.environ.get("GUNICORN_RELOAD", "false").lower() == "true"
# No access log by default: the market's pollers would flood it. GUNICORN_ACCESS_LOG=- turns it on.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "exchange-risk-web"
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), which a
# second instance on the machine would take over; reloads go through the runner's signal instead.
control_socket_disable = True
