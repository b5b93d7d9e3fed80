"""CRM records (tenant schema): companies, contacts, deals, leads, pipelines, custom fields,
access rules, departments and the audit log.

People are public `users`; a record's `responsible_id` is a user id (checked by the services,
no foreign key across schemas). Deleted records keep their row with `deleted_at` set (the
recycle bin) until the purge removes them after 30 days.
"""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (BigInteger, Boolean, Date, DateTime, ForeignKey, Identity, Index, Integer,
                        LargeBinary, Numeric, String, Text, UniqueConstraint, text)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenants.db import TenantModel
from tenants.models import utcnow


class Entity:
    COMPANY, CONTACT, DEAL, LEAD = "company", "contact", "deal", "lead"
    ALL = (LEAD, CONTACT, COMPANY, DEAL)


class StageKind:
    OPEN, WON, LOST = "open", "won", "lost"  # leads: WON = qualified, LOST = junk
    FINAL = (WON, LOST)


class LeadStatus:
    OPEN, QUALIFIED, JUNK = "open", "qualified", "junk"


def _id():
    return mapped_column(BigInteger, Identity(), primary_key=True)


def _live_index(table: str, *columns: str) -> Index:
    """An index over the records not in the recycle bin (every list reads only those)."""
    return Index(f"ix_{table}_{'_'.join(columns)}", *columns, postgresql_where=text("deleted_at IS NULL"))


def _trigram_index(table: str, column: str) -> Index:
    """Serves the lists' "contains" search (ILIKE '%…%') without reading every row."""
    return Index(f"ix_{table}_{column}_trgm", column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"},
                 postgresql_where=text("deleted_at IS NULL"))


def _custom_index(table: str) -> Index:
    # jsonb_path_ops serves `custom @> '{"key": value}'`: equality on any custom field, list items too.
    return Index(f"ix_{table}_custom", "custom", postgresql_using="gin", postgresql_ops={"custom": "jsonb_path_ops"})


class Record:
    """Columns every CRM record has."""

    responsible_id: Mapped[int | None] = mapped_column(BigInteger)
    custom: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_by: Mapped[int | None] = mapped_column(BigInteger)


# --- people of the tenant ------------------------------------------------------------------

class Department(TenantModel):
    __tablename__ = "departments"

    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(String(200), unique=True)


class StaffDepartment(TenantModel):
    """Which department an employee (public user id) belongs to: at most one."""

    __tablename__ = "staff_departments"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), index=True)


class AccessRule(TenantModel):
    """What a role may see and edit of one record type: all / department / own."""

    __tablename__ = "access_rules"

    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    entity: Mapped[str] = mapped_column(String(20), primary_key=True)
    see: Mapped[str] = mapped_column(String(20), default="all")
    edit: Mapped[str] = mapped_column(String(20), default="all")


# --- tenant-defined lists and fields -------------------------------------------------------

class ListItem(TenantModel):
    """An item of a classification list of companies (activity type, region, group, …)."""

    __tablename__ = "list_items"
    __table_args__ = (UniqueConstraint("list_key", "label"),)

    id: Mapped[int] = _id()
    list_key: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)


class CustomField(TenantModel):
    """A field an admin added to one record type. Values live in the records' `custom` JSONB.

    options: {"items": [{"id": 1, "label": "…"}], "next_id": 2} for lists, {"target": "company"}
    for links.
    """

    __tablename__ = "custom_fields"
    __table_args__ = (UniqueConstraint("entity", "key"),)

    id: Mapped[int] = _id()
    entity: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(60))
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- pipelines -----------------------------------------------------------------------------

class Pipeline(TenantModel):
    """A deal pipeline ("direction"), or the one stage bar of leads (entity = "lead")."""

    __tablename__ = "pipelines"

    id: Mapped[int] = _id()
    entity: Mapped[str] = mapped_column(String(20), default=Entity.DEAL)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)

    stages: Mapped[list["Stage"]] = relationship(order_by="Stage.position", back_populates="pipeline",
                                                 cascade="all, delete-orphan")


class Stage(TenantModel):
    __tablename__ = "stages"

    id: Mapped[int] = _id()
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10), default=StageKind.OPEN)
    position: Mapped[int] = mapped_column(Integer, default=0)
    color: Mapped[str] = mapped_column(String(7), default="#4f7cac")

    pipeline: Mapped[Pipeline] = relationship(back_populates="stages")


# --- records -------------------------------------------------------------------------------



class ContactCompany(TenantModel):
    __tablename__ = "contact_companies"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)


class DealContact(TenantModel):
    __tablename__ = "deal_contacts"

    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)


