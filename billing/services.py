"""Subscriptions: a company's standing (which plan, which limits apply now) and applying what a
payment provider says to it. Both providers (offline and Stripe) change plans only through `apply`.

Nothing here knows about people or documents: seat counts are handed in by the caller.
"""
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from tenants.db import db
from tenants.models import utcnow

from .models import Provider, Status, Subscription
from .plans import Plan, catalogue, plan_of


def grace_days() -> int:
    return int(current_app.config.get("GRACE_DAYS", 7))


def open_subscription(tenant_id: int) -> None:
    """Every company starts on Free, offline (called in the sign-up transaction)."""
    db.session.execute(insert(Subscription).values(tenant_id=tenant_id, plan="free", status=Status.ACTIVE,
                                                   provider=Provider.OFFLINE, seats=1, monthly_amount=0,
                                                   currency=plan_of("free").currency, cancel_at_period_end=False,
                                                   updated_at=utcnow())
                       .on_conflict_do_nothing())


def subscription_of(tenant_id: int, *, lock: bool = False) -> Subscription:
    """The company's subscription row; with `lock`, held until commit so changes apply one at a time."""
    query = select(Subscription).where(Subscription.tenant_id == tenant_id)
    row = db.session.scalar(query.with_for_update() if lock else query)
    if row is None:  # a company made before billing existed, or by a script
        open_subscription(tenant_id)
        row = db.session.scalar(query.with_for_update() if lock else query)
    return row


@dataclass(frozen=True)
class Standing:
    """What a company's billing allows right now."""

    plan: Plan  # the plan it is on
    limits: Plan  # the plan whose limits apply: Free once a payment is overdue past the grace period
    status: str
    grace_until: datetime | None
    subscription: Subscription

    @property
    def limited(self) -> bool:
        return self.limits.key != self.plan.key


def standing(tenant_id: int) -> Standing:
    return standing_of(subscription_of(tenant_id))


def standing_of(row: Subscription) -> Standing:
    plan = plan_of(row.plan)
    limited = row.limited(grace_days())
    return Standing(plan, plan_of("free") if limited else plan, row.status, row.grace_until(grace_days()), row)


def limits_plan(tenant_id: int) -> Plan:
    """The plan whose limits apply to the company now (what storage admission reads)."""
    return standing(tenant_id).limits


# --- applying a provider's state -------------------------------------------------------------

@dataclass(frozen=True)
class State:
    """What a provider says a subscription is now; applied whole, never as a delta."""

    plan: str
    status: str = Status.ACTIVE
    seats: int = 1
    monthly_amount: int = 0  # minor units
    currency: str = "usd"
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    trial_end: datetime | None = None


FREE = State("free")


def apply(row: Subscription, state: State) -> dict:
    """Make `row` say what `state` says; returns {field: (before, after)} of what changed."""
    if state.plan not in catalogue() or state.status not in Status.ALL:
        raise ValueError(f"unknown plan or status: {state.plan!r}, {state.status!r}")
    values = {
        "plan": state.plan, "status": state.status, "seats": max(state.seats, 1),
        "monthly_amount": state.monthly_amount, "currency": state.currency,
        "current_period_end": state.current_period_end, "cancel_at_period_end": state.cancel_at_period_end,
        "trial_end": state.trial_end,
        # The grace period runs from the first failure, not from the latest reminder of it.
        "past_due_since": ((row.past_due_since or utcnow()) if state.status == Status.PAST_DUE else None),
    }
    changes = {name: (getattr(row, name), value) for name, value in values.items() if getattr(row, name) != value}
    for name, (_before, after) in changes.items():
        setattr(row, name, after)
    return changes


def offline_state(plan_key: str, seats: int) -> State:
    """An offline subscription: no payment, the list price shown as its value."""
    plan = plan_of(plan_key)
    return State(plan.key, Status.ACTIVE, seats, to_minor(plan.monthly_price(seats)), plan.currency)


def to_minor(amount) -> int:
    return int((amount * 100).to_integral_value())
