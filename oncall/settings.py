"""Settings for the on-call escalation app.

Every setting comes from the environment (or a `.env` file beside manage.py), see `.env.example`.
The defaults are the embedded ones a newcomer gets: SQLite in the project folder and the local
Vonage emulator. Production sets DATABASE_URL to PostgreSQL and DEBUG off.
"""

import os
import tempfile
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from oncall import logs, operations
from oncall.env_numbers import integer, number

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# A fixed development key is only acceptable with DEBUG on. With DEBUG off the processes refuse to start
# without a real key (gunicorn runs no system checks, so a check alone would let the web app run on this one).
INSECURE_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789"
SECRET_KEY = env.str("SECRET_KEY", default="")
if SECRET_KEY in ("", "change-me", INSECURE_DEV_SECRET_KEY):  # unset, .env.example's placeholder, or ours
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set (or is a placeholder) and DEBUG is off: set SECRET_KEY to a long random value, "
            "e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))', or DEBUG=true for development.")
    SECRET_KEY = SECRET_KEY or INSECURE_DEV_SECRET_KEY
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "escalation",
]

MIDDLEWARE = [
    # First: /healthz, /readyz and /metrics are answered before sessions, CSRF, host checks or HTTPS redirects.
    "escalation.ops.probes.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "oncall.middleware.RefuseNulInQuery",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "oncall.urls"

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
                "escalation.context_processors.demo",
                "escalation.context_processors.alarms",
            ],
        },
    },
]

WSGI_APPLICATION = "oncall.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web app and the worker write at once: WAL lets readers run beside the writer, IMMEDIATE takes
    # the write lock at BEGIN (no deadlock-prone lock upgrade), and the busy timeout waits instead of
    # failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not Django's in-memory default, so the end-to-end tests' server threads, worker threads and
    # worker processes all see one database. Per process, so concurrent test runs never share it.
    _default_test_db = Path(tempfile.gettempdir()) / f"oncall-test-{os.getpid()}.sqlite3"
    DATABASES["default"]["TEST"] = {"NAME": env.str("SQLITE_TEST_NAME", default=str(_default_test_db))}
else:
    # Reuse connections across requests, but check them first so a restarted PostgreSQL is survived.
    DATABASES["default"]["CONN_MAX_AGE"] = integer(env, "CONN_MAX_AGE", default=60, low=0, high=86400)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Webhook bodies from Vonage are small; anything larger is refused with 413 before parsing.
WEBHOOK_MAX_BODY_BYTES = integer(env, "WEBHOOK_MAX_BODY_BYTES", default=64 * 1024, low=1024, high=10 * 1024 * 1024)
# Public endpoints (webhooks, alert intake): requests per second per client address and per web process,
# with bursts up to RATE_LIMIT_BURST; beyond that 429 + Retry-After. Far above Vonage's own bursts; 0 turns
# it off. Behind a proxy, RATE_LIMIT_IP_HEADER names the header carrying the client's address (X-Real-IP).
RATE_LIMIT_PER_SECOND = number(env, "RATE_LIMIT_PER_SECOND", default=2000.0, low=0, high=1_000_000)
RATE_LIMIT_BURST = integer(env, "RATE_LIMIT_BURST", default=2000, low=1, high=1_000_000)
RATE_LIMIT_IP_HEADER = env.str("RATE_LIMIT_IP_HEADER", default="")

