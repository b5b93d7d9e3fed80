"""Test harness: real PostgreSQL, Redis, a SeaweedFS S3 server, the app, fresh tenants per test,
a worker that runs queued jobs, and a real browser.

PostgreSQL and Redis: the running services when DATABASE_URL/REDIS_URL are set or 127.0.0.1
answers on the usual port, else embedded servers. Each test run gets its own database.
"""
import os
import re
import socket
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from saas import create_app
from saas.config import _sqlalchemy_url
from saas.runtime.embedded import free_port, start_postgres, start_redis, start_s3
from tenants.db import db

RUN_ID = uuid.uuid4().hex[:8]
PASSWORD = "correct horse battery"


def _answers(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# --- servers -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    base = os.environ.get("DATABASE_URL")
    embedded = None
    if not base and _answers("127.0.0.1", 5432):
        base = "postgresql://postgres@127.0.0.1:5432/postgres"
    if not base:
        embedded = start_postgres(tmp_path_factory.mktemp("postgres"))
        base = embedded.url
    base_url = make_url(_sqlalchemy_url(base))
    name = f"dealdocs_test_{RUN_ID}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield base_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    if embedded:
        embedded.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
    elif _answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
    else:
        service = start_redis(tmp_path_factory.mktemp("redis"))
        yield service.url
        service.stop()


S3_KEYS = {"access_key": "dealdocs-test", "secret_key": "dealdocs-test-secret-" + RUN_ID}


@pytest.fixture(scope="session")
def storage_url(tmp_path_factory):
    service = start_s3(tmp_path_factory.mktemp("s3"), bucket="dealdocs-test", **S3_KEYS)
    yield service.url
    service.stop()


# --- the app -------------------------------------------------------------------------------

LIVE_PORT = free_port()
SERVER_NAME = f"localhost:{LIVE_PORT}"


def app_config(database_url, redis_url, storage_url, tmp_dir: Path, **overrides) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-" + RUN_ID,
        "SERVER_NAME": SERVER_NAME,
        "SQLALCHEMY_DATABASE_URI": _sqlalchemy_url(database_url),
        "REDIS_URL": redis_url,
        "RATELIMIT_KEY_PREFIX": f"dealdocs-test-{RUN_ID}-{uuid.uuid4().hex[:6]}",
        "STORAGE_URL": storage_url,
        "S3_ACCESS_KEY": S3_KEYS["access_key"],
        "S3_SECRET_KEY": S3_KEYS["secret_key"],
        "QUEUE_NAME": f"dealdocs-test-{RUN_ID}",
        "OUTBOX_DIR": str(tmp_dir / "outbox"),
        "TENANT_POOL_SIZE": 2,
        "MIGRATION_JOBS": 2,
        "SIGNIN_RATE_LIMIT": "1000 per minute",
        "SIGNUP_RATE_LIMIT": "1000 per minute",
        **overrides,
    }


@pytest.fixture(scope="session")
def app(database_url, redis_url, storage_url, tmp_path_factory):
    instance = tmp_path_factory.mktemp("instance")
    app = create_app(app_config(database_url, redis_url, storage_url, instance), instance_path=str(instance))
    with app.app_context():
        from saas.maintenance import upgrade_everything

        upgrade_everything(jobs=2)
    return app


@pytest.fixture
def make_app(database_url, redis_url, storage_url, tmp_path):
    """Another app on the same servers with some settings changed (e.g. tight rate limits)."""
    def factory(**overrides):
        return create_app(app_config(database_url, redis_url, storage_url, tmp_path, **overrides),
                          instance_path=str(tmp_path))
    return factory


