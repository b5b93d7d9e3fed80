"""Platform admins, their web sessions, and the table of companies they run the platform from.

Platform admins are people with `users.platform_admin` (granted from the command line). Their web
session lives on the public host only and is registered like a company session, under the tenant
id PLATFORM (no company has id 0), so signing out or revoking the right ends it everywhere.
"""
import math
from dataclasses import dataclass
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, or_, select

from billing.models import Provider, Status, Subscription
from billing.plans import Plan, catalogue, plan_of
from billing.services import standing_of
from saas.auth.models import Membership, User
from saas.auth.passwords import hash_password, needs_rehash, verify_password
from saas.auth.services import end_all_sessions, end_session, session_is_live, start_session
from saas.errors import Invalid, NotFound, Unauthorized
from saas.maintenance import set_tenant_status
from storage.ledger import LedgerRow
from tenants.db import db
from tenants.models import Tenant, TenantStatus

PLATFORM = 0  # the "tenant id" operator sessions are registered under
PAGE_SIZE = 100
SUSPENDED = "suspended"
# What the operator sees per company: the subscription's status, unless the company is suspended.
STATUSES = (Status.ACTIVE, Status.TRIALING, Status.PAST_DUE, SUSPENDED)


# --- platform admins -----------------------------------------------------------------------

