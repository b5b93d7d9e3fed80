"""Documents on cards (tenant schema): a document hangs on a deal, company or contact and has
versions; each version is one blob in the store (`t/<tenant-uuid>/<blob-uuid>`), its name,
size, sniffed content type and SHA-256 kept here."""
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Identity, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenants.db import TenantModel
from tenants.models import utcnow


class DocumentStatus:
    DRAFT, ACTIVE, SIGNED, ARCHIVED = "draft", "active", "signed", "archived"
    ALL = (DRAFT, ACTIVE, SIGNED, ARCHIVED)


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

    document: Mapped[Document] = relationship(back_populates="versions")
