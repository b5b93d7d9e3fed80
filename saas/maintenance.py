"""Operator work across tenants: migrations, status changes, dropping a tenant."""
import time

import click
from flask import current_app
from sqlalchemy import func, select, text, update
from tqdm import tqdm

from migrations import PUBLIC, TENANT

from tenants.db import db
from tenants.migrate import pending_tenants, upgrade_schema, upgrade_tenant_schemas
from tenants.models import Tenant, TenantRef
from tenants.provisioning import drop_tenant_schema, fill_pool

_UPGRADE_LOCK = 0x7E4A12  # advisory lock id: one `db upgrade` at a time (serve start-up, operators)

def upgrade_everything(jobs: int, echo=print) -> dict[str, str]:
    """Public tree first, then every tenant schema not at head, then a fresh schema pool.

    Returns the failures by schema. Runs one at a time: a second caller waits for the first.
    """
    with db.engine.connect() as lock_connection:
        if not lock_connection.execute(select(func.pg_try_advisory_lock(_UPGRADE_LOCK))).scalar():
            echo("Another `dealdocs db upgrade` is running; waiting for it…")
            lock_connection.execute(select(func.pg_advisory_lock(_UPGRADE_LOCK)))
        lock_connection.commit()  # the lock is the session's; no transaction stays open meanwhile
        try:
            return _upgrade_everything(jobs, echo)
        finally:
            lock_connection.execute(select(func.pg_advisory_unlock(_UPGRADE_LOCK)))
            lock_connection.commit()

def _upgrade_everything(jobs: int, echo) -> dict[str, str]:
    started = time.perf_counter()
    with db.engine.begin() as connection:
        applied = upgrade_schema(connection, PUBLIC, "public")
    if applied:
        echo(f"public: applied {', '.join(applied)}")
    url = db.engine.url.render_as_string(hide_password=False)
    with db.engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(Tenant)).scalar()
        pending = pending_tenants(connection, TENANT)
    failed: dict[str, str] = {}
    if pending:
        with tqdm(total=len(pending), desc="tenant schemas", unit="schema") as bar:
            summary = upgrade_tenant_schemas(url, TENANT, pending, jobs=jobs,
                                             on_progress=lambda schema, error: bar.update())
        failed = summary.failed
        for schema, error in sorted(failed.items()):
            echo(click.style(f"FAILED {schema}: {error}", fg="red"))
        echo(f"{len(summary.upgraded)} upgraded, {len(failed)} failed, "
             f"{total - len(pending)} already at head ({time.perf_counter() - started:.1f} s)")
        if failed:
            echo("Fix the cause and run `dealdocs db upgrade` again: it resumes with the ones left.")
    else:
        echo(f"All {total} tenant schema(s) at head ({time.perf_counter() - started:.2f} s).")
    # Pooled schemas built before this migration are dropped and rebuilt at the new head.
    fill_pool(db.engine, current_app.config["TENANT_POOL_SIZE"])
    return failed

def find_tenant_or_fail(slug: str) -> TenantRef:
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise click.ClickException(f"No tenant with slug {slug!r}.")
    return TenantRef.of(tenant)

def set_tenant_status(slug: str, status: str) -> None:
    find_tenant_or_fail(slug)
    db.session.execute(update(Tenant).where(Tenant.slug == slug).values(status=status))
    db.session.commit()

def stop_charging(tenant_id: int) -> None:
    """A company being deleted must not go on paying: its live Stripe subscription is cancelled
    first (if Stripe refuses, the drop stops here, with the company suspended and intact)."""
    from billing import stripe_provider
    from billing.services import subscription_of

    row = subscription_of(tenant_id)
    if stripe_provider.enabled() and row.stripe_subscription_id:
        stripe_provider.cancel_now_by_id(row.stripe_subscription_id)
    db.session.rollback()


def drop_tenant(tenant: TenantRef) -> int:
    """Suspend (no new data), delete the blobs, then the schema and the registry row together."""
    from saas.blobs import blob_store

    set_tenant_status(tenant.slug, "suspended")
    stop_charging(tenant.id)
    deleted = blob_store().delete_prefix(tenant.blob_prefix)
    with db.engine.begin() as connection:
        drop_tenant_schema(connection, tenant.id)
        connection.execute(text("DELETE FROM public.tenants WHERE id = :id"), {"id": tenant.id})
    return deleted

def purge_recycle_bins(echo=print) -> int:
    """Remove for good what any tenant deleted more than 30 days ago (records, and documents with
    their files, whose bytes go back to the quota); returns the count of records."""
    from saas.blobs import blob_store
    from saas.crm.services import purge_expired
    from saas.documents import services as documents
    from saas.documents.maintenance import purge_cardless
    from tenants.scope import tenant_scope

    tenants = [TenantRef.of(t) for t in db.session.scalars(select(Tenant).order_by(Tenant.id))]
    db.session.commit()  # the scope may only change outside a transaction
    purged = 0
    for tenant in tqdm(tenants, desc="recycle bins", unit="tenant", disable=len(tenants) < 20):
        with tenant_scope(tenant):
            count = purge_expired()
            freed, keys = documents.purge_expired(tenant)
            freed_too, more = purge_cardless(tenant)  # documents of the records purged just now
            db.session.commit()
        freed, keys = freed + freed_too, keys + more
        for key in keys:  # only once the rows are gone: a rolled-back purge keeps every file
            blob_store().delete(key)
        if count:
            echo(f"{tenant.slug}: {count} record(s) purged.")
        if keys:
            echo(f"{tenant.slug}: {len(keys)} file(s) purged, {documents.human_size(freed)} freed.")
        purged += count
    return purged
