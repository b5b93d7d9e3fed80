"""The company's plan as its owner sees and changes it: standing, seats, storage, what a switch
would change, and switching (offline at once; with Stripe through Checkout or the Portal)."""
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from billing import stripe_provider
from billing.plans import Plan, catalogue, plan_of
from billing.services import Standing, apply, offline_state, standing, subscription_of
from billing.stripe_provider import StripeUnavailable
from saas.auth.models import Membership, Role
from saas.tenancy import tenant_url
from saas.errors import Conflict, Forbidden, Invalid, ServiceError
from storage import ledger
from tenants.db import db
from tenants.models import TenantRef

from .seats import active_users


class PaymentProviderError(ServiceError):
    status, code = 502, "payment_provider_unavailable"


@dataclass(frozen=True)
class Option:
    """One plan as the company would have it: its limit and price for today's people."""

    plan: Plan
    current: bool
    limit: int | None  # bytes for this company; None is unlimited
    monthly: Decimal  # list price for today's active people
    over_by: int  # bytes the company stores beyond this plan's limit (what must go after switching)

    @property
    def upgrade(self) -> bool:
        return self.plan.rank > 0 and not self.current


@dataclass(frozen=True)
class Overview:
    standing: Standing
    seats_in_use: int
    seats_paid: int
    used: int
    reserved: int
    limit: int | None  # the limit that applies now
    options: list[Option]
    stripe: bool  # payments go through Stripe (else the owner switches directly)

    @property
    def plan(self) -> Plan:
        return self.standing.plan

    @property
    def subscription(self):
        return self.standing.subscription

    @property
    def over_by(self) -> int:
        return max(0, self.used - self.limit) if self.limit is not None else 0

    @property
    def next_invoice(self) -> tuple[datetime, Decimal] | None:
        """(date, amount) of the next regular invoice; None when nothing will be invoiced."""
        row = self.subscription
        if not self.stripe or not row.stripe_subscription_id or row.cancel_at_period_end or not row.current_period_end:
            return None
        return row.current_period_end, Decimal(row.monthly_amount) / 100

    def option(self, key: str) -> Option:
        return next(option for option in self.options if option.plan.key == key)


def require_manager(actor: Membership | None) -> None:
    if actor is None or actor.role not in Role.MANAGERS:
        raise Forbidden(_l("Only the owner and administrators can see the plan."))


def require_owner(actor: Membership | None) -> None:
    if actor is None or actor.role != Role.OWNER:
        raise Forbidden(_l("Only the company's owner can change the plan."))


def overview(tenant: TenantRef, actor: Membership | None) -> Overview:
    require_manager(actor)
    now = standing(tenant.id)
    people = active_users(tenant.id)
    used, reserved = ledger.usage(tenant.id)
    options = []
    for plan in catalogue().values():
        limit = plan.storage_limit(people)
        options.append(Option(plan, plan.key == now.plan.key, limit, plan.monthly_price(people),
                              max(0, used - limit) if limit is not None else 0))
    return Overview(now, people, now.subscription.seats, used, reserved, now.limits.storage_limit(people), options,
                    stripe_provider.enabled())


@dataclass(frozen=True)
class Change:
    applied: bool  # the plan changed now (offline); else the owner continues at `url`
    url: str | None = None
    kind: str | None = None  # "checkout" or "portal"


def plan_page_url(tenant: TenantRef) -> str:
    """Where Stripe sends the owner back: the plan page on the company's own host."""
    return tenant_url(tenant.slug, "/settings/plan")


def change_plan(tenant: TenantRef, actor: Membership, plan_key: str, *, email: str, return_url: str) -> Change:
    """Switch the company to `plan_key`: offline at once; with Stripe, the page to pay or confirm on.

    A switch to a plan whose storage is smaller than what the company stores is allowed: nothing
    is deleted, and new uploads are refused until usage is under the new limit."""
    require_owner(actor)
    if plan_key not in catalogue():
        raise Invalid(_l("Choose Free, Standard or Extended."), field="plan")
    plan = plan_of(plan_key)
    row = subscription_of(tenant.id, lock=True)
    if not stripe_provider.enabled() or (not row.stripe_subscription_id and not plan.paid):
        apply(row, offline_state(plan.key, active_users(tenant.id)))
        db.session.commit()
        return Change(True)
    db.session.commit()  # no row lock held while Stripe answers
    try:
        if row.stripe_subscription_id:
            if plan.key == row.plan:
                raise Conflict(_l("The company is already on this plan."), field="plan")
            return Change(False, stripe_provider.portal_url(row, return_url, plan), "portal")
        return Change(False, stripe_provider.checkout_url(row, plan, active_users(tenant.id), email,
                                                         success_url=return_url + "?checkout=done",
                                                         cancel_url=return_url + "?checkout=cancelled"), "checkout")
    except StripeUnavailable as error:
        raise PaymentProviderError(_l("The payment service did not answer: %(reason)s", reason=str(error)))


def portal(tenant: TenantRef, actor: Membership, return_url: str) -> str:
    """The Stripe Customer Portal: card, invoices, cancellation."""
    require_owner(actor)
    row = subscription_of(tenant.id)
    if not stripe_provider.enabled() or not row.stripe_customer_id:
        raise Conflict(_l("There is no payment account yet: choose a paid plan first."))
    try:
        return stripe_provider.portal_url(row, return_url)
    except StripeUnavailable as error:
        raise PaymentProviderError(_l("The payment service did not answer: %(reason)s", reason=str(error)))
