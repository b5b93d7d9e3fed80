"""The plan catalogue and applying subscription states: what every provider goes through."""
from datetime import timedelta
from decimal import Decimal

from billing.models import Status
from billing.plans import catalogue, plan_of
from billing.services import FREE, State, apply, limits_plan, offline_state, standing, subscription_of
from saas.auth import services as auth
from tenants.db import db
from tenants.models import utcnow
from tenants.registry import lookup_tenant

from .test_people import add_person, owner_membership_id

MB = 1024 * 1024


def test_a_new_company_starts_on_free_offline_with_one_seat(app, make_tenant):
    company = make_tenant()
    with app.app_context():
        row = subscription_of(company.id)
        assert (row.plan, row.status, row.provider, row.seats, row.monthly_amount) == ("free", "active", "offline", 1, 0)
        assert limits_plan(company.id).storage_limit(1) == 200 * MB


def test_prices_limits_and_currency_are_configuration(make_app):
    tuned = make_app(PLAN_STANDARD_PRICE="12.50", PLAN_EXTENDED_PRICE="20", BILLING_CURRENCY="RUB",
                     PLAN_FREE_STORAGE_MB=50, PLAN_STANDARD_STORAGE_MB_PER_USER=1000)
    with tuned.app_context():
        plans = catalogue()
        assert plans["standard"].price_per_user == Decimal("12.50") and plans["standard"].currency == "rub"
        assert plans["standard"].monthly_price(3) == Decimal("37.50")
        assert plans["free"].storage_limit(10) == 50 * MB
        assert plans["standard"].storage_limit(3) == 3000 * MB
        assert plans["extended"].storage_limit(3) is None and not plans["free"].paid
        assert offline_state("extended", 2).monthly_amount == 4000


def test_unknown_plan_keys_read_as_free_and_cannot_be_applied(app, make_tenant):
    company = make_tenant()
    with app.app_context():
        assert plan_of("platinum").key == "free"
        row = subscription_of(company.id, lock=True)
        try:
            apply(row, State("platinum"))
        except ValueError:
            pass
        else:
            raise AssertionError("an unknown plan was applied")
        db.session.rollback()
        assert subscription_of(company.id).plan == "free"


def test_the_grace_period_runs_from_the_first_failure_and_ends_on_payment(app, make_tenant):
    company = make_tenant()
    with app.app_context():
        row = subscription_of(company.id, lock=True)
        apply(row, State("standard", Status.ACTIVE, seats=3))
        assert apply(row, State("standard", Status.PAST_DUE, seats=3))["status"] == ("active", "past_due")
        first = row.past_due_since
        apply(row, State("standard", Status.PAST_DUE, seats=3))  # a second reminder of the same failure
        assert row.past_due_since == first
        db.session.commit()
        now = standing(company.id)
        assert now.grace_until == first + timedelta(days=7) and not now.limited and now.limits.key == "standard"

        row = subscription_of(company.id, lock=True)
        row.past_due_since = utcnow() - timedelta(days=8)
        db.session.commit()
        now = standing(company.id)
        assert now.limited and now.plan.key == "standard" and now.limits.key == "free"

        apply(subscription_of(company.id, lock=True), State("standard", Status.ACTIVE, seats=3))
        db.session.commit()
        assert subscription_of(company.id).past_due_since is None and limits_plan(company.id).key == "standard"


def test_apply_reports_only_what_changed_and_free_resets_everything(app, make_tenant):
    company = make_tenant()
    with app.app_context():
        row = subscription_of(company.id, lock=True)
        state = State("extended", Status.TRIALING, seats=4, monthly_amount=6000, current_period_end=utcnow())
        assert set(apply(row, state)) == {"plan", "status", "seats", "monthly_amount", "current_period_end"}
        assert apply(row, state) == {}
        apply(row, FREE)
        assert (row.plan, row.status, row.seats, row.monthly_amount, row.current_period_end) == \
            ("free", "active", 1, 0, None)
        db.session.rollback()


def test_offline_seats_follow_active_people(app, make_tenant, run_jobs):
    company = make_tenant()
    with app.app_context():
        apply(subscription_of(company.id, lock=True), offline_state("standard", 1))
        db.session.commit()
    person = add_person(app, company)
    with app.app_context():
        tenant = lookup_tenant(tenant_id=company.id)
        owner = db.session.get(auth.Membership, owner_membership_id(app, company))
        auth.set_active(tenant, owner, person.membership_id, False)
        auth.set_active(tenant, owner, person.membership_id, True)
    run_jobs()
    with app.app_context():
        row = subscription_of(company.id)
        assert (row.seats, row.monthly_amount) == (2, 1800)