def _user_with_email(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        raise NotFound(_l("No account uses %(email)s. The person needs a DealDocs account first "
                          "(they sign up, or accept an invitation).", email=email))
    return user


def grant(email: str) -> User:
    user = _user_with_email(email)
    user.platform_admin = True
    db.session.commit()
    return user


def revoke(email: str) -> bool:
    """Take the right away and end every operator session of the person; False if they had none."""
    user = _user_with_email(email)
    had_it = user.platform_admin
    user.platform_admin = False
    db.session.commit()
    end_all_sessions(user.id, PLATFORM)
    return had_it


def platform_admins() -> list[User]:
    return list(db.session.scalars(select(User).where(User.platform_admin.is_(True)).order_by(User.email)))


# --- signing in ----------------------------------------------------------------------------

def authenticate(email: str, password: str) -> User:
    """The platform admin behind these credentials. A wrong password, an unknown email and a person
    who is no platform admin get the same answer, so the page tells nobody who is an operator."""
    user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    password_ok = verify_password(user.password_hash if user else None, password or "")
    if not (user and password_ok and user.platform_admin):
        raise Unauthorized(_l("Wrong email or password, or no operator access."), code="invalid_credentials")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
    return user


def open_session(user: User) -> str:
    return start_session(user.id, PLATFORM)


def close_session(sid: str | None) -> None:
    end_session(sid)


def operator_for(user_id, sid: str | None) -> User | None:
    """The platform admin of a live operator session, checked on every request: a revoked right
    ends the session at once (it stays ended if the right is granted again)."""
    if not user_id or not session_is_live(sid, int(user_id), PLATFORM):
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.platform_admin:
        end_session(sid)
        return None
    return user


# --- the companies table -------------------------------------------------------------------

@dataclass(frozen=True)
class TenantRow:
    id: int
    slug: str
    name: str
    status: str  # one of STATUSES
    plan: Plan
    provider: str
    seats: int  # active people
    used: int  # bytes stored
    limits: Plan  # the plan whose limits apply now: Free once past due beyond the grace period
    mrr: int  # minor units of `currency`
    currency: str

    @property
    def limit(self) -> int | None:
        """Bytes allowed now; None is unlimited."""
        return self.limits.storage_limit(self.seats)

    @property
    def limited(self) -> bool:
        """Held to another plan's limits than its own (past due beyond the grace period)."""
        return self.limits.key != self.plan.key

    @property
    def mrr_amount(self) -> Decimal:
        return Decimal(self.mrr) / 100


@dataclass(frozen=True)
class TenantTable:
    rows: list[TenantRow]
    total: int  # companies matching the filters, on every page
    page: int
    pages: int
    mrr_totals: dict[str, int]  # currency → minor units, over every matching company

    def total_amounts(self) -> list[tuple[str, Decimal]]:
        return [(currency, Decimal(amount) / 100) for currency, amount in sorted(self.mrr_totals.items())]


def _plan_column():
    return func.coalesce(Subscription.plan, "free")


def _status_column():
    """Suspension (the registry's) wins over whatever the subscription says."""
    return case((Tenant.status == TenantStatus.SUSPENDED, SUSPENDED),
                else_=func.coalesce(Subscription.status, Status.ACTIVE))


def _mrr_column():
    """Monthly recurring revenue, the one definition the page and the CLI read: what Stripe bills for
    a paid plan being paid for (active, or past due while the payment is retried). Nothing else is
    revenue: a trial pays nothing yet, an offline subscription never pays (its amount is the list
    price), and a suspended company is not served (the status column says so before the
    subscription does)."""
    paid = [key for key, plan in catalogue().items() if plan.paid]
    return case((and_(Subscription.provider == Provider.STRIPE, Subscription.plan.in_(paid),
                      _status_column().in_((Status.ACTIVE, Status.PAST_DUE))),
                 Subscription.monthly_amount), else_=0)


def _currency_column():
    return func.coalesce(Subscription.currency, plan_of("free").currency)


def filter_problems(plan: str | None, status: str | None) -> list[Invalid]:
    """Every filter value the table does not know, each as an error naming its field."""
    problems = []
    if plan and plan not in catalogue():
        problems.append(Invalid(_l("Unknown plan “%(plan)s”.", plan=plan), field="plan"))
    if status and status not in STATUSES:
        problems.append(Invalid(_l("Unknown status “%(status)s”.", status=status), field="status"))
    return problems


def check_filters(plan: str | None, status: str | None) -> None:
    problems = filter_problems(plan, status)
    if problems:
        raise problems[0]


def _tenants(query, plan: str | None, status: str | None, search: str | None):
    """`query` over tenants and their subscriptions, narrowed by the filters."""
    query = query.select_from(Tenant).outerjoin(Subscription, Subscription.tenant_id == Tenant.id)
    if plan:
        query = query.where(_plan_column() == plan)
    if status:
        query = query.where(_status_column() == status)
    if search:
        query = query.where(or_(Tenant.slug.icontains(search, autoescape=True),
                                Tenant.name.icontains(search, autoescape=True)))
    return query


def _limits_plan(subscription: Subscription | None) -> Plan:
    """The plan whose limits apply now (billing's own rule: Free once past due beyond the grace period)."""
    return standing_of(subscription).limits if subscription is not None else plan_of("free")


def tenant_table(*, plan: str | None = None, status: str | None = None, search: str | None = None,
                 page: int = 1, per_page: int | None = PAGE_SIZE) -> TenantTable:
    """Every company matching the filters, by id, one page of `per_page` (None: all of them).

    One query for the rows (tenants, subscriptions, storage ledger, active-people count) and one
    for the count and MRR totals: nothing per company.
    """
    check_filters(plan, status)
    search = (search or "").strip() or None
    total, mrr_totals = _totals(plan, status, search)
    pages = max(1, math.ceil(total / per_page)) if per_page else 1
    page = min(max(1, page), pages)

    people = (select(func.count()).select_from(Membership)
              .where(Membership.tenant_id == Tenant.id, Membership.active.is_(True))
              .correlate(Tenant).scalar_subquery())
    query = _tenants(select(Tenant.id, Tenant.slug, Tenant.name, _status_column().label("status"),
                            _plan_column().label("plan"), Subscription, people.label("seats"),
                            func.coalesce(LedgerRow.used_bytes, 0).label("used"), _mrr_column().label("mrr"),
                            _currency_column().label("currency")),
                     plan, status, search)
    query = query.outerjoin(LedgerRow, LedgerRow.tenant_id == Tenant.id).order_by(Tenant.id)
    if per_page:
        query = query.limit(per_page).offset((page - 1) * per_page)
    rows = []
    for row in db.session.execute(query):
        rows.append(TenantRow(
            id=row.id, slug=row.slug, name=row.name, status=row.status, plan=plan_of(row.plan),
            provider=row.Subscription.provider if row.Subscription else "offline", seats=row.seats,
            used=row.used, limits=_limits_plan(row.Subscription), mrr=int(row.mrr),
            currency=row.currency))
    return TenantTable(rows, total, page, pages, mrr_totals)


def _totals(plan: str | None, status: str | None, search: str | None) -> tuple[int, dict[str, int]]:
    matching = _tenants(select(_currency_column().label("currency"), _mrr_column().label("mrr")),
                        plan, status, search).subquery()
    rows = db.session.execute(select(matching.c.currency, func.count().label("tenants"),
                                     func.sum(matching.c.mrr).label("mrr")).group_by(matching.c.currency))
    total, mrr = 0, {}
    for row in rows:
        total += row.tenants
        if row.mrr:
            mrr[row.currency] = int(row.mrr)
    return total, mrr


# --- suspending ----------------------------------------------------------------------------

def set_status(tenant_id: int, status: str) -> Tenant:
    """Suspend (every request on its host answers 403; data kept) or resume a company."""
    if status not in (TenantStatus.ACTIVE, TenantStatus.SUSPENDED):
        raise Invalid(_l("Unknown status “%(status)s”.", status=status))
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(_l("No such company."))
    set_tenant_status(tenant.slug, status)
    return tenant
