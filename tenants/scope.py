"""The one place where database work is scoped to a tenant's schema.

A tenant scope is a context variable. Whenever the Flask-SQLAlchemy session begins a
transaction inside a scope, it runs `set_config('search_path', '<schema>, public', true)`:
the setting is transaction-local, so it ends with the commit or rollback and a pooled
connection never carries one tenant's schema into the next request.
"""
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event, text

from .db import db
from .models import TenantRef

_current: ContextVar[TenantRef | None] = ContextVar("dealdocs_tenant", default=None)


class ScopeError(RuntimeError):
    pass


def current_tenant() -> TenantRef | None:
    return _current.get()


def enter_tenant(tenant: TenantRef | None):
    """Make `tenant` the scope of every transaction begun from now on; returns a reset token."""
    if db.session().in_transaction():
        # Scoping applies when a transaction begins; switching in the middle of one would
        # leave it on the previous tenant's search_path.
        raise ScopeError("cannot change tenant scope inside an open transaction")
    return _current.set(tenant)


def leave_tenant(token) -> None:
    _current.reset(token)


@contextmanager
def tenant_scope(tenant: TenantRef | None):
    token = enter_tenant(tenant)
    try:
        yield tenant
    finally:
        db.session.remove()
        leave_tenant(token)


@event.listens_for(db.session, "after_begin")
def _scope_transaction(session, transaction, connection):
    tenant = _current.get()
    path = f"{tenant.schema}, public" if tenant is not None else "public"
    connection.execute(text("SELECT set_config('search_path', :path, true)"), {"path": path})
