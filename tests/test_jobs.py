"""Jobs run in the tenant scope of the request that queued them, and only after its commit."""
from rq.registry import FailedJobRegistry
from sqlalchemy import select, text

from saas.jobs import enqueue_after_commit, queue
from saas.settings.models import CompanySetting
from tenants.db import db
from tenants.models import Tenant, TenantRef
from tenants.scope import current_tenant, tenant_scope


def remember(value: str) -> str:
    """A job body: writes into whatever tenant scope the worker gives it."""
    db.session.merge(CompanySetting(key="remembered", value=value))
    db.session.commit()
    return current_tenant().slug


def _ref(tenant_id: int) -> TenantRef:
    with db.engine.connect() as connection:
        row = connection.execute(select(Tenant.__table__).where(Tenant.id == tenant_id)).one()
    return TenantRef(row.id, row.uuid, row.name, row.slug, row.plan, row.status)


def _queue_in(tenant: TenantRef, value: str, commit: bool = True, retries: int = 3) -> None:
    with tenant_scope(tenant):
        db.session.merge(CompanySetting(key="queued", value=value))
        enqueue_after_commit(remember, value, retries=retries)
        db.session.commit() if commit else db.session.rollback()


def _remembered(app, tenant_id: int):
    with app.app_context(), db.engine.connect() as connection:
        return connection.execute(text(f"SELECT value FROM t_{tenant_id}.settings WHERE key = 'remembered'")
                                  ).scalar()


def test_a_job_works_in_its_own_tenant_only(app, make_tenant, run_jobs):
    a, b = make_tenant(name="A"), make_tenant(name="B")
    with app.app_context():
        _queue_in(_ref(a.id), "for A")
    run_jobs()
    assert _remembered(app, a.id) == "for A"
    assert _remembered(app, b.id) is None


def test_a_rolled_back_transaction_sends_no_job(app, make_tenant, run_jobs):
    a = make_tenant()
    with app.app_context():
        before = queue().count
        _queue_in(_ref(a.id), "never", commit=False)
        assert queue().count == before
    run_jobs()
    assert _remembered(app, a.id) is None


def test_a_job_for_a_dropped_tenant_fails_visibly(app, make_tenant, run_jobs):
    from saas.maintenance import drop_tenant

    a = make_tenant()
    with app.app_context():
        tenant = _ref(a.id)
        _queue_in(tenant, "orphan", retries=0)
        drop_tenant(tenant)
        failed = FailedJobRegistry(queue=queue())
        before = set(failed.get_job_ids())
    run_jobs()
    with app.app_context():
        new = set(FailedJobRegistry(queue=queue()).get_job_ids()) - before
        assert len(new) == 1
        job = queue().fetch_job(new.pop())
        assert "no longer exists" in job.latest_result().exc_string
