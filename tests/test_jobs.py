"""Jobs run in the tenant scope of the request that queued them, and only after its commit."""
import uuid

from rq.registry import FailedJobRegistry
from sqlalchemy import text

from saas.jobs import enqueue_after_commit, queue
from saas.settings.models import CompanySetting
from tenants.db import db
from tenants.models import TenantRef
from tenants.registry import lookup_tenant
from tenants.scope import current_tenant, tenant_scope


def remember(value: str) -> str:
    """A job body: writes into whatever tenant scope the worker gives it."""
    db.session.merge(CompanySetting(key="remembered", value=value))
    db.session.commit()
    return current_tenant().slug


def _ref(tenant_id: int) -> TenantRef:
    return lookup_tenant(tenant_id=tenant_id)


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


def remember_then_fail(value: str) -> None:
    """A job body that writes, then dies before commit with its transaction still open."""
    db.session.merge(CompanySetting(key="unfinished", value=value))
    db.session.flush()
    raise RuntimeError("the job dies mid-transaction")


def test_a_failed_job_leaves_nothing_on_the_pooled_connection_for_the_next_tenant(make_app, make_tenant):
    """One pooled connection, three jobs in one worker: A fails mid-transaction, then A, then B."""
    from saas.jobs import TenantSimpleWorker, make_worker

    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0},
                   QUEUE_NAME=f"dealdocs-test-pool-{uuid.uuid4().hex[:8]}")
    a, b = make_tenant(name="A"), make_tenant(name="B")
    with app.app_context():
        for tenant, func, value in ((a, remember_then_fail, "A's unfinished"), (a, remember, "A's"),
                                    (b, remember, "B's")):
            with tenant_scope(_ref(tenant.id)):
                enqueue_after_commit(func, value, retries=0)
                db.session.commit()
    make_worker(app, TenantSimpleWorker).work(burst=True)
    assert _remembered(app, a.id) == "A's"
    assert _remembered(app, b.id) == "B's"
    with app.app_context(), db.engine.connect() as connection:
        for tenant in (a, b):
            assert connection.execute(text(f"SELECT count(*) FROM t_{tenant.id}.settings WHERE key = 'unfinished'")
                                      ).scalar() == 0
        db.engine.dispose()
