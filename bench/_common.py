"""Shared plumbing for the DealDocs benchmarks (bench/*.py).

Scratch database, app configured like tests/conftest.py's app_config, fast tenant seeding
through the real sign_up() service, percentiles, stderr progress and Redis clean-up.
Nothing here is imported by the product.
"""
import argparse
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from saas import create_app
from saas.config import _sqlalchemy_url

RUN_ID = uuid.uuid4().hex[:8]
PASSWORD = "correct horse battery"
REPO = Path(__file__).resolve().parent.parent
STORAGE_DUMMY = "s3://dealdocs-bench-dummy/unused"  # nothing in these benchmarks touches blobs


def log(*parts) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer tenants/iterations (under a minute)")
    parser.add_argument("--tenants", type=int, default=None, help="override the number of existing tenants")
    return parser.parse_args()


def sigterm_as_exit() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks drop the scratch database."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))


# --- statistics ----------------------------------------------------------------------------

def p50(values) -> float:
    return statistics.median(values)


def p95(values) -> float:
    values = list(values)
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def rnd(value: float, digits: int = 3) -> float:
    return round(value, digits)


# --- servers -------------------------------------------------------------------------------

def base_database_url() -> str:
    return os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


@contextlib.contextmanager
def scratch_database():
    """Create dealdocs_bench_<random> next to DATABASE_URL's database; drop it at the end.

    Yields the plain postgresql:// URL (what DATABASE_URL would hold).
    """
    base = make_url(_sqlalchemy_url(base_database_url()))
    name = f"dealdocs_bench_{RUN_ID}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    log(f"scratch database {name} created")
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        yield url.replace("postgresql+psycopg://", "postgresql://", 1)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        log(f"scratch database {name} dropped")


def bench_config(database_url: str, tmp_dir: Path, **overrides) -> dict:
    """Like tests/conftest.py's app_config, without S3, with generous rate limits."""
    return {
        "SECRET_KEY": "bench-secret-" + RUN_ID,
        "SERVER_NAME": "localhost:5000",
        "SQLALCHEMY_DATABASE_URI": _sqlalchemy_url(database_url),
        "REDIS_URL": redis_url(),
        "RATELIMIT_KEY_PREFIX": f"dealdocs-bench-{RUN_ID}",
        "STORAGE_URL": STORAGE_DUMMY,
        "S3_ACCESS_KEY": "unused",
        "S3_SECRET_KEY": "unused",
        "QUEUE_NAME": f"dealdocs-bench-{RUN_ID}",
        "OUTBOX_DIR": str(tmp_dir / "outbox"),
        "SIGNIN_RATE_LIMIT": "1000000 per minute",
        "SIGNUP_RATE_LIMIT": "1000000 per minute",
        # MIGRATION_JOBS and TENANT_POOL_SIZE keep the app's defaults (2 x CPUs, 10)
        **overrides,
    }


def make_bench_app(database_url: str, tmp_dir: Path, **overrides):
    app = create_app(bench_config(database_url, tmp_dir, **overrides), instance_path=str(tmp_dir))
    return app


def cli_env(database_url: str, tmp_dir: Path) -> dict:
    """Environment for a `dealdocs …` subprocess against the scratch database."""
    env = os.environ.copy()
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url(),
        STORAGE_URL=STORAGE_DUMMY,
        SECRET_KEY="bench-secret-" + RUN_ID,  # else the app writes instance/secret_key
        DEALDOCS_INSTANCE=str(tmp_dir),
        QUEUE_NAME=f"dealdocs-bench-{RUN_ID}",
    )
    env.pop("MIGRATION_JOBS", None)
    return env


def cleanup_redis(app) -> None:
    """Drop the RQ queue (refill jobs queued by sign-ups) and the rate-limit keys of this run."""
    try:
        from rq import Queue

        from saas.jobs import redis_connection

        with app.app_context():
            connection = redis_connection()
            queue = Queue(app.config["QUEUE_NAME"], connection=connection)
            jobs = queue.count
            queue.empty()
            queue.delete(delete_jobs=True)
            keys = list(connection.scan_iter(match=f"*dealdocs-bench-{RUN_ID}*", count=1000))
            if keys:
                connection.delete(*keys)
        log(f"redis cleaned: {jobs} queued job(s), {len(keys)} other key(s)")
    except Exception as exc:  # clean-up must never hide the figures
        log(f"redis clean-up failed: {exc!r}")


# --- seeding -------------------------------------------------------------------------------

@contextlib.contextmanager
def precomputed_password_hash():
    """sign_up() hashes the password itself (Argon2id, tens of ms) and takes no hash argument.

    For seeding and for the "provisioning without hashing" figure, its module-level
    hash_password is swapped for one returning a real Argon2id hash of PASSWORD computed once
    beforehand, so owners can still sign in with PASSWORD. Restored on exit.
    """
    from saas.auth import passwords, services

    real = services.hash_password
    precomputed = passwords.hash_password(PASSWORD)
    services.hash_password = lambda password: precomputed
    try:
        yield precomputed
    finally:
        services.hash_password = real


def seed_tenants(app, count: int, prefix: str = "seed") -> float:
    """`count` tenants through the real sign_up() service (hash precomputed); returns seconds.

    The schema pool is left empty while seeding, so every sign-up builds its schema inline
    from the metadata (the same code as the pool filler), one transaction per tenant.
    """
    from saas.auth.services import sign_up
    from tenants.db import db

    started = time.perf_counter()
    with app.app_context(), precomputed_password_hash():
        for i in range(count):
            slug = f"{prefix}-{i}-{RUN_ID}"
            sign_up(company_name=f"Seed {i}", slug=slug, email=f"owner@{slug}.example.com",
                    password=PASSWORD, owner_name=f"Owner {i}")
            db.session.remove()
            if (i + 1) % max(1, count // 10) == 0:
                rate = (i + 1) / (time.perf_counter() - started)
                log(f"  seeded {i + 1}/{count} tenants ({rate:.0f}/s)")
    return time.perf_counter() - started


def tenant_count(app) -> int:
    from tenants.db import db

    with app.app_context(), db.engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM public.tenants")).scalar()


def upgrade_public(app) -> None:
    """Bring the scratch database to head the product's way (public tree; no tenants yet)."""
    from saas.maintenance import upgrade_everything

    with app.app_context():
        upgrade_everything(jobs=app.config["MIGRATION_JOBS"], echo=lambda message: log(f"  {message}"))


def loadavg() -> list[float]:
    """1/5/15-minute load averages: the machine is shared, so every run records them."""
    return [round(x, 2) for x in os.getloadavg()]


def server_settings(app) -> dict:
    """Server settings that change the figures (autovacuum off = catalogs never analyzed)."""
    from tenants.db import db

    with app.app_context(), db.engine.connect() as connection:
        return {name: connection.execute(text(f"SHOW {name}")).scalar()
                for name in ("server_version", "autovacuum", "fsync", "synchronous_commit")}


def temp_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=f"dealdocs-bench-{RUN_ID}-")


def release_app(app) -> None:
    """A run's end: its queued jobs and rate-limit keys gone, its database connections closed
    (so the scratch database can be dropped)."""
    from tenants.db import db

    cleanup_redis(app)
    with app.app_context():
        db.engine.dispose()


def finish(figures: dict, run_started: float) -> None:
    """Print the figures last, as one JSON line (with the run's wall time)."""
    import json

    figures["elapsed_s"] = rnd(time.perf_counter() - run_started, 1)
    log(f"done in {figures['elapsed_s']} s")
    print(json.dumps(figures), flush=True)
