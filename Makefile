# The README's two commands: `make run` (the dashboard with demo data and the live jobs) and
# `make test` (the whole suite, on PostgreSQL and Redis).
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/exchange_risk
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
# pytest-xdist processes: one per core (each gets its own test database, test_<name>_gw<N>).
TEST_PROCESSES ?= auto

.PHONY: bootstrap run test screenshots lint check-vectors

bootstrap:
	@python3 -m uv --version >/dev/null 2>&1 || command -v uv >/dev/null || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

run: bootstrap
	@$(UV) run python manage.py migrate --noinput
	@$(UV) run python manage.py seed_demo
	@$(UV) run python manage.py sync_schedule
	@echo ""
	@echo "  Dashboard: http://127.0.0.1:$(PORT)/   (demo logins in README.md; Ctrl-C stops all)"
	@echo ""
	@DJANGO_DEBUG=$${DJANGO_DEBUG:-true} PORT=$(PORT) $(UV) run honcho start

test: bootstrap
	@$(UV) run ruff check .
	@DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	 CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	 DJANGO_ALLOW_ASYNC_UNSAFE=true \
	 $(UV) run pytest -n $(TEST_PROCESSES) $(PYTEST_ARGS)

# The README's screenshots: the trader journey saves them into static/screenshots/ (a plain
# `make test` saves them in a temporary folder and leaves the checkout untouched).
screenshots:
	@$(MAKE) --no-print-directory test TEST_PROCESSES=0 \
	  PYTEST_ARGS="tests/trader/test_journey_browser.py" SCREENSHOTS_DIR=$(CURDIR)/static/screenshots

lint: bootstrap
	@$(UV) run ruff check .

# The published vectors and scenarios the tests keep in tests/data/ must equal the team's copies
# in ../shared when that folder is there (CI has it; a user's clone does not need it).
check-vectors:
	@if [ -d ../shared/vectors ]; then \
	  diff -r ../shared/vectors tests/data/vectors && diff -r ../shared/scenarios tests/data/scenarios \
	  && echo "tests/data equals ../shared"; \
	else echo "no ../shared beside the checkout: nothing to compare"; fi
