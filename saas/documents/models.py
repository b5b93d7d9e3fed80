"""Documents on cards (tenant schema): a document hangs on a deal, company or contact and has
versions; each version is one blob in the store (`t/<tenant-uuid>/<blob-uuid>`), its name,
size, sniffed content type and SHA-256 kept here."""
from datetime import date, datetime

from sqlalchemy import (BigInteger, Date, DateTime, ForeignKey, Identity, Index, Integer, String, Text,
                        UniqueConstraint, text)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from tenants.db import TenantModel
from tenants.models import utcnow


class DocumentStatus:
    DRAFT, ACTIVE, SIGNED, ARCHIVED = "draft", "active", "signed", "archived"
    ALL = (DRAFT, ACTIVE, SIGNED, ARCHIVED)


class Generation:
    """Where a generated document is: being made by a worker, ready, or failed (with a reason).
    Uploaded documents have none."""
    GENERATING, READY, FAILED = "generating", "ready", "failed"


class DocumentType(TenantModel):
    """Contract, annex, act, invoice, drawing, letter, other — and the tenant's own."""

    __tablename__ = "document_types"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Document(TenantModel):
    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_card", "entity", "record_id", postgresql_where=text("deleted_at IS NULL")),
        Index("ix_documents_sha256", "entity", "record_id", "sha256"),
        # The sweeper's look for generations a dead worker left behind.
        Index("ix_documents_generating", "created_at", postgresql_where=text("generation = 'generating'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))  # deal, company or contact
    record_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(300))
    type_id: Mapped[int | None] = mapped_column(ForeignKey("document_types.id", ondelete="SET NULL"))
    number: Mapped[str | None] = mapped_column(String(100))
    signed_on: Mapped[date | None] = mapped_column(Date)
    counterparty: Mapped[str | None] = mapped_column(String(300))
    our_entity: Mapped[str | None] = mapped_column(String(300))
    responsible_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default=DocumentStatus.ACTIVE)
    notes: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"), index=True)
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the current version
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_by: Mapped[int | None] = mapped_column(BigInteger)
    # Made from a template (see generation.py): which version of it, and how the making went.
    template_id: Mapped[int | None] = mapped_column(ForeignKey("document_templates.id", ondelete="SET NULL"))
    template_version: Mapped[int | None] = mapped_column(Integer)
    generation: Mapped[str | None] = mapped_column(String(12))
    generation_error: Mapped[str | None] = mapped_column(Text)
    # The job working on it now (a duplicate or a second worker finds it taken) and since when.
    generation_claim: Mapped[str | None] = mapped_column(String(64))
    generation_claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    generation_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    batch_id: Mapped[str | None] = mapped_column(String(36), index=True)

    versions: Mapped[list["Version"]] = relationship(order_by="Version.number", back_populates="document",
                                                     cascade="all, delete-orphan")
    type: Mapped[DocumentType | None] = relationship()

    @property
    def live_versions(self) -> list["Version"]:
        return [v for v in self.versions if v.deleted_at is None]

    @property
    def current(self) -> "Version | None":
        live = self.live_versions
        return live[-1] if live else None


class Version(TenantModel):
    __tablename__ = "document_versions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(200), unique=True)
    filename: Mapped[str] = mapped_column(String(300))  # for display only; never part of a path or key
    content_type: Mapped[str] = mapped_column(String(120))  # sniffed from the bytes
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_by: Mapped[int | None] = mapped_column(BigInteger)
    # A generated version keeps the HTML its PDF was made from (offered as HTML and DOCX).
    source_html: Mapped[str | None] = deferred(mapped_column(Text))

    document: Mapped[Document] = relationship(back_populates="versions")


# --- templates and numbering ---------------------------------------------------------------

class TemplateContent:
    """What a template is made of; every saved change keeps a copy of it as a new version."""

    name: Mapped[str] = mapped_column(String(200))
    document_type: Mapped[str] = mapped_column(String(20))  # proposal, contract, invoice, act, letter, other
    applies_to: Mapped[str] = mapped_column(String(20))  # deal, company or contact
    language: Mapped[str] = mapped_column(String(5), default="en")  # of dates, money and amounts in words
    page_size: Mapped[str] = mapped_column(String(10), default="A4")
    margin_top: Mapped[int] = mapped_column(Integer, default=20)  # millimetres
    margin_right: Mapped[int] = mapped_column(Integer, default=15)
    margin_bottom: Mapped[int] = mapped_column(Integer, default=20)
    margin_left: Mapped[int] = mapped_column(Integer, default=25)
    header_html: Mapped[str] = mapped_column(Text, default="")
    footer_html: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")

    CONTENT = ("name", "document_type", "applies_to", "language", "page_size", "margin_top", "margin_right",
               "margin_bottom", "margin_left", "header_html", "footer_html", "body_html")


class DocumentTemplate(TemplateContent, TenantModel):
    __tablename__ = "document_templates"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    versions: Mapped[list["TemplateVersion"]] = relationship(
        order_by="TemplateVersion.number", cascade="all, delete-orphan", passive_deletes=True)


class TemplateVersion(TemplateContent, TenantModel):
    __tablename__ = "document_template_versions"
    __table_args__ = (UniqueConstraint("template_id", "number"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("document_templates.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NumberCounter(TenantModel):
    """The document numbers of one document type: a pattern such as `CT-{YYYY}-{####}` and the last
    number given (in `period`: the year, when the pattern has one, so numbering restarts with it)."""

    __tablename__ = "number_counters"

    document_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    pattern: Mapped[str] = mapped_column(String(60))
    period: Mapped[str] = mapped_column(String(10), default="")
    last_value: Mapped[int] = mapped_column(Integer, default=0)
