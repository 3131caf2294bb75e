"""Provides Django settings, read from environment variables with safe embedded defaults.

With no variables set BrandForge runs on SQLite (WAL), the django-q2 ORM broker on the same
database and local file storage under media/. DATABASE_URL, REDIS_URL and
AWS_STORAGE_BUCKET_NAME switch to PostgreSQL, the Redis broker and S3. The README lists every
variable.
"""

from pathlib import Path

import dj_database_url

from brandforge.env import env_bool, env_int, env_list, env_str, local_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("BRANDFORGE_VAR_DIR") or BASE_DIR / "var")

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or local_secret_key(VAR_DIR / "secret.key")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_q",
    "brandforge",
    "assets",
    "campaigns",
    "generation",
    "review",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "brandforge.urls"
WSGI_APPLICATION = "brandforge.wsgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": Path(env_str("BRANDFORGE_SQLITE_PATH") or BASE_DIR / "db.sqlite3"),
            "OPTIONS": {
                # Several worker processes share this file: WAL lets readers run beside the writer,
                # and IMMEDIATE takes the write lock at BEGIN, so a transaction waits on
                # busy_timeout instead of failing with "database is locked" when it upgrades
                # from read to write.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
                ),
            },
            # A file, not memory: the live-server tests write from several threads, which an
            # in-memory database (one shared connection) cannot take; a file in WAL mode can.
            "TEST": {"NAME": env_str("BRANDFORGE_SQLITE_TEST_PATH") or VAR_DIR / "test.sqlite3"},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Task queue (django-q2) -----------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER = {
    "name": env_str("BRANDFORGE_Q_NAME", "brandforge"),
    "workers": env_int("BRANDFORGE_WORKERS", 2),
    # Tasks are short and idempotent (the job row, not the queue, holds the state): a task that
    # outlives `retry` is redelivered, which our leases make harmless, but keep retry > timeout.
    "timeout": env_int("BRANDFORGE_TASK_TIMEOUT", 120),
    "retry": env_int("BRANDFORGE_TASK_RETRY", 300),
    "queue_limit": 4,
    "bulk": 1,
    "recycle": 200,
    "max_attempts": 5,
    "ack_failures": True,
    "catch_up": False,
    "poll": 0.2,
    # Our job rows are the record of what ran; django-q2's successes only cost a count and a
    # delete per task to keep pruned (measured: the monitor's biggest cost). Failures are kept.
    "save_limit": env_int("BRANDFORGE_Q_SAVE_LIMIT", -1),
    "label": "Task queue",
    "log_level": env_str("BRANDFORGE_Q_LOG_LEVEL", "WARNING"),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
if env_bool("BRANDFORGE_Q_SYNC", False):
    Q_CLUSTER["sync"] = True

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Storage --------------------------------------------------------------------------------

MEDIA_ROOT = Path(env_str("BRANDFORGE_MEDIA_ROOT") or BASE_DIR / "media")
MEDIA_URL = "/media/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
BRANDFORGE_PUBLISH_LOCATION = env_str("BRANDFORGE_PUBLISH_LOCATION", "published")
_static = {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"}
if AWS_STORAGE_BUCKET_NAME:
    AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None
    AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME") or None
    AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID") or None
    AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY") or None
    AWS_S3_ADDRESSING_STYLE = env_str(
        "AWS_S3_ADDRESSING_STYLE", "path" if AWS_S3_ENDPOINT_URL else "auto"
    )
    AWS_S3_SIGNATURE_VERSION = "s3v4"
    AWS_QUERYSTRING_AUTH = True
    AWS_QUERYSTRING_EXPIRE = env_int("AWS_QUERYSTRING_EXPIRE", 900)
    AWS_DEFAULT_ACL = None
    # Object names are generated by the server and unique, so overwriting only ever replaces the
    # same object on a retried upload.
    AWS_S3_FILE_OVERWRITE = True
    STORAGES = {
        "default": {"BACKEND": "brandforge.storage.S3Storage", "OPTIONS": {"location": "work"}},
        "publish": {
            "BACKEND": "brandforge.storage.S3Storage",
            "OPTIONS": {
                "location": BRANDFORGE_PUBLISH_LOCATION,
                "bucket_name": env_str("BRANDFORGE_PUBLISH_BUCKET") or AWS_STORAGE_BUCKET_NAME,
            },
        },
        "staticfiles": _static,
    }
else:
    STORAGES = {
        "default": {"BACKEND": "brandforge.storage.FileSystemStorage"},
        "publish": {
            "BACKEND": "brandforge.storage.FileSystemStorage",
            "OPTIONS": {
                "location": MEDIA_ROOT / BRANDFORGE_PUBLISH_LOCATION,
                "base_url": f"{MEDIA_URL}{BRANDFORGE_PUBLISH_LOCATION}/",
            },
        },
        "staticfiles": _static,
    }

# Uploads: Django itself has no cap on file size; the upload validators enforce one, and the
# reverse proxy should too (README, deployment).
BRANDFORGE_MAX_UPLOAD_BYTES = env_int("BRANDFORGE_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
FILE_UPLOAD_PERMISSIONS = 0o640

# --- BrandForge -----------------------------------------------------------------------------

# Image providers by name: a dotted class path, or a class with options (keys, base URLs).
# The base URLs are settings so that tests, benchmarks and the demo can point the real
# adapters at the fake provider server (`manage.py fakeprovider`).
BRANDFORGE_PROVIDERS = {
    "local": "generation.providers.local.LocalImageProvider",
    "fal": {
        "class": "generation.providers.fal.FalImageProvider",
        "options": {
            "api_key": env_str("FAL_KEY"),
            "queue_url": env_str("FAL_QUEUE_URL", "https://queue.fal.run"),
            "jwks_url": env_str("FAL_JWKS_URL", "https://rest.fal.ai/.well-known/jwks.json"),
            "user_id": env_str("FAL_USER_ID") or None,
        },
    },
    "replicate": {
        "class": "generation.providers.replicate.ReplicateImageProvider",
        "options": {
            "api_token": env_str("REPLICATE_API_TOKEN"),
            "base_url": env_str("REPLICATE_BASE_URL", "https://api.replicate.com"),
            "webhook_secret": env_str("REPLICATE_WEBHOOK_SECRET") or None,
        },
    },
    "openai": {
        "class": "generation.providers.openai.OpenAIImageProvider",
        "options": {
            "api_key": env_str("OPENAI_API_KEY"),
            "base_url": env_str("OPENAI_BASE_URL", "https://api.openai.com/v1"),
        },
    },
}
# Where providers send webhooks (this deployment's public origin); empty: no webhooks, the
# reconciler polls instead.
BRANDFORGE_PUBLIC_URL = env_str("BRANDFORGE_PUBLIC_URL")
# Private destinations the download client may reach anyway, as "host:port" (tests, fakes).
BRANDFORGE_NET_ALLOW = env_list("BRANDFORGE_NET_ALLOW", [])
BRANDFORGE_MASTER_SIZE = env_int("BRANDFORGE_MASTER_SIZE", 1024)
BRANDFORGE_JOB_MAX_ATTEMPTS = env_int("BRANDFORGE_JOB_MAX_ATTEMPTS", 5)
BRANDFORGE_JOB_LEASE_SECONDS = env_int("BRANDFORGE_JOB_LEASE_SECONDS", 180)
BRANDFORGE_JOB_POLL_AFTER_SECONDS = env_int("BRANDFORGE_JOB_POLL_AFTER_SECONDS", 120)
# A queued job older than this is queued again (its task was lost by the broker); shorter
# re-queues jobs still waiting in a long backlog, which is harmless but wasted work.
BRANDFORGE_JOB_REQUEUE_AFTER_SECONDS = env_int("BRANDFORGE_JOB_REQUEUE_AFTER_SECONDS", 120)
BRANDFORGE_JOB_DEADLINE_SECONDS = env_int("BRANDFORGE_JOB_DEADLINE_SECONDS", 1800)
BRANDFORGE_BREAKER_FAILURES = env_int("BRANDFORGE_BREAKER_FAILURES", 5)
BRANDFORGE_BREAKER_OPEN_SECONDS = env_int("BRANDFORGE_BREAKER_OPEN_SECONDS", 30)

# Review. An editor's claim on an item lapses after this long without a decision.
BRANDFORGE_REVIEW_CLAIM_SECONDS = env_int("BRANDFORGE_REVIEW_CLAIM_SECONDS", 600)
# Optional scorers: a LAION-style aesthetic predictor exported to ONNX (path to the .onnx file;
# the scorer is disabled, and says so, without one), and NudeNet as a local NSFW detector
# (AGPL-3.0, so off unless asked for; the provider's own NSFW flag is always checked).
BRANDFORGE_AESTHETIC_MODEL = env_str("BRANDFORGE_AESTHETIC_MODEL")
BRANDFORGE_NSFW_LOCAL = env_bool("BRANDFORGE_NSFW_LOCAL", False)

# The pipeline's hand-offs from a lower app to a higher one. Imports only point down
# (review -> generation -> campaigns -> assets); where a lower stage finishes, it enqueues the task
# named here, so the wiring of the whole flow is readable in one place.
BRANDFORGE_FLOW = {
    "campaign_launched": "generation.tasks.campaign_jobs_create",
    "job_succeeded": "review.tasks.job_review_prepare",
}

# --- Auth, i18n ------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
}

# --- Security ---------------------------------------------------------------------------------

HTTPS = env_bool("BRANDFORGE_HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("BRANDFORGE_HSTS_SECONDS", 31_536_000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("BRANDFORGE_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("BRANDFORGE_LOG_LEVEL", "INFO")},
    # django-q2 logs every task at INFO; its logger is named with a hyphen.
    "loggers": {
        "django-q": {"level": env_str("BRANDFORGE_Q_LOG_LEVEL", "WARNING")},
        # httpx logs every request at INFO: too much for a worker doing thousands.
        "httpx": {"level": "WARNING"},
    },
}
