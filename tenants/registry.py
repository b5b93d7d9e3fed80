"""Looking tenants up in the registry, as detached TenantRefs."""
from sqlalchemy import select

from .db import db
from .models import Tenant, TenantRef


def lookup_tenant(*, slug: str | None = None, tenant_id: int | None = None) -> TenantRef | None:
    """The tenant with this slug or id, or None.

    Uses its own short connection: callers set the tenant scope from the answer, and the
    request's or job's session must begin its first transaction only after that.
    """
    column, value = (Tenant.slug, slug) if slug is not None else (Tenant.id, tenant_id)
    with db.engine.connect() as connection:
        row = connection.execute(select(Tenant.__table__).where(column == value)).first()
    return TenantRef(row.id, row.uuid, row.name, row.slug, row.status) if row else None
