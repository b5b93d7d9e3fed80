"""Background jobs on RQ: enqueued after commit with ids only, run inside app + tenant scope.

`enqueue_after_commit` is the only way services start jobs: the job is sent when the
surrounding transaction commits (and dropped if it rolls back), with the current tenant's
id in the job's meta. `TenantWorker` wraps every job in the app context (and gives a forked work
horse fresh database connections); `TenantJob` runs it in the tenant scope from its meta.
"""
from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, SimpleWorker, Worker
from rq.job import Job
from sqlalchemy import event

from tenants.db import db
from tenants.models import TenantRef
from tenants.registry import lookup_tenant
from tenants.scope import current_tenant, tenant_scope

DEFAULT_TIMEOUT = 300
_PENDING = "dealdocs_pending_jobs"


def redis_connection() -> Redis:
    """The app's Redis client. Short timeouts: a Redis that stops answering must fail requests
    quickly rather than hold every web thread."""
    app = current_app._get_current_object()
    if "dealdocs_redis" not in app.extensions:
        app.extensions["dealdocs_redis"] = Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)
    return app.extensions["dealdocs_redis"]


def queue() -> Queue:
    return Queue(current_app.config["QUEUE_NAME"], connection=redis_connection(), job_class=TenantJob)


def enqueue_after_commit(func, *args, timeout: int = DEFAULT_TIMEOUT, retries: int = 3, **kwargs) -> None:
    """Send `func(*args, **kwargs)` to the worker once the current transaction commits."""
    tenant = current_tenant()
    call = dict(
        f=func,
        args=args,
        kwargs=kwargs,
        # RQ logs the description; the default shows the arguments, which may be secrets
        # (an invitation's link token).
        description=f"{func.__module__}.{func.__name__}",
        job_timeout=timeout,
        retry=Retry(max=retries, interval=[5, 30, 120][:retries]) if retries else None,
        meta={"tenant_id": tenant.id if tenant else None},
    )
    db.session.info.setdefault(_PENDING, []).append(
        {**call, "savepoint": db.session().get_nested_transaction()})


@event.listens_for(db.session, "after_commit")
def _send_pending_jobs(session):
    # SQLAlchemy fires after_commit when a savepoint is released too: the rows are not visible
    # to a worker until the outermost transaction commits.
    if session.in_nested_transaction():
        return
    calls = session.info.pop(_PENDING, [])
    for call in calls:
        call = {name: value for name, value in call.items() if name != "savepoint"}
        try:
            queue().enqueue(**call)
        except RedisError:
            # The data is committed; failing the request now would tell the person it was not.
            current_app.logger.exception("could not enqueue %s", call["f"].__name__)


@event.listens_for(db.session, "after_soft_rollback")
def _drop_pending_jobs(session, previous_transaction):
    """Jobs queued inside a savepoint that rolled back go with it; the others wait for the commit."""
    pending = session.info.get(_PENDING)
    if not pending:
        return
    if previous_transaction.nested:
        session.info[_PENDING] = [call for call in pending if call["savepoint"] is not previous_transaction]
    elif previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def _load_tenant(tenant_id: int | None) -> TenantRef | None:
    if tenant_id is None:
        return None
    tenant = lookup_tenant(tenant_id=tenant_id)
    if tenant is None:
        raise LookupError(f"tenant {tenant_id} no longer exists")
    return tenant


class TenantJob(Job):
    """Runs its function inside the tenant scope recorded in its meta.

    Done here rather than in the worker so that a failure to enter the scope (the tenant was
    dropped meanwhile) fails this job visibly instead of the worker.
    """

    def perform(self):
        with tenant_scope(_load_tenant(self.meta.get("tenant_id"))):
            return super().perform()


class _AppContextMixin:
    """Runs each job inside the Flask app context."""

    flask_app = None

    def perform_job(self, job, queue, execution):
        with self.flask_app.app_context():
            return super().perform_job(job, queue, execution)

    def main_work_horse(self, job, queue):
        # The forked horse must not share the parent's pooled connections.
        with self.flask_app.app_context():
            db.engine.dispose(close=False)
        return super().main_work_horse(job, queue)


class TenantWorker(_AppContextMixin, Worker):
    """The production worker: forks a work horse per job (hard timeouts)."""


class TenantSimpleWorker(_AppContextMixin, SimpleWorker):
    """Runs jobs in-process: for tests and `--burst` maintenance runs."""


def make_worker(app, worker_class=TenantWorker):
    # The worker blocks on Redis for minutes waiting for jobs: its own client, no read timeout.
    connection = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=5)
    q = Queue(app.config["QUEUE_NAME"], connection=connection, job_class=TenantJob)
    worker = worker_class([q], connection=connection, job_class=TenantJob)
    worker.flask_app = app
    return worker
