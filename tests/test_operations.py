"""Operators' commands: db upgrade across tenants, tenants list/create/suspend/drop, /healthz."""
import io

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import text

from saas.blobs import blob_store
from saas.cli import cli
from migrations import TENANT
from tenants.db import TenantModel, db
from tenants.migrate import head_revision

from .conftest import PASSWORD, client_for, unique_slug

HEAD = head_revision(TENANT)


@pytest.fixture
def run_cli(app, monkeypatch):
    # `db upgrade` answers a no-op from DATABASE_URL before building the app: same database.
    monkeypatch.setenv("DATABASE_URL", app.config["SQLALCHEMY_DATABASE_URI"])
    monkeypatch.setenv("TENANT_POOL_SIZE", str(app.config["TENANT_POOL_SIZE"]))

    def run(*args, input=None):
        return CliRunner().invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: app), input=input)
    return run


def _sql(app, statement: str, **params):
    with app.app_context(), db.engine.begin() as connection:
        result = connection.execute(text(statement), params)
        return result.all() if result.returns_rows else None


def _reset_to_base(app, tenant_id: int) -> None:
    """Put a tenant schema back before its first migration (as if it predated it)."""
    tables = ", ".join(f"t_{tenant_id}.{table.name}" for table in TenantModel.metadata.sorted_tables)
    _sql(app, f"DROP TABLE {tables} CASCADE; DELETE FROM t_{tenant_id}.alembic_version;"
              f" UPDATE public.tenants SET schema_revision = NULL WHERE id = {tenant_id}")


def test_db_upgrade_reports_failures_without_stopping_others_and_resumes(app, make_tenant, run_cli):
    healthy, broken = make_tenant(name="Healthy"), make_tenant(name="Broken")
    _reset_to_base(app, healthy.id)
    _reset_to_base(app, broken.id)
    # An object in the way makes the broken tenant's migration fail.
    _sql(app, f"CREATE TABLE t_{broken.id}.settings (squatter int)")

    result = run_cli("db", "upgrade", "--jobs", "2")
    assert result.exit_code == 1, result.output
    assert f"FAILED t_{broken.id}" in result.output and "already exists" in result.output
    assert "1 upgraded, 1 failed" in result.output
    assert _sql(app, f"SELECT version_num FROM t_{healthy.id}.alembic_version") == [(HEAD,)]
    assert _sql(app, f"SELECT version_num FROM t_{broken.id}.alembic_version") == []
    # The registry says the same as each schema's own version table.
    assert _sql(app, "SELECT id, schema_revision FROM public.tenants WHERE id IN (:a, :b) ORDER BY id",
                a=healthy.id, b=broken.id) == sorted([(healthy.id, HEAD), (broken.id, None)])
    # The failed tenant's transaction rolled back whole: the squatter is untouched.
    assert _sql(app, f"SELECT column_name FROM information_schema.columns WHERE table_schema = 't_{broken.id}'"
                     " AND table_name = 'settings'") == [("squatter",)]

    _sql(app, f"DROP TABLE t_{broken.id}.settings")
    result = run_cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "1 upgraded, 0 failed" in result.output  # resumed: only the one left behind
    assert _sql(app, f"SELECT version_num FROM t_{broken.id}.alembic_version") == [(HEAD,)]

    result = run_cli("db", "upgrade")
    assert result.exit_code == 0 and "Nothing to upgrade" in result.output
    assert _sql(app, "SELECT count(*) FROM public.tenants WHERE schema_revision IS DISTINCT FROM :head",
                head=HEAD) == [(0,)]


def test_tenants_create_list_suspend_activate(app, run_cli):
    slug = unique_slug("cli")
    result = run_cli("tenants", "create", "--name", "Romashka LLC", "--slug", slug,
                     "--owner-email", f"boss@{slug}.example.com", "--owner-password", PASSWORD)
    assert result.exit_code == 0, result.output
    assert f"http://{slug}.{app.config['SERVER_NAME']}/" in result.output
    listing = run_cli("tenants", "list").output
    assert slug in listing and "Romashka LLC" in listing and "active" in listing

    host = f"{slug}.{app.config['SERVER_NAME']}"
    assert run_cli("tenants", "suspend", slug).exit_code == 0
    assert client_for(app, host).get("/signin").status_code == 403
    assert run_cli("tenants", "activate", slug).exit_code == 0
    assert client_for(app, host).get("/signin").status_code == 200

    taken = run_cli("tenants", "create", "--name", "X", "--slug", slug, "--owner-email", "x@example.com",
                    "--owner-password", PASSWORD)
    assert taken.exit_code != 0 and "taken" in taken.output
    assert run_cli("tenants", "suspend", "no-such-company").exit_code != 0


