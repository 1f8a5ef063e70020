"""Settings, all read from the environment (twelve-factor).

Nothing set gives the embedded mode a fresh machine can run: SQLite and Celery on the embedded
broker (kombu's filesystem transport with atomic writes; no server). DATABASE_URL and
CELERY_BROKER_URL switch to PostgreSQL and Redis; DJANGO_DEBUG, DJANGO_SECRET_KEY and
DJANGO_ALLOWED_HOSTS set the rest.
"""

from datetime import datetime, timedelta
from pathlib import Path

import environ
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# Local state of the embedded mode (SQLite file, broker folders, mail): DJANGO_VAR_DIR moves it, so
# a soak run or a test can have its own.
VAR_DIR = Path(env("DJANGO_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The fallback key only exists so a fresh clone runs; check --deploy flags it (README explains).
SECRET_KEY = env(
    "DJANGO_SECRET_KEY", default="django-insecure-local-only-key-never-used-in-production"
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "django_celery_beat",
    "axes",
    "pgactivity",
    "pglock",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "accounts",
    "margin",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Control characters in a path, query or form are refused before anything reads them.
    "margin.request_guard.RequestGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Desk roles reach nothing but the login steps until their second factor is verified.
    "accounts.middleware.SecondFactorMiddleware",
    # Last, so a locked-out login is answered before any view runs.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "exchange_site.urls"
WSGI_APPLICATION = "exchange_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "accounts.context_processors.navigation",
            ],
            "builtins": ["django_htmx.templatetags.django_htmx"],
        },
    }
]

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'exchange.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# The embedded mode (SQLite, no server): it also runs a smaller book, less often (see below).
_EMBEDDED = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if _EMBEDDED:
    # WAL lets the web process read while the worker writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
else:
    # A bounded pool per process (psycopg_pool): 200 pollers on unpooled connections once
    # exhausted PostgreSQL's max_connections of 100. The pool replaces persistent connections
    # (Django refuses CONN_MAX_AGE with it). Every web, worker and beat process holds at most
    # DATABASE_POOL_MAX_SIZE, so processes × max_size must stay under max_connections.
    if env.bool("DATABASE_POOL", default=True):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=1),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=8),
            "timeout": env.float("DATABASE_POOL_TIMEOUT_S", default=10.0),
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A read replica for the pages (streaming replication of the primary): reads a view wraps
    # in exchange_site.db_routers.replica_reads() go there; see SCALING.md.
    if env("DATABASE_REPLICA_URL", default=""):
        DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
        DATABASES["replica"]["OPTIONS"] = dict(DATABASES["default"].get("OPTIONS", {}))
        DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
        DATABASE_ROUTERS = ["exchange_site.db_routers.ReplicaRouter"]
    # The test run's database, when it must not be test_<NAME> (pytest-xdist adds _gw0, _gw1…).
    if env("TEST_DATABASE_NAME", default=""):
        DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # ModelBackend with each user's permission set cached between requests.
    "accounts.permissions.CachedPermissionsBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling: django-axes locks a username+IP after repeated failures.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="Exchange risk desk")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
