"""The quota ledger (public schema): bytes each tenant stores, and bytes being written now.

Admission is one atomic statement: a reservation is granted only if used + reserved + n
stays within the limit the caller hands in (storage knows limits, not plans). A write then
either commits its reservation into usage (with the bytes it really wrote) or releases it.
Each reservation is also a row naming the blob it is for, so a crash between writing the
blob and committing leaves a trace the reconciler can clean up.
"""
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, Uuid, delete, insert, select, text, true, update
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from tenants.db import PublicModel, db
from tenants.models import utcnow


class LedgerRow(PublicModel):
    __tablename__ = "storage_ledger"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("public.tenants.id", ondelete="CASCADE"), primary_key=True,
                                           autoincrement=False)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class Reservation(PublicModel):
    __tablename__ = "storage_reservations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("public.tenants.id", ondelete="CASCADE"), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(200))  # the blob being written under it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QuotaExceeded(Exception):
    def __init__(self, limit: int, used: int, wanted: int):
        super().__init__(f"quota exceeded: {used} + {wanted} > {limit}")
        self.limit, self.used, self.wanted = limit, used, wanted


_LOCKED = "storage_ledger_locked"  # this session's transaction holds ledger rows (settle/free ran)


@contextmanager
def _own_transaction():
    """Reservations commit at once on their own connection, so concurrent uploads see them —
    unless this session's open transaction already holds the ledger row (a second upload in one
    transaction): waiting for ourselves would never end, so then they join that transaction."""
    if db.session.info.get(_LOCKED):
        yield db.session.connection()
        return
    with db.engine.begin() as connection:
        yield connection


def _mark_locked() -> None:
    db.session.info[_LOCKED] = True


@event.listens_for(Session, "after_transaction_end")
def _unlock(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_LOCKED, None)


def usage(tenant_id: int) -> tuple[int, int]:
    """(used, reserved) bytes of a tenant."""
    row = db.session.execute(select(LedgerRow.used_bytes, LedgerRow.reserved_bytes)
                             .where(LedgerRow.tenant_id == tenant_id)).first()
    return (row.used_bytes, row.reserved_bytes) if row else (0, 0)


def reserve(tenant_id: int, size: int, limit: int | None, key: str) -> uuid.UUID:
    """Hold `size` bytes for the blob `key`, committed at once (other uploads see it).

    Raises QuotaExceeded when used + reserved + size would pass `limit` (None: no limit).
    """
    with _own_transaction() as connection:
        connection.execute(text("INSERT INTO public.storage_ledger (tenant_id, used_bytes, reserved_bytes)"
                                " VALUES (:t, 0, 0) ON CONFLICT DO NOTHING"), {"t": tenant_id})
        granted = connection.execute(
            update(LedgerRow).where(LedgerRow.tenant_id == tenant_id,
                                    true() if limit is None else
                                    LedgerRow.used_bytes + LedgerRow.reserved_bytes + size <= limit)
            .values(reserved_bytes=LedgerRow.reserved_bytes + size).returning(LedgerRow.tenant_id)).first()
        if granted is None:
            used, reserved = connection.execute(select(LedgerRow.used_bytes, LedgerRow.reserved_bytes)
                                                .where(LedgerRow.tenant_id == tenant_id)).one()
            raise QuotaExceeded(limit, used + reserved, size)
        reservation = uuid.uuid4()
        connection.execute(insert(Reservation).values(id=reservation, tenant_id=tenant_id, bytes=size, key=key,
                                                      created_at=utcnow()))
        return reservation


def settle(reservation: uuid.UUID, written: int) -> None:
    """Turn a reservation into `written` bytes of usage, in the caller's transaction (with the
    document row that accounts for them)."""
    held = db.session.execute(delete(Reservation).where(Reservation.id == reservation)
                              .returning(Reservation.tenant_id, Reservation.bytes)).first()
    if held is None:
        raise LookupError("reservation already settled or released")
    db.session.execute(update(LedgerRow).where(LedgerRow.tenant_id == held.tenant_id).values(
        reserved_bytes=LedgerRow.reserved_bytes - held.bytes, used_bytes=LedgerRow.used_bytes + written))
    _mark_locked()


def release(reservation: uuid.UUID) -> None:
    """Give a reservation back (the write failed or was aborted), committed at once."""
    with _own_transaction() as connection:
        held = connection.execute(delete(Reservation).where(Reservation.id == reservation)
                                  .returning(Reservation.tenant_id, Reservation.bytes)).first()
        if held is not None:
            connection.execute(update(LedgerRow).where(LedgerRow.tenant_id == held.tenant_id)
                               .values(reserved_bytes=LedgerRow.reserved_bytes - held.bytes))


def free(tenant_id: int, size: int) -> None:
    """Stored bytes were deleted for good: give them back, in the caller's transaction."""
    db.session.execute(update(LedgerRow).where(LedgerRow.tenant_id == tenant_id)
                       .values(used_bytes=LedgerRow.used_bytes - size))
    _mark_locked()


def stale_reservations(older_than: timedelta) -> list[Reservation]:
    return list(db.session.scalars(select(Reservation).where(Reservation.created_at < utcnow() - older_than)))


def set_used(tenant_id: int, used: int) -> None:
    """The reconciler's correction: usage is what the tenant's documents say it is."""
    db.session.execute(text("INSERT INTO public.storage_ledger (tenant_id, used_bytes, reserved_bytes)"
                            " VALUES (:t, :u, 0) ON CONFLICT (tenant_id) DO UPDATE SET used_bytes = :u"),
                       {"t": tenant_id, "u": used})
    _mark_locked()
