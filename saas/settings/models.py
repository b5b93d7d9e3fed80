"""Company settings (tenant schema): one row per key, JSON value."""
from datetime import datetime

from sqlalchemy import DateTime, LargeBinary, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenants.db import TenantModel
from tenants.models import utcnow


class CompanySetting(TenantModel):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict | list | str | int | float | bool | None] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class CompanyImage(TenantModel):
    """Our logo, stamp and signature (PNG or JPEG, ≤ 1 MB) for generated documents."""

    __tablename__ = "company_images"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)  # logo, stamp or signature
    content_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
