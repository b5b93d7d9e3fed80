"""Configuration from the environment (twelve-factor); every value has a working default."""
import os
import secrets
from pathlib import Path


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def load_config(instance_path: str) -> dict:
    instance = Path(instance_path)
    scheme = os.environ.get("URL_SCHEME", "http")
    redis_timeout = _float("RATELIMIT_REDIS_TIMEOUT", 0.5)
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY") or _instance_secret(instance),
        "SERVER_NAME": os.environ.get("SERVER_NAME", "localhost:5000"),
        "PREFERRED_URL_SCHEME": scheme,
        # Served over https: the browser must never send the session over plain http.
        "SESSION_COOKIE_SECURE": scheme == "https",
        "REMEMBER_COOKIE_SECURE": scheme == "https",
        # Behind N reverse proxies: trust the last N X-Forwarded-For/-Proto/-Host values (0: none).
        "PROXY_FIX": _int("PROXY_FIX_HOPS", 0),
        "SQLALCHEMY_DATABASE_URI": database_url(),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": _int("DB_POOL_SIZE", 10)},
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "STORAGE_URL": os.environ.get("STORAGE_URL", ""),
        "S3_ACCESS_KEY": os.environ.get("S3_ACCESS_KEY") or os.environ.get("AWS_ACCESS_KEY_ID", ""),
        "S3_SECRET_KEY": os.environ.get("S3_SECRET_KEY") or os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        "SMTP_URL": os.environ.get("SMTP_URL", ""),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "DealDocs <no-reply@dealdocs.local>"),
        "OUTBOX_DIR": os.environ.get("OUTBOX_DIR") or str(instance / "outbox"),
        "QUEUE_NAME": os.environ.get("QUEUE_NAME", "dealdocs"),
        "TENANT_POOL_SIZE": tenant_pool_size(),
        "MAX_FILE_BYTES": _int("MAX_FILE_BYTES", 2 * 1024 ** 3),  # per uploaded file (a plan may allow less)
        # Plans (billing/plans.py): limits and list prices per user per month, in BILLING_CURRENCY.
        "PLAN_FREE_STORAGE_MB": _int("PLAN_FREE_STORAGE_MB", 200),
        "PLAN_STANDARD_STORAGE_MB_PER_USER": _int("PLAN_STANDARD_STORAGE_MB_PER_USER", 500),
        "PLAN_STANDARD_PRICE": os.environ.get("PLAN_STANDARD_PRICE", "9.00"),
        "PLAN_EXTENDED_PRICE": os.environ.get("PLAN_EXTENDED_PRICE", "15.00"),
        "BILLING_CURRENCY": os.environ.get("BILLING_CURRENCY", "usd"),
        "TRIAL_DAYS": _int("TRIAL_DAYS", 14),  # on a company's first Stripe subscription
        "GRACE_DAYS": _int("GRACE_DAYS", 7),  # after a failed payment, before Free's limits apply
        # Stripe: unset is the offline provider (the owner switches plans without payment).
        "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY", ""),
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET", ""),
        "STRIPE_PRICE_STANDARD": os.environ.get("STRIPE_PRICE_STANDARD", ""),
        "STRIPE_PRICE_EXTENDED": os.environ.get("STRIPE_PRICE_EXTENDED", ""),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE", ""),  # another API address (a local test server)
        "MIGRATION_JOBS": _int("MIGRATION_JOBS", 2 * (os.cpu_count() or 1)),
        # Password attempts (sign-in, API tokens, sign-up and invitations for an existing
        # account) per client address, all routes together…
        "SIGNIN_RATE_LIMIT": os.environ.get("SIGNIN_RATE_LIMIT", "10 per minute;100 per hour"),
        # …and per account (the submitted email), from however many addresses.
        "SIGNIN_ACCOUNT_RATE_LIMIT": os.environ.get("SIGNIN_ACCOUNT_RATE_LIMIT", "20 per hour"),
        "SIGNUP_RATE_LIMIT": os.environ.get("SIGNUP_RATE_LIMIT", "5 per minute"),
        # Exact windows: a fixed window lets twice the limit through around its boundary.
        "RATELIMIT_STRATEGY": "moving-window",
        "RATELIMIT_HEADERS_ENABLED": True,  # Retry-After tells clients how long to wait
        # A Redis that stops answering costs a request half a second, not forever; the limiter
        # then counts in memory (below) and looks for Redis again now and then.
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": redis_timeout, "socket_timeout": redis_timeout},
        "INVITATION_DAYS": _int("INVITATION_DAYS", 7),
        # Redis down: limit in memory per process rather than fail every sign-in.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "LANGUAGES": ["en", "ru"],
        "BABEL_DEFAULT_LOCALE": "en",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
    }


def database_url() -> str:
    return _sqlalchemy_url(os.environ.get("DATABASE_URL", ""))


def tenant_pool_size() -> int:
    return _int("TENANT_POOL_SIZE", 10)


def _sqlalchemy_url(url: str) -> str:
    """Accept the usual postgres:// and postgresql:// forms and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _instance_secret(instance: Path) -> str:
    """A secret key kept in the instance folder, so sessions survive restarts."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