def test_tenants_drop_asks_first_and_removes_schema_rows_and_only_its_blobs(app, make_tenant, run_cli):
    doomed, neighbour = make_tenant(name="Doomed"), make_tenant(name="Neighbour")
    with app.app_context():
        uuids = dict(_sql(app, "SELECT id, uuid FROM public.tenants WHERE id IN (:a, :b)", a=doomed.id,
                          b=neighbour.id))
        store = blob_store()
        for tenant_id in (doomed.id, neighbour.id):
            for n in range(3):
                store.put(f"t/{uuids[tenant_id]}/blob-{n}", io.BytesIO(b"contract text"))

    refused = run_cli("tenants", "drop", doomed.slug, input="n\n")
    assert refused.exit_code != 0 and "Aborted" in refused.output
    assert _sql(app, "SELECT count(*) FROM public.tenants WHERE id = :i", i=doomed.id) == [(1,)]

    result = run_cli("tenants", "drop", doomed.slug, input="y\n")
    assert result.exit_code == 0, result.output
    assert "3 blob(s)" in result.output
    assert _sql(app, "SELECT count(*) FROM public.tenants WHERE id = :i", i=doomed.id) == [(0,)]
    assert _sql(app, "SELECT count(*) FROM public.memberships WHERE tenant_id = :i", i=doomed.id) == [(0,)]
    assert _sql(app, "SELECT count(*) FROM pg_namespace WHERE nspname = :s", s=f"t_{doomed.id}") == [(0,)]
    with app.app_context():
        client = blob_store().client
        bucket = blob_store().bucket
        left = client.list_objects_v2(Bucket=bucket, Prefix=f"t/{uuids[doomed.id]}/").get("KeyCount")
        kept = client.list_objects_v2(Bucket=bucket, Prefix=f"t/{uuids[neighbour.id]}/").get("KeyCount")
    assert (left, kept) == (0, 3)
    assert client_for(app, doomed).get("/signin").status_code == 404
    # The owner keeps their account (people may belong to several companies).
    assert _sql(app, "SELECT count(*) FROM public.users WHERE email = :e", e=doomed.owner_email) == [(1,)]


def test_healthz_ok(app):
    response = client_for(app, "anything.example").get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize("broken, override", [
    ("database", {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2"}),
    ("redis", {"REDIS_URL": "redis://127.0.0.1:1/0"}),
    ("s3", {"STORAGE_URL": "s3://dealdocs-test?endpoint=http://127.0.0.1:1&region=us-east-1"}),
])
def test_healthz_names_the_service_that_does_not_answer(make_app, broken, override):
    app = make_app(**override)
    response = client_for(app, app.config["SERVER_NAME"]).get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["failing"] == [broken]


def test_sign_up_succeeds_and_says_so_when_redis_is_down(make_app):
    """The company is committed before jobs are sent: a queue outage must not report a failure."""
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    slug = unique_slug("noredis")
    response = client_for(app, app.config["SERVER_NAME"]).post("/api/v1/signup", json={
        "company_name": "No Redis", "slug": slug, "email": f"boss@{slug}.example.com", "password": PASSWORD})
    assert response.status_code == 201, response.get_json()
    assert _sql(app, "SELECT count(*) FROM public.tenants WHERE slug = :s", s=slug) == [(1,)]


def test_a_tenant_whose_table_is_busy_fails_fast_and_the_others_upgrade(app, make_tenant):
    """A long transaction in one tenant must not stall the upgrade (nor queue its requests behind it)."""
    from migrations import TENANT
    from tenants.migrate import upgrade_tenant_schemas

    busy, free = make_tenant(name="Busy"), make_tenant(name="Free")
    for company in (busy, free):
        _reset_to_base(app, company.id)
    with app.app_context():
        url = db.engine.url.render_as_string(hide_password=False)
        holder = db.engine.connect()  # someone's long transaction holding the busy tenant's table
        holder.execute(text(f"LOCK TABLE t_{busy.id}.alembic_version IN ACCESS EXCLUSIVE MODE"))
        try:
            summary = upgrade_tenant_schemas(url, TENANT, [busy.id, free.id], jobs=2, lock_timeout_ms=300)
        finally:
            holder.rollback()
            holder.close()
    assert summary.upgraded == [f"t_{free.id}"]
    assert "lock timeout" in summary.failed[f"t_{busy.id}"]