class Company(Record, TenantModel):
    __tablename__ = "companies"
    __table_args__ = (
        _live_index("companies", "name", "id"), _live_index("companies", "responsible_id"),
        _live_index("companies", "updated_at", "id"), _live_index("companies", "tin"), _custom_index("companies"),
        _trigram_index("companies", "name"),
        Index("ix_companies_phones", "phones", postgresql_using="gin"),
        Index("ix_companies_emails", "emails", postgresql_using="gin"),
    )

    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(String(300))
    tin: Mapped[str | None] = mapped_column(String(20))
    phones: Mapped[list[str]] = mapped_column(ARRAY(String(20)), default=list, server_default="{}")
    emails: Mapped[list[str]] = mapped_column(ARRAY(String(254)), default=list, server_default="{}")
    address: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(String(300))
    activity_type_id: Mapped[int | None] = mapped_column(ForeignKey("list_items.id", ondelete="SET NULL"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("list_items.id", ondelete="SET NULL"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("list_items.id", ondelete="SET NULL"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("list_items.id", ondelete="SET NULL"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("list_items.id", ondelete="SET NULL"))
    important_dates: Mapped[list] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    notes: Mapped[str | None] = mapped_column(Text)


class Contact(Record, TenantModel):
    __tablename__ = "contacts"
    __table_args__ = (
        _live_index("contacts", "last_name", "first_name"), _live_index("contacts", "responsible_id"),
        _live_index("contacts", "updated_at", "id"), _custom_index("contacts"),
        _trigram_index("contacts", "first_name"), _trigram_index("contacts", "last_name"),
        Index("ix_contacts_phones", "phones", postgresql_using="gin"),
        Index("ix_contacts_emails", "emails", postgresql_using="gin"),
    )

    id: Mapped[int] = _id()
    first_name: Mapped[str] = mapped_column(String(200), default="")
    last_name: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[str | None] = mapped_column(String(200))
    phones: Mapped[list[str]] = mapped_column(ARRAY(String(20)), default=list, server_default="{}")
    emails: Mapped[list[str]] = mapped_column(ARRAY(String(254)), default=list, server_default="{}")
    birthday: Mapped[date | None] = mapped_column(Date)
    # A small JPEG/PNG/WebP avatar (≤ 1 MB), loaded only when asked for (never with lists).
    photo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    photo_type: Mapped[str | None] = mapped_column(String(40))
    notes: Mapped[str | None] = mapped_column(Text)

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or "—"


class Deal(Record, TenantModel):
    __tablename__ = "deals"
    __table_args__ = (
        _live_index("deals", "stage_id", "id"),
        # The board's count and sum per stage, read from the index alone.
        Index("ix_deals_pipeline_id_stage_id", "pipeline_id", "stage_id", postgresql_include=["amount"],
              postgresql_where=text("deleted_at IS NULL")),
        _live_index("deals", "responsible_id"), _live_index("deals", "company_id"),
        _live_index("deals", "updated_at", "id"), _live_index("deals", "close_date"), _custom_index("deals"),
        _trigram_index("deals", "title"),
    )

    id: Mapped[int] = _id()
    title: Mapped[str] = mapped_column(String(300))
    amount: Mapped[Decimal] = mapped_column(Numeric(16, 2), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    close_date: Mapped[date | None] = mapped_column(Date)
    stage_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lead_id: Mapped[int | None] = mapped_column(BigInteger)
    notes: Mapped[str | None] = mapped_column(Text)

    items: Mapped[list["DealItem"]] = relationship(order_by="DealItem.position", cascade="all, delete-orphan")


class DealItem(TenantModel):
    """A line of a deal: quantity × price, less a discount (%), plus VAT (%) on top."""

    __tablename__ = "deal_items"

    id: Mapped[int] = _id()
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=Decimal("1"))
    unit: Mapped[str] = mapped_column(String(20), default="")
    price: Mapped[Decimal] = mapped_column(Numeric(16, 2), default=Decimal("0"))
    discount: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0"))  # percent
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0"))  # percent


class Lead(Record, TenantModel):
    __tablename__ = "leads"
    __table_args__ = (
        _live_index("leads", "stage_id", "id"), _live_index("leads", "responsible_id"),
        _live_index("leads", "updated_at", "id"), _custom_index("leads"),
        _trigram_index("leads", "title"), _trigram_index("leads", "contact_name"), _trigram_index("leads", "company_name"),
    )

    id: Mapped[int] = _id()
    title: Mapped[str] = mapped_column(String(300))
    source: Mapped[str | None] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(300))
    position: Mapped[str | None] = mapped_column(String(200))
    company_name: Mapped[str | None] = mapped_column(String(300))
    tin: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    notes: Mapped[str | None] = mapped_column(Text)
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    status: Mapped[str] = mapped_column(String(20), default=LeadStatus.OPEN)
    junk_reason: Mapped[str | None] = mapped_column(Text)
    converted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))


# --- history and imports -------------------------------------------------------------------

class AuditEntry(TenantModel):
    """One thing that happened to a record. `refs` names every card it shows on ("deal:7",
    "company:3"), so a company's timeline includes what happened to its deals and contacts."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_refs", "refs", postgresql_using="gin"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    entity: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(20))  # create, update, stage, convert, merge, delete, restore, purge
    title: Mapped[str] = mapped_column(String(300), default="")  # the record's name at the time
    changes: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    refs: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)


class ImportJob(TenantModel):
    """An uploaded CSV/XLSX being imported: its mapping, progress and report of rejected rows."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = _id()
    entity: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(300))
    # Up to 20 MB, dropped once the import has run; loaded only by the job, never with the row.
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    mapping: Mapped[dict] = mapped_column(JSONB, default=dict)  # column header → field
    on_duplicate: Mapped[str] = mapped_column(String(10), default="skip")  # skip | merge | create
    status: Mapped[str] = mapped_column(String(20), default="new")  # new, queued, running, done, failed
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    merged: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[list] = mapped_column(JSONB, default=list)  # [{"row": 7, "reasons": ["…"]}]
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


RECORD_MODELS = {Entity.COMPANY: Company, Entity.CONTACT: Contact, Entity.DEAL: Deal, Entity.LEAD: Lead}
