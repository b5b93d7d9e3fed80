"""The tenant registry (public schema)."""
import re
from uuid import UUID, uuid4
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Identity, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from .db import PublicModel

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
RESERVED_SLUGS = frozenset(
    """www api admin app apps mail email smtp imap pop ftp static assets cdn media files
    blob blobs s3 storage auth login logout signin signup register account accounts billing
    help support docs status health healthz dashboard root system public internal test dev
    staging prod demo ns ns1 ns2 dns webhook webhooks dealdocs""".split()
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TenantStatus:
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Tenant(PublicModel):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    uuid: Mapped[UUID] = mapped_column(Uuid, unique=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=TenantStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The tenant tree revision of its schema, written in the same transaction as the schema's
    # own alembic_version (provisioning, upgrades): "what is pending" is one query, not one per schema.
    schema_revision: Mapped[str | None] = mapped_column(String(64))

    @property
    def schema(self) -> str:
        return schema_name(self.id)

    @property
    def is_active(self) -> bool:
        return self.status == TenantStatus.ACTIVE

    @property
    def blob_prefix(self) -> str:
        return f"t/{self.uuid}/"


class PooledSchema(PublicModel):
    """A ready, empty tenant schema at `revision`, waiting to be renamed to `t_<id>` at sign-up."""

    __tablename__ = "schema_pool"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    revision: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class TenantRef:
    """A detached, immutable view of a tenant row: safe to keep for a whole request or job."""

    id: int
    uuid: UUID
    name: str
    slug: str
    status: str

    @classmethod
    def of(cls, tenant: "Tenant") -> "TenantRef":
        return cls(tenant.id, tenant.uuid, tenant.name, tenant.slug, tenant.status)

    schema = Tenant.schema
    is_active = Tenant.is_active
    blob_prefix = Tenant.blob_prefix


def schema_name(tenant_id: int) -> str:
    return f"t_{int(tenant_id)}"


def slug_problem(slug: str) -> str | None:
    """Why `slug` cannot name a tenant, or None when it can."""
    if not SLUG_RE.fullmatch(slug or ""):
        return "malformed"
    if slug in RESERVED_SLUGS:
        return "reserved"
    return None