@pytest.fixture
def outbox(app):
    path = Path(app.config["OUTBOX_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.eml"):
        old.unlink()
    return path


# --- factories -----------------------------------------------------------------------------

@dataclass
class Company:
    id: int
    slug: str
    name: str
    owner_email: str
    owner_id: int
    password: str = PASSWORD

    @property
    def host(self) -> str:
        return f"{self.slug}.{SERVER_NAME}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"


def unique_slug(prefix: str = "co") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_tenant(app):
    """make_tenant(name=…, slug=…, owner_email=…) → a fresh company with its owner."""
    from saas.auth.services import sign_up

    def factory(name: str = "Acme", slug: str | None = None, owner_email: str | None = None,
                password: str = PASSWORD) -> Company:
        slug = slug or unique_slug()
        email = owner_email or f"owner@{slug}.example.com"
        with app.app_context():
            tenant, user = sign_up(company_name=name, slug=slug, email=email, password=password,
                                   owner_name=f"{name} Owner")
            return Company(tenant.id, tenant.slug, tenant.name, email, user.id, password)
    return factory


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


class HostClient(FlaskClient):
    """A test client whose every request goes to one host (a company's, or the public site)."""

    host = None

    def open(self, *args, **kwargs):
        kwargs.setdefault("base_url", f"http://{self.host}")
        return super().open(*args, **kwargs)


def client_for(app, company_or_host) -> HostClient:
    host = company_or_host.host if isinstance(company_or_host, Company) else company_or_host
    app.test_client_class = HostClient
    client = app.test_client()
    client.host = host
    return client


def sign_in(app, company: Company, email: str | None = None, password: str | None = None):
    """A test client signed in on `company`'s host through the real sign-in form."""
    client = client_for(app, company)
    page = client.get("/signin")
    response = client.post("/signin", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)),
        "email": email or company.owner_email,
        "password": password or company.password,
    })
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def api_token(app, company: Company, email: str | None = None, password: str | None = None) -> str:
    response = client_for(app, company).post("/api/v1/tokens", json={
        "email": email or company.owner_email, "password": password or company.password})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


@pytest.fixture
def limited_app(make_app):
    """An app with tight rate limits (3 sign-ins, 2 sign-ups a minute)."""
    limited = make_app(SIGNIN_RATE_LIMIT="3 per minute", SIGNUP_RATE_LIMIT="2 per minute")
    yield limited
    with limited.app_context():
        db.engine.dispose()


@pytest.fixture
def tuned_app(make_app):
    """tuned_app(**config) → an app with generous rate limits but these settings, disposed afterwards."""
    made = []

    def factory(**overrides):
        made.append(make_app(**{"SIGNIN_RATE_LIMIT": "1000 per minute", "SIGNIN_ACCOUNT_RATE_LIMIT": "1000 per minute",
                                "SIGNUP_RATE_LIMIT": "1000 per minute", **overrides}))
        return made[-1]
    yield factory
    for app in made:
        with app.app_context():
            db.engine.dispose()


def from_fresh_address(app, host) -> "HostClient":
    """A client with its own remote address, so rate-limit counters never mix between tests."""
    client = client_for(app, host)
    client.environ_base["REMOTE_ADDR"] = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    return client


@pytest.fixture
def run_jobs(app):
    """run_jobs() → runs every queued job in-process (a real RQ worker, burst mode)."""
    from saas.jobs import TenantSimpleWorker, make_worker

    def run():
        worker = make_worker(app, TenantSimpleWorker)
        worker.work(burst=True)
        return worker
    return run


@pytest.fixture
def live_worker(app):
    """A real `dealdocs worker` process (forking a work horse per job) on the test's servers and
    queue, for as long as the test runs; yields the process."""
    import subprocess
    import sys

    config = app.config
    env = {**os.environ, "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": config["REDIS_URL"],
           "STORAGE_URL": config["STORAGE_URL"], "S3_ACCESS_KEY": config["S3_ACCESS_KEY"],
           "S3_SECRET_KEY": config["S3_SECRET_KEY"], "SECRET_KEY": config["SECRET_KEY"],
           "SERVER_NAME": config["SERVER_NAME"], "QUEUE_NAME": config["QUEUE_NAME"],
           "OUTBOX_DIR": config["OUTBOX_DIR"]}
    process = subprocess.Popen([sys.executable, "-m", "saas.cli", "worker"], env=env, start_new_session=True,
                               stdin=subprocess.DEVNULL)
    yield process
    from saas.cli import _stop_process

    _stop_process(process, warm=2, cold=2)


# --- a live server and a browser -------------------------------------------------------------

@pytest.fixture(scope="session")
def live_server(app):
    from waitress import create_server

    server = create_server(app, host="127.0.0.1", port=LIVE_PORT, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://{SERVER_NAME}"
    server.close()


CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-gpu", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                             args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()