# --- Security (production: DEBUG off, behind HTTPS) ---
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Off unless asked for: the proxy in front usually redirects already, and Vonage's webhooks, the emulator and
# the tests talk plain HTTP on loopback. Production sets it (check --deploy says so if not).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = integer(env, "SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000, low=0, high=2 * 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Vonage ---
VONAGE_APPLICATION_ID = env.str("VONAGE_APPLICATION_ID", default="")
VONAGE_PRIVATE_KEY_PATH = env.str("VONAGE_PRIVATE_KEY_PATH", default="")
VONAGE_API_URL = env.str("VONAGE_API_URL", default="https://api.nexmo.com").rstrip("/")
VONAGE_SIGNATURE_SECRET = env.str("VONAGE_SIGNATURE_SECRET", default="")
# Seconds: Vonage retries webhooks for 24 h, so a signed event may legitimately be that old.
VONAGE_SIGNATURE_MAX_AGE = integer(env, "VONAGE_SIGNATURE_MAX_AGE", default=25 * 3600, low=60, high=7 * 86400)
VONAGE_CONNECT_TIMEOUT = number(env, "VONAGE_CONNECT_TIMEOUT", default=3.05, low=0.1, high=60)
VONAGE_READ_TIMEOUT = number(env, "VONAGE_READ_TIMEOUT", default=10.0, low=0.1, high=300)
ESCALATION_API = env.str("ESCALATION_API", default="dispatch")

# --- Engine ---
# How often an idle worker looks for due work (seconds); also bounds fire-to-first-request latency.
WORKER_POLL_INTERVAL = number(env, "WORKER_POLL_INTERVAL", default=0.1, low=0.01, high=60)
# A send whose worker died before recording its outcome is claimed again at most this many times.
ESCALATION_SEND_ATTEMPTS = integer(env, "ESCALATION_SEND_ATTEMPTS", default=4, low=1, high=20)
# A provider fault (vonage/errors.py) holds the escalation at its step and retries it: after the base,
# doubling up to the cap (seconds), for the horizon; then the escalation ends `failed`.
ESCALATION_RETRY_BASE_SECONDS = number(env, "ESCALATION_RETRY_BASE_SECONDS", default=2.0, low=0.01, high=3600)
ESCALATION_RETRY_CAP_SECONDS = number(env, "ESCALATION_RETRY_CAP_SECONDS", default=60.0, low=0.01, high=86400)
ESCALATION_HOLD_HORIZON_SECONDS = number(env, "ESCALATION_HOLD_HORIZON_SECONDS", default=3600.0, low=1,
                                         high=7 * 86400)
# A send claimed by a worker that died is taken over after this lease (seconds). It must outlast one
# request (connect + read timeout), or a slow send could be repeated by another worker (check E005).
# A worker makes no request whose claim has less than that left; it claims the send anew instead.
ESCALATION_SEND_LEASE_SECONDS = number(env, "ESCALATION_SEND_LEASE_SECONDS", default=30.0, low=1, high=3600)
# An escalation claimed by a worker that died is due again after this lease (seconds).
ESCALATION_CLAIM_LEASE_SECONDS = number(env, "ESCALATION_CLAIM_LEASE_SECONDS", default=30.0, low=1, high=3600)

# Demo mode links the admin to the emulator's phones page.
DEMO_PHONES_URL = env.str("DEMO_PHONES_URL", default="")

# --- Operations: logs, health probes, /metrics (README, Production) ---
# LOG_FORMAT=json: one JSON object per line; text (the default) is for people. Secrets and phone numbers are
# removed from every line either way (oncall/logs.py).
LOG_FORMAT = operations.log_format(env.str("LOG_FORMAT", default="text"))
LOGGING = logs.logging_config(LOG_FORMAT, env.str("LOG_LEVEL", default="INFO"))
# /metrics: off (404, the default), open, or token (needs `Authorization: Bearer <METRICS_TOKEN>`).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ACCESS = operations.metrics_access(os.environ.get("METRICS_ACCESS"), METRICS_TOKEN)
# /readyz answers 503 when the database does not answer within this many seconds.
READINESS_TIMEOUT = number(env, "READINESS_TIMEOUT", default=2.0, low=0.05, high=60)
# Sends one worker process makes at once (threads). SQLite serialises writers, so one is enough there.
WORKER_THREADS = integer(
    env, "WORKER_THREADS", default=1 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else 8,
    low=1, high=64)
