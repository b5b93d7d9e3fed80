"""Host → tenant resolution and the transaction-scoped search_path.

A probe blueprint (test-only routes) uses the app's real session and scoping to write and
read the tenant table `settings`, so pooled-connection reuse can be attacked directly.
"""
import pytest
from flask import Blueprint, jsonify
from sqlalchemy import select, text

from saas.settings.models import CompanySetting
from tenants.db import db
from tenants.scope import ScopeError, enter_tenant

from .conftest import client_for

probe = Blueprint("probe", __name__)


@probe.get("/_probe/write/<value>")
def write(value):
    db.session.merge(CompanySetting(key="secret", value=value))
    db.session.commit()
    return "ok"


@probe.get("/_probe/fail/<value>")
def fail(value):
    db.session.merge(CompanySetting(key="secret", value=value))
    db.session.flush()  # the row is written inside the open transaction…
    raise RuntimeError("…and the request dies before commit")


@probe.get("/_probe/sql-error/<value>")
def sql_error(value):
    db.session.merge(CompanySetting(key="secret", value=value))
    db.session.flush()
    db.session.execute(text("SELECT 1/0"))  # PostgreSQL aborts the transaction here
    return "unreachable"


@probe.get("/_probe/read")
def read():
    path = db.session.execute(text("SHOW search_path")).scalar()
    values = db.session.scalars(select(CompanySetting.value)).all()
    return jsonify(search_path=path, values=values)


@pytest.fixture
def probe_app(make_app):
    # One pooled connection only: every request reuses the very same server session.
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0}, PROPAGATE_EXCEPTIONS=False)
    app.register_blueprint(probe)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_unknown_and_foreign_hosts_are_404(app, make_tenant):
    make_tenant()
    assert client_for(app, "nosuchco.localhost:1").get("/").status_code == 404
    assert client_for(app, f"nosuchco-{id(app)}.{app.config['SERVER_NAME']}").get("/").status_code == 404
    assert client_for(app, "evil.example.com").get("/").status_code == 404
    assert client_for(app, f"a.b.{app.config['SERVER_NAME']}").get("/signin").status_code == 404


def test_tenant_host_and_public_site_serve_different_pages(app, make_tenant):
    company = make_tenant(name="Romashka")
    assert "Romashka" in client_for(app, company).get("/signin").get_data(as_text=True)
    assert client_for(app, app.config["SERVER_NAME"]).get("/signin").status_code == 404
    assert client_for(app, company).get("/signup").status_code == 404


def test_pooled_connection_never_carries_a_tenant_into_the_next_request(probe_app, make_tenant):
    a, b = make_tenant(name="A"), make_tenant(name="B")
    client_a, client_b = client_for(probe_app, a), client_for(probe_app, b)

    assert client_a.get("/_probe/write/alpha-secret").status_code == 200
    seen_by_b = client_b.get("/_probe/read").get_json()
    assert seen_by_b == {"search_path": f"t_{b.id}, public", "values": []}

    # A request of A's that fails mid-transaction, with A's row written but not committed.
    assert client_a.get("/_probe/fail/alpha-uncommitted").status_code == 500
    seen_by_b = client_b.get("/_probe/read").get_json()
    assert seen_by_b == {"search_path": f"t_{b.id}, public", "values": []}
    # …and one that PostgreSQL itself aborts with an error.
    assert client_a.get("/_probe/sql-error/alpha-aborted").status_code == 500
    seen_by_b = client_b.get("/_probe/read").get_json()
    assert seen_by_b == {"search_path": f"t_{b.id}, public", "values": []}
    assert client_a.get("/_probe/read").get_json()["values"] == ["alpha-secret"]


def test_the_pooled_connection_is_back_to_public_between_requests(probe_app, make_tenant):
    a = make_tenant()
    assert client_for(probe_app, a).get("/_probe/write/x").status_code == 200
    with probe_app.app_context():
        with db.engine.connect() as connection:  # the one pooled connection the request used
            assert connection.execute(text("SHOW search_path")).scalar() == '"$user", public'
            with pytest.raises(Exception, match="settings"):
                connection.execute(text("SELECT * FROM settings"))


def test_public_site_cannot_reach_tenant_tables(probe_app, make_tenant):
    make_tenant()
    response = client_for(probe_app, probe_app.config["SERVER_NAME"]).get("/_probe/read")
    assert response.status_code == 500  # relation "settings" does not exist under search_path=public


def test_scope_cannot_change_inside_an_open_transaction(app, make_tenant):
    a = make_tenant()
    from tenants.models import TenantRef, Tenant

    with app.app_context():
        tenant = TenantRef.of(db.session.get(Tenant, a.id))  # opens a transaction
        with pytest.raises(ScopeError):
            enter_tenant(tenant)
        db.session.rollback()


def test_suspended_tenant_is_refused(app, make_tenant):
    from saas.maintenance import set_tenant_status

    company = make_tenant()
    with app.app_context():
        set_tenant_status(company.slug, "suspended")
    response = client_for(app, company).get("/signin")
    assert response.status_code == 403
    assert "suspended" in response.get_data(as_text=True)