# A deployment runs collectstatic and sets DJANGO_STATIC_MANIFEST=true for hashed, cache-forever
# names; without it (local demo, tests) WhiteNoise serves straight from the app folders.
STATIC_MANIFEST = env.bool("DJANGO_STATIC_MANIFEST", default=False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
WHITENOISE_AUTOREFRESH = DEBUG

# Content Security Policy (Django 6 built-in): scripts only from us or with the request nonce.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Cookies and transport are strict outside DEBUG; TLS is terminated in front of Django.
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

EMAIL_BACKEND = env(
    "DJANGO_EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="risk@localhost")

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# Every key under a prefix, so several deployments or test runs can share a Redis db and each can
# remove exactly its own keys (the load test does).
CACHES["default"]["KEY_PREFIX"] = env("CACHE_KEY_PREFIX", default="")
# With a cache the web processes share (Redis: `make serve`, the load test), each request reads
# its session there rather than from the database; sessions are still written through to the
# database, so a flushed cache logs nobody out.
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# Each process's own memory, for what is keyed on a version every request reads anyway (a user's
# permission set, accounts.permissions): nothing to share between processes, no round trip.
CACHES["local"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}

# Celery, configured from Django settings under the CELERY_ namespace.
# `embedded://`: kombu's filesystem transport with atomic writes (exchange_site/embedded_broker.py)
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="embedded://")
if CELERY_BROKER_URL in ("embedded://", "filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        # Without it kombu writes its exchange tables to ./control in whatever folder it runs.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
    for _folder in ("out", "processed", "results", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_RESULT_BACKEND = env(
        "CELERY_RESULT_BACKEND", default=f"file://{_broker_dir / 'results'}"
    )
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
    CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL)
    # Every Redis key (queues, bindings, results) under one prefix, so several deployments or
    # test runs can share a Redis db and each can remove exactly its own keys.
    CELERY_KEY_PREFIX = env("CELERY_KEY_PREFIX", default="")
    if CELERY_KEY_PREFIX:
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = CELERY_KEY_PREFIX
        CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": CELERY_KEY_PREFIX}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=100)
CELERY_RESULT_EXPIRES = timedelta(hours=6)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Shard tasks on a queue of their own (workers on other machines consume it: `celery worker
# -Q revaluation`), so a tick's shards never wait behind e-mails or desk jobs; off unless set.
REVALUATION_QUEUE = env("REVALUATION_QUEUE", default="")
if REVALUATION_QUEUE:
    CELERY_TASK_ROUTES = {"margin.revaluation_shard": {"queue": REVALUATION_QUEUE}}

# How often beat fires each periodic job (seconds); kept as code by `sync_schedule`.
HEARTBEAT_INTERVAL_S = env.float("HEARTBEAT_INTERVAL_S", default=5.0)
HEARTBEAT_STALE_AFTER_S = env.float("HEARTBEAT_STALE_AFTER_S", default=60.0)

# Revaluation. The embedded mode (SQLite) runs a smaller book, less often.
REVALUATION_INTERVAL_S = env.float("REVALUATION_INTERVAL_S", default=10.0 if _EMBEDDED else 5.0)
# 25,000 rather than 10,000 on PostgreSQL: each shard pays a fixed cost (the tick's prices and
# stress model, its queries' round trips); 100k accounts on 2 workers, 8.2–9.4 s against 9.4–10.3.
REVALUATION_SHARD_SIZE = env.int("REVALUATION_SHARD_SIZE", default=2_000 if _EMBEDDED else 25_000)
# A tick whose shards have not all reported after this long is abandoned (a worker died); the
# next tick revalues every account again.
REVALUATION_TICK_TIMEOUT_S = env.float("REVALUATION_TICK_TIMEOUT_S", default=60.0)
SNAPSHOT_KEEP_TICKS = env.int("SNAPSHOT_KEEP_TICKS", default=120)
# Each shard's book rows, kept by the worker that revalued it for whichever worker of this
# machine takes the shard next, which reads again only the accounts changed since
# (`margin.selectors.book_rows`): files in BOOK_CACHE_DIR (memory, on /dev/shm), at most
# BOOK_CACHE_MAX_MB per database (the least recently written dropped first; 0: every shard
# read whole each tick).
BOOK_CACHE_DIR = env(
    "BOOK_CACHE_DIR",
    default="/dev/shm/exchange-book" if Path("/dev/shm").is_dir() else str(VAR_DIR / "book"),
)
BOOK_CACHE_MAX_MB = env.int("BOOK_CACHE_MAX_MB", default=1024)
# The database's log of changed accounts keeps each row between this long and twice this long;
# a worker's copy older than the pruned part is read again whole.
BOOK_CHANGE_KEEP_S = env.float("BOOK_CHANGE_KEEP_S", default=600.0)
SNAPSHOT_STALE_AFTER_S = env.float("SNAPSHOT_STALE_AFTER_S", default=30.0)
# A tick writes the snapshot of every account at risk (not healthy), changing state, to be
# liquidated or among the desk queue's first rows; the healthy rest in turn, the accounts whose
# id is `tick.refresh_class` modulo this: each account has a row at most this many complete
# ticks old (`margin.selectors.market.snapshots_as_of`). Keep it × REVALUATION_INTERVAL_S under
# SNAPSHOT_STALE_AFTER_S (a trader's page says "stale" past it) and under SNAPSHOT_KEEP_TICKS
# (`margin.checks` warns otherwise). The embedded demo's small book is written whole every tick:
# its ticks are 10 s apart, and 5 of them would outlast the 30 s.
SNAPSHOT_REFRESH_TICKS = env.int("SNAPSHOT_REFRESH_TICKS", default=1 if _EMBEDDED else 5)
MARKET_TICK_INTERVAL_S = env.float("MARKET_TICK_INTERVAL_S", default=1.0)
# Pages read the market (marks, prices, parameters, funding outlook) once per market tick in each
# process, again after any write to it and at least every this many seconds
# (margin/selectors/market_now.py); 0 reads it on every request. PostgreSQL only.
MARKET_READ_CACHE_S = env.float("MARKET_READ_CACHE_S", default=1.0)
DEMO_MARKET_ENABLED = env.bool("DEMO_MARKET_ENABLED", default=True)
DEMO_MARKET_SPEED = env.float("DEMO_MARKET_SPEED", default=60.0)
# Jumps in the demo market per hour of wall-clock time (a crypto market gaps a few times a week;
# the demo shows one every ~15 minutes, enough for margin calls and a liquidation).
DEMO_MARKET_JUMPS_PER_HOUR = env.float("DEMO_MARKET_JUMPS_PER_HOUR", default=4.0)
# The synthetic book `seed_demo` adds (seed_book's generator), so the desk has a book to review.
DEMO_BOOK_ACCOUNTS = env.int("DEMO_BOOK_ACCOUNTS", default=3_000)
PRICE_HISTORY_KEEP_S = env.float("PRICE_HISTORY_KEEP_S", default=6 * 3600.0)
# Funding times are FUNDING_ANCHOR + k × the instrument's interval (of market time: 8 h is 8
# real minutes at the demo's speed of 60); Binance's grid is 00:00, 08:00, 16:00 UTC.
# Funding is settled in the revaluation tick at each funding time; a book that pays none (and the
# tests of everything else, whose figures would move with the funding grid) turns it off.
FUNDING_SETTLEMENT_ENABLED = env.bool("FUNDING_SETTLEMENT_ENABLED", default=True)
FUNDING_ANCHOR = datetime.fromisoformat(
    env.str("FUNDING_ANCHOR", default="2024-01-01T00:00:00+00:00")
)
# The demo market keeps a short-dated BTC future live (listed again after each expiry), so an
# expiry notice and settlement show within minutes: DEMO_FUTURE_TERM_HOURS of market time (12
# real minutes at the demo's speed of 60) from its listing to its expiry.
DEMO_FUTURE_ENABLED = env.bool("DEMO_FUTURE_ENABLED", default=DEMO_MARKET_ENABLED)
DEMO_FUTURE_TERM_HOURS = env.float("DEMO_FUTURE_TERM_HOURS", default=12.0)
# Options (`margin.services.options_listing`): BTC and ETH calls and puts on a strike ladder
# around the money, one expiry per term (market hours), listed again as they expire. A venue's
# weekly / monthly / quarterly (168, 720, 2160 hours) would be 2.8, 12 and 36 real hours at the
# demo's speed, so the demo compresses them like its future: 12, 48 and 168 market hours (12,
# 48 and 168 real minutes).
OPTIONS_LISTING_ENABLED = env.bool("OPTIONS_LISTING_ENABLED", default=DEMO_MARKET_ENABLED)
OPTION_TERMS_HOURS = [
    float(hours)
    for hours in env.list(
        "OPTION_TERMS_HOURS",
        default=["12", "48", "168"] if DEMO_MARKET_ENABLED else ["168", "720", "2160"],
    )
]
PRUNE_INTERVAL_S = env.float("PRUNE_INTERVAL_S", default=60.0)
# Recalibration estimates the margin rates from the price history once a market day; the demo
# market runs DEMO_MARKET_SPEED times faster, and its job every 5 minutes shows a proposal soon.
RECALIBRATION_INTERVAL_S = env.float(
    "RECALIBRATION_INTERVAL_S", default=300.0 if DEMO_MARKET_ENABLED else 86_400.0
)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "margin.api.schema.ProblemAutoSchema",
    # The token first: an anonymous call is answered 401 with `WWW-Authenticate: Bearer`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["margin.api.parsers.BoundedJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "margin.api.pagination.NewestFirst",
    "EXCEPTION_HANDLER": "margin.api.errors.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="60/min"),
        "user": env("API_THROTTLE_USER", default="600/min"),
    },
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cross-margin risk dashboard API",
    "DESCRIPTION": (
        "Accounts, collateral, positions, quotes and the risk desk. Authenticate with a session "
        "or `Authorization: Bearer <token>` (tokens on the user's page). Every POST takes an "
        "`Idempotency-Key`; errors are RFC 9457 problem details."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "MarginModeEnum": "margin.models.positions.MarginMode",
        "MarginSchemeEnum": "margin.models.accounts.MarginScheme",
        "CaseStatusEnum": "margin.models.desk.Case.Status",
        "ProposalStatusEnum": "margin.models.desk.Proposal.Status",
        "CascadeRunStatusEnum": "margin.models.desk.CascadeRun.Status",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Logs: one line each on stderr, plain or JSON (LOG_FORMAT=json: one object a line, for a log
# shipper). The periodic jobs' Celery chatter is DEBUG; a 4xx is one line without its traceback.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOG_LEVEL = env("DJANGO_LOG_LEVEL", default="INFO")
LOG_ROUTINE_TASKS = [
    "margin.heartbeat",
    "margin.market_tick",
    "margin.revaluation_tick",
    "margin.revaluation_shard",
    "margin.revaluation_prune",
    "margin.desk_proposals_expire",
]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "process_type": {"()": "exchange_site.log_filters.ProcessType"},
        "routine_tasks": {
            "()": "exchange_site.log_filters.RoutineTasksAtDebug",
            "tasks": LOG_ROUTINE_TASKS,
        },
        "client_errors_one_line": {"()": "exchange_site.log_filters.ClientErrorsOneLine"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(process_type)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process_type)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["process_type", "routine_tasks", "client_errors_one_line"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's default config gives "django" a handler of its own under DEBUG, and the record
        # then reached the root's too: every 404 printed twice.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.db.backends": {"level": "WARNING"},
    },
}
