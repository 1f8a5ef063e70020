# The README's two commands: `make run` (the dashboard with demo data and the live jobs) and
# `make test` (the whole suite, on PostgreSQL and Redis). Also: `make dev` (DEBUG, reload),
# `make serve` (production-like on PostgreSQL and Redis), `make soak`, `make loadtest`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/exchange_risk
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
# pytest-xdist processes: one more than the cores (each gets its own test database,
# test_<name>_gw<N>): many tests wait on processes they start (Celery workers, Chromium, a live
# server), and the extra process keeps the cores busy meanwhile (2 cores: 395 s with 2, 353 s with
# 3). worksteal: a process that runs out of tests takes queued ones from another, so the long
# browser and worker tests do not leave a core idle at the end.
TEST_PROCESSES ?= $(shell echo $$(( $$(nproc) + 1 )))

SERVE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/exchange_risk
SERVE_BROKER_URL ?= redis://127.0.0.1:6379/0
SERVE_CACHE_URL ?= redis://127.0.0.1:6379/1

.PHONY: bootstrap run dev demo-data serve soak loadtest test screenshots lint check-vectors

bootstrap:
	@python3 -m uv --version >/dev/null 2>&1 || command -v uv >/dev/null || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

# The demo (embedded: SQLite and the embedded broker, no server) as it would run for a visitor:
# gunicorn, DEBUG off, every process restarted if it dies (exchange_site/runner.py).
# Plain HTTP on 127.0.0.1, so cookies are not HTTPS-only.
run: bootstrap demo-data
	@echo ""
	@echo "  Dashboard: http://127.0.0.1:$(PORT)/   (demo logins in README.md; Ctrl-C stops all)"
	@echo ""
	@DJANGO_DEBUG=false DJANGO_SECURE_COOKIES=false PORT=$(PORT) $(UV) run python -m exchange_site.runner

# The same with DEBUG on (Django's error pages) and gunicorn reloading on code changes.
dev: bootstrap demo-data
	@DJANGO_DEBUG=true GUNICORN_RELOAD=true WEB_CONCURRENCY=1 GUNICORN_THREADS=4 PORT=$(PORT) \
	 $(UV) run python -m exchange_site.runner

demo-data:
	@$(UV) run python manage.py migrate --noinput
	@$(UV) run python manage.py seed_demo
	@$(UV) run python manage.py sync_schedule

# Production-like: PostgreSQL and Redis (SERVE_DATABASE_URL, SERVE_BROKER_URL, SERVE_CACHE_URL or
# DATABASE_URL, CELERY_BROKER_URL, CACHE_URL: sessions read from the cache), collected static
# files with hashed names, DEBUG off. SEED_DEMO=true adds the demo users and accounts. Set
# DJANGO_SECRET_KEY; DJANGO_SECURE_COOKIES=true behind TLS.
serve: export DATABASE_URL := $(or $(DATABASE_URL),$(SERVE_DATABASE_URL))
serve: export CELERY_BROKER_URL := $(or $(CELERY_BROKER_URL),$(SERVE_BROKER_URL))
serve: export CACHE_URL := $(or $(CACHE_URL),$(SERVE_CACHE_URL))
serve: export DJANGO_DEBUG := false
serve: export DJANGO_STATIC_MANIFEST := true
serve: export DJANGO_SECURE_COOKIES := $(or $(DJANGO_SECURE_COOKIES),false)
serve: bootstrap
	@createdb -h 127.0.0.1 -U postgres "$${DATABASE_URL##*/}" 2>/dev/null || true
	@$(UV) run python manage.py migrate --noinput
	@$(UV) run python manage.py collectstatic --noinput -v0
	@if [ "$(SEED_DEMO)" = "true" ]; then $(UV) run python manage.py seed_demo; fi
	@$(UV) run python manage.py sync_schedule
	@echo "  http://127.0.0.1:$(PORT)/  on $${DATABASE_URL%%\?*} and $$CELERY_BROKER_URL"
	@PORT=$(PORT) $(UV) run python -m exchange_site.runner

# Worker + beat on the embedded broker at a fast tick rate (SOAK_SECONDS, 300 by default) under
# the runner; prints its figures and fails on any crash.
soak: bootstrap
	@$(UV) run python -m margin.bench.soak --seconds $${SOAK_SECONDS:-300}

# 200 simulated users for 60 s against gunicorn + worker + beat on PostgreSQL and Redis, on
# 127.0.0.1, in a database of its own (LOADTEST_DATABASE, default exchange_load, made anew);
# prints its figures. LOADTEST_ARGS="--users 50 --seconds 30" for a shorter one.
loadtest: bootstrap
	@$(UV) run python -m margin.bench.loadtest $(LOADTEST_ARGS)

# PYTHONDONTWRITEBYTECODE= : the suite starts dozens of Python processes (the xdist processes,
# Celery workers, manage.py commands, the runner); with bytecode writing off (as this machine's
# environment sets it) each compiled every module it imported from source again, ~2.5 s of CPU a
# process before its first line of work (`manage.py check`: 3.65 s of CPU without .pyc, 1.08 s
# with). The .pyc files land in ignored __pycache__ folders of the checkout and its .venv.
test: bootstrap
	@$(UV) run ruff check .
	@$(UV) run lint-imports --no-cache
	@PYTHONDONTWRITEBYTECODE= \
	 DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	 CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	 DJANGO_ALLOW_ASYNC_UNSAFE=true \
	 DATABASE_POOL_MAX_SIZE=$${DATABASE_POOL_MAX_SIZE:-24} \
	 $(UV) run pytest -n $(TEST_PROCESSES) --dist worksteal $(PYTEST_ARGS)

# The README's screenshots: the trader journey and the seeded demo (the desk's queue, heat map
# and a stress run; the trader's stress explain) save them into static/screenshots/ (a plain
# `make test` saves them in a temporary folder and leaves the checkout untouched).
screenshots:
	@$(MAKE) --no-print-directory test TEST_PROCESSES=0 \
	  PYTEST_ARGS="tests/trader/test_journey_browser.py tests/desk/test_layout_browser.py::test_readme_screenshots_of_the_seeded_demo" \
	  SCREENSHOTS_DIR=$(CURDIR)/static/screenshots

lint: bootstrap
	@$(UV) run ruff check .

# The published vectors and scenarios the tests keep in tests/data/ must equal the team's copies
# in ../shared when that folder is there (CI has it; a user's clone does not need it).
check-vectors:
	@if [ -d ../shared/vectors ]; then \
	  diff -r ../shared/vectors tests/data/vectors && diff -r ../shared/scenarios tests/data/scenarios \
	  && echo "tests/data equals ../shared"; \
	else echo "no ../shared beside the checkout: nothing to compare"; fi
