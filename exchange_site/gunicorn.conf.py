"""gunicorn, the application server behind `make run`, `make serve` and the Procfile's web line.

Everything comes from the environment. gthread workers: each page and fragment is a short,
synchronous Django request doing database work, so a few processes with a few threads each use
the cores without an async stack; the threads of one process share its database pool
(DATABASE_POOL_MAX_SIZE should be at least GUNICORN_THREADS).
Graceful reload: `kill -HUP <master pid>` (or `supervisorctl signal HUP web`) starts new workers
on the new code and lets the old ones finish their requests.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A request still running after this many seconds gets its worker killed and replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# How long a worker may finish its requests on a reload or stop.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
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
