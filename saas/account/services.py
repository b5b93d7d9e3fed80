"""The company's plan as its owner sees and changes it: standing, seats, storage, what a switch
would change, and switching (offline at once; with Stripe through Checkout or the Portal)."""
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from billing import stripe_provider
from billing.plans import Plan, catalogue, plan_of
from billing.services import FREE, Standing, apply, offline_state, standing, subscription_of
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


@dataclass(frozen=True)
class Overview:
    standing: Standing
    seats_in_use: int
    seats_paid: int
    used: int
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
    used, _reserved = ledger.usage(tenant.id)
    options = []
    for plan in catalogue().values():
        limit = plan.storage_limit(people)
        options.append(Option(plan, plan.key == now.plan.key, limit, plan.monthly_price(people),
                              max(0, used - limit) if limit is not None else 0))
    return Overview(now, people, now.subscription.seats, used, now.limits.storage_limit(people), options,
                    stripe_provider.enabled())


class Route:
    """How a switch to a plan happens: the one decision the confirmation page and change_plan share."""

    AT_ONCE = "at_once"  # offline, or Free without a Stripe subscription: applied now
    CHECKOUT = "checkout"  # a first paid subscription: Stripe Checkout
    PORTAL = "portal"  # another paid plan: confirmed on Stripe's Portal, prorated
    CANCEL = "cancel"  # to Free: the subscription ends with the paid period
    KEEP = "keep"  # the current plan while it is ending: the cancellation is withdrawn
    ENDING = "ending"  # to Free while already ending: nothing to do
    CURRENT = "current"  # already on it


def route(row, plan: Plan) -> str:
    live = stripe_provider.enabled() and bool(row.stripe_subscription_id)
    if plan.key == row.plan:
        return Route.KEEP if live and row.cancel_at_period_end else Route.CURRENT
    if not live:
        return Route.CHECKOUT if stripe_provider.enabled() and plan.paid else Route.AT_ONCE
    if not plan.paid:
        return Route.ENDING if row.cancel_at_period_end else Route.CANCEL
    return Route.PORTAL


@dataclass(frozen=True)
class Change:
    route: str
    url: str | None = None  # where the owner continues (Checkout or the Portal)

    @property
    def applied(self) -> bool:
        return self.url is None


def plan_page_url(tenant: TenantRef) -> str:
    """Where Stripe sends the owner back: the plan page on the company's own host."""
    return tenant_url(tenant.slug, "/settings/plan")


@contextmanager
def _payment_service():
    """Stripe's refusals become the service's, with the message for a person."""
    try:
        yield
    except StripeUnavailable as error:
        raise PaymentProviderError(error.message)


def change_plan(tenant: TenantRef, actor: Membership, plan_key: str, *, email: str) -> Change:
    """Switch the company to `plan_key`: at once offline; with Stripe through Checkout, the Portal,
    or by ending (or keeping) the subscription at the period's end.

    A switch to a plan whose storage is smaller than what the company stores is allowed: nothing
    is deleted, and new uploads are refused until usage is under the new limit."""
    require_owner(actor)
    if plan_key not in catalogue():
        raise Invalid(_l("Choose Free, Standard or Extended."), field="plan")
    plan = plan_of(plan_key)
    row = subscription_of(tenant.id, lock=True)  # one change at a time per company
    how = route(row, plan)
    return_url = plan_page_url(tenant)
    if how == Route.CURRENT:
        raise Conflict(_l("The company is already on the %(plan)s plan.", plan=plan.name), field="plan")
    if how == Route.ENDING:
        raise Conflict(_l("The %(plan)s plan already ends with the paid period; then the company is on Free.",
                          plan=plan_of(row.plan).name), field="plan")
    try:
        with _payment_service():
            if how == Route.AT_ONCE:
                apply(row, offline_state(plan.key, active_users(tenant.id)))
            elif how in (Route.CANCEL, Route.KEEP):
                apply_remote(row, stripe_provider.end_with_period(row, how == Route.CANCEL))
            elif how == Route.CHECKOUT:
                return Change(how, stripe_provider.checkout_url(row, plan, active_users(tenant.id), email,
                                                                success_url=return_url + "?checkout=done",
                                                                cancel_url=return_url + "?checkout=cancelled"))
            else:
                return Change(how, stripe_provider.portal_url(row, return_url, plan))
    finally:
        db.session.commit()  # applied, or nothing changed: either way the row's lock goes
    return Change(how)


def apply_remote(row, remote: dict) -> None:
    """Apply what Stripe answered at once (its webhook will say the same later and change nothing)."""
    state = stripe_provider.state_of(remote)
    apply(row, state if state is not None else FREE)


def portal(tenant: TenantRef, actor: Membership) -> str:
    """The Stripe Customer Portal: card, invoices, cancellation."""
    require_owner(actor)
    row = subscription_of(tenant.id)
    if not stripe_provider.enabled() or not row.stripe_customer_id:
        raise Conflict(_l("There is no payment account yet: choose a paid plan first."))
    with _payment_service():
        return stripe_provider.portal_url(row, plan_page_url(tenant))
