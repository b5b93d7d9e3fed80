"""Billing tables (public schema): each company's subscription, and the Stripe events processed."""
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenants.db import PublicModel
from tenants.models import utcnow


class Status:
    ACTIVE = "active"
    TRIALING = "trialing"
    PAST_DUE = "past_due"  # a payment failed: the grace period runs from past_due_since
    ALL = (ACTIVE, TRIALING, PAST_DUE)


class Provider:
    OFFLINE = "offline"  # no payment: the owner switches plans directly
    STRIPE = "stripe"


class Subscription(PublicModel):
    """The plan a company is on and how it pays. One row per tenant, created at sign-up."""

    __tablename__ = "subscriptions"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("public.tenants.id", ondelete="CASCADE"), primary_key=True,
                                           autoincrement=False)
    plan: Mapped[str] = mapped_column(String(30), default="free", index=True)
    status: Mapped[str] = mapped_column(String(20), default=Status.ACTIVE)
    provider: Mapped[str] = mapped_column(String(20), default=Provider.OFFLINE)
    seats: Mapped[int] = mapped_column(Integer, default=1)  # seats paid for (the provider's quantity)
    # What the next regular invoice comes to, in minor units of `currency` (0 on Free or offline).
    monthly_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    trial_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    past_due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_item_id: Mapped[str | None] = mapped_column(String(255))  # the seat line whose quantity follows users
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    def grace_until(self, grace_days: int) -> datetime | None:
        if self.status != Status.PAST_DUE or self.past_due_since is None:
            return None
        return self.past_due_since + timedelta(days=grace_days)

    def limited(self, grace_days: int, now: datetime | None = None) -> bool:
        """Past due beyond the grace period: Free's limits apply until a payment succeeds."""
        until = self.grace_until(grace_days)
        return until is not None and (now or utcnow()) >= until


class StripeEvent(PublicModel):
    """A webhook event from Stripe, stored once by its id: a repeat is recognised and ignored."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # when Stripe made it
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    tenant_id: Mapped[int | None] = mapped_column(BigInteger, index=True)  # found while processing
    outcome: Mapped[str | None] = mapped_column(Text)  # what processing did, or why it did nothing
    payload: Mapped[dict] = mapped_column(JSONB)
