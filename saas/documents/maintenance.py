"""Keeping the quota ledger true to the bucket (run hourly: `dealdocs storage reconcile`), and
documents whose card was purged from the recycle bin going with it.

A crash between writing a blob and committing its document leaves a reservation that is never
settled and a blob that nothing lists. For each tenant, one at a time: reservations older than
an hour are released (and their blobs deleted unless a version names them), blobs that no
version and no live reservation names are deleted, and usage is set to what the versions say.
"""
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from itertools import islice

from sqlalchemy import exists, select
from tqdm import tqdm

from saas.blobs import blob_store
from saas.crm.models import RECORD_MODELS
from storage import ledger
from tenants.db import db
from tenants.models import Tenant, TenantRef
from tenants.scope import tenant_scope

from . import services
from .models import Document, Version

STALE_AFTER = timedelta(hours=1)  # no upload takes that long to commit after it reserved
BATCH = 1000


@dataclass
class Reconciled:
    tenants: int = 0
    stale_reservations: int = 0
    orphan_blobs: int = 0
    corrected: list = field(default_factory=list)  # (slug, ledger said, versions say)

    def as_dict(self) -> dict:
        return asdict(self)


def reconcile_all(echo=print) -> Reconciled:
    """Reconcile every tenant, one tenant scope at a time; `echo` says what changed."""
    tenants = [TenantRef.of(t) for t in db.session.scalars(select(Tenant).order_by(Tenant.id))]
    stale = defaultdict(list)
    for reservation in ledger.stale_reservations(STALE_AFTER):
        stale[reservation.tenant_id].append((reservation.id, reservation.key))
    db.session.commit()  # the scope may only change outside a transaction
    done = Reconciled()
    for tenant in tqdm(tenants, desc="storage", unit="tenant", disable=len(tenants) < 20):
        with tenant_scope(tenant):
            released = _release_stale(stale[tenant.id])
            orphans = _delete_orphans(tenant)
            before, after = _correct_usage(tenant)
        done.tenants += 1
        done.stale_reservations += released
        done.orphan_blobs += orphans
        if before != after:
            done.corrected.append((tenant.slug, before, after))
        if released or orphans or before != after:
            echo(f"{tenant.slug}: {released} stale reservation(s) released, {orphans} orphan blob(s) deleted, "
                 f"usage {before} → {after} bytes.")
    echo(f"{done.tenants} tenant(s): {done.stale_reservations} stale reservation(s) released, "
         f"{done.orphan_blobs} orphan blob(s) deleted, {len(done.corrected)} usage figure(s) corrected.")
    return done


def _release_stale(reservations: list) -> int:
    """Give the reservations back, then delete their blobs unless a version names them.

    Release comes first: an upload settling at this moment either wins (its version is then
    visible below and its blob stays) or finds its reservation gone and undoes itself."""
    for reservation_id, key in reservations:
        ledger.release(reservation_id)
        if not _referenced([key]):
            blob_store().delete(key)
    db.session.commit()
    return len(reservations)


def _delete_orphans(tenant: TenantRef) -> int:
    """Delete the tenant's blobs that no version and no live reservation names.

    Each batch is listed before its keys are looked up: a blob being uploaded has its
    reservation until the same commit that makes its version visible."""
    deleted = 0
    listed = (key for key, _size in blob_store().keys(tenant.blob_prefix))
    while batch := list(islice(listed, BATCH)):
        reserved = set(db.session.scalars(select(ledger.Reservation.key).where(
            ledger.Reservation.tenant_id == tenant.id, ledger.Reservation.key.in_(batch))))
        db.session.commit()
        kept = reserved | _referenced(batch)
        for key in batch:
            if key not in kept:
                blob_store().delete(key)
                deleted += 1
    return deleted


def _referenced(keys: list[str]) -> set[str]:
    found = set(db.session.scalars(select(Version.blob_key).where(Version.blob_key.in_(keys))))
    db.session.commit()
    return found


def _correct_usage(tenant: TenantRef) -> tuple[int, int]:
    """Set usage to the bytes of the stored versions; (before, after).

    The ledger row is locked first, so an upload settling now either committed before the
    sum (and is in it) or settles after the correction (and adds to it)."""
    db.session.execute(select(ledger.LedgerRow.tenant_id).where(ledger.LedgerRow.tenant_id == tenant.id)
                       .with_for_update())
    before, _reserved = ledger.usage(tenant.id)
    after = services.stored_bytes()
    if before != after:
        ledger.set_used(tenant.id, after)
    db.session.commit()
    return before, after


def purge_cardless(tenant: TenantRef) -> tuple[int, list[str]]:
    """Delete the documents whose deal, company or contact no longer exists (purged from the
    recycle bin) and give their bytes back; (bytes freed, blob keys). As with
    services.purge_expired, the caller deletes the blobs once this has committed."""
    doomed = []
    for entity in services.CARDS:
        card = RECORD_MODELS[entity]
        doomed += db.session.scalars(select(Document).where(
            Document.entity == entity, ~exists().where(card.id == Document.record_id)))
    return services.remove(tenant, doomed)


def sweep_all_generation(echo=lambda line: None) -> dict:
    """Every tenant's documents left *generating* by a dead worker or a lost job (generation.sweep),
    one tenant scope at a time (run it every few minutes, and it runs when a worker starts)."""
    from .generation import sweep

    tenants = [TenantRef.of(t) for t in db.session.scalars(select(Tenant).order_by(Tenant.id))]
    db.session.commit()
    total = {"requeued": 0, "failed": 0}
    for tenant in tqdm(tenants, desc="generation", unit="tenant", disable=len(tenants) < 20):
        with tenant_scope(tenant):
            swept = sweep()
            db.session.commit()
        for key in total:
            total[key] += swept[key]
        if any(swept.values()):
            echo(f"{tenant.slug}: {swept['requeued']} document(s) queued again, {swept['failed']} failed.")
    return total
