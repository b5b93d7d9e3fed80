"""Billing jobs: apply a Stripe event, and keep paid seats equal to active people."""
from billing import stripe_provider, webhooks
from billing.models import Provider
from billing.services import apply, offline_state, subscription_of
from tenants.db import db

from .seats import active_users


def process_stripe_event(event_id: str) -> str:
    outcome = webhooks.process(event_id)
    if outcome.tenant_id is not None:
        sync_seats(outcome.tenant_id)  # a new subscription bills the people active now
    return outcome.message


def resync_all(echo=print) -> tuple[int, int]:
    """Bring every company that pays through Stripe to its subscription's state there, and its
    seats to its people: what a lost webhook would have done (run daily). (synced, failed)"""
    from sqlalchemy import select
    from tqdm import tqdm

    from billing.models import Subscription

    linked = db.session.execute(select(Subscription.tenant_id, Subscription.stripe_subscription_id)
                                .where(Subscription.stripe_subscription_id.is_not(None))
                                .order_by(Subscription.tenant_id)).all()
    db.session.commit()
    failed = 0
    for tenant_id, subscription_id in tqdm(linked, desc="subscriptions", unit="company", disable=len(linked) < 20):
        try:
            outcome = webhooks.sync(subscription_id, tenant_hint=tenant_id)
            db.session.commit()
            sync_seats(tenant_id)
        except stripe_provider.StripeUnavailable as error:
            db.session.rollback()
            failed += 1
            echo(f"company {tenant_id}: {error}")
            continue
        if outcome.message != "no change":
            echo(f"company {tenant_id}: {outcome.message}")
    return len(linked) - failed, failed


def sync_seats(tenant_id: int) -> int:
    """Bill as many seats as there are active people now (absolute, so running twice is harmless)."""
    row = subscription_of(tenant_id, lock=True)
    seats = active_users(tenant_id)
    if row.provider == Provider.STRIPE and row.stripe_subscription_id:
        if row.seats != seats:
            state = stripe_provider.state_of(stripe_provider.set_seats(row, seats))
            if state is not None:
                apply(row, state)
    else:
        apply(row, offline_state(row.plan, seats))
    db.session.commit()
    return seats
