"""Seats follow active people: whoever changes who is active calls `seats_changed` before commit."""
from sqlalchemy import func, select

from saas.auth.models import Membership
from saas.jobs import enqueue_after_commit
from tenants.db import db
from tenants.models import TenantRef


def active_users(tenant_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Membership).where(
        Membership.tenant_id == tenant_id, Membership.active.is_(True)))


def seats_changed(tenant: TenantRef) -> None:
    """After this transaction commits, bill as many seats as there are active people (a job:
    with Stripe it is an API call, which must neither slow the page nor undo the change)."""
    from . import tasks

    enqueue_after_commit(tasks.sync_seats, tenant.id, retries=3)
