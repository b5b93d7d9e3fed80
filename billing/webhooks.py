"""Stripe webhooks: verify, store once, then (in a job) bring the subscription to Stripe's state.

Events can arrive late, twice or out of order, so no handler trusts the event's copy of an
object or the order of arrival: each one names a subscription, and processing fetches that
subscription from Stripe while holding the company's subscription row, and applies it whole.
The last one to run therefore applies the newest state, whatever order the events came in.
"""
import json
from dataclasses import dataclass
from datetime import datetime, timezone

import stripe
from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from tenants.db import db
from tenants.models import Tenant, utcnow

from . import stripe_provider
from .models import Provider, StripeEvent, Subscription
from .services import FREE, apply, subscription_of

HANDLED = frozenset({
    "checkout.session.completed",
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "customer.subscription.paused", "customer.subscription.resumed",
    "invoice.paid", "invoice.payment_failed", "invoice.payment_succeeded",
})
TOLERANCE_SECONDS = 300  # a signature older than this is refused (replayed captures)


class BadSignature(Exception):
    pass


@dataclass(frozen=True)
class Received:
    event_id: str | None  # to process (new, or stored but not processed yet); None: nothing to do
    repeat: bool  # Stripe sent this event before


def receive(payload: bytes, signature: str) -> Received:
    """Verify and store an event once.

    A repeat of an event that is stored but not processed yet (its job was lost, say) is handed
    back for processing again: processing is idempotent, and Stripe's retries are what recover it.
    Raises BadSignature for anything Stripe did not sign with our secret in the last 5 minutes."""
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        raise BadSignature("STRIPE_WEBHOOK_SECRET is not set")
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature or "", secret, TOLERANCE_SECONDS)
        event = json.loads(payload)
        values = dict(id=str(event["id"]), type=str(event["type"]), payload=event,
                      created=datetime.fromtimestamp(int(event["created"]), tz=timezone.utc), received_at=utcnow())
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise BadSignature(str(error)) from error
    if values["type"] not in HANDLED:
        return Received(None, False)
    if db.session.execute(insert(StripeEvent).values(**values).on_conflict_do_nothing()
                          .returning(StripeEvent.id)).scalar() is not None:
        return Received(values["id"], False)
    processed = db.session.scalar(select(StripeEvent.processed_at).where(StripeEvent.id == values["id"]))
    return Received(None if processed else values["id"], True)


@dataclass(frozen=True)
class Outcome:
    tenant_id: int | None
    message: str


def process(event_id: str) -> Outcome:
    """Apply one stored event (run by a job; safe to run again: a processed event is skipped)."""
    event = db.session.get(StripeEvent, event_id, with_for_update=True)
    if event is None or event.processed_at is not None:
        db.session.rollback()
        return Outcome(event.tenant_id if event else None, "already processed")
    obj = event.payload["data"]["object"]
    outcome = _handle(event.type, obj)
    event = db.session.get(StripeEvent, event_id)
    event.processed_at, event.tenant_id, event.outcome = utcnow(), outcome.tenant_id, outcome.message
    db.session.commit()
    return outcome


def _handle(kind: str, obj: dict) -> Outcome:
    if kind == "checkout.session.completed":
        if obj.get("mode") != "subscription" or not obj.get("subscription"):
            return Outcome(None, "not a subscription checkout")
        return sync(_id(obj["subscription"]), tenant_hint=_int(obj.get("client_reference_id")),
                    customer=_id(obj.get("customer")))
    if kind.startswith("customer.subscription."):
        return sync(obj["id"], tenant_hint=_int((obj.get("metadata") or {}).get("tenant_id")),
                    customer=_id(obj.get("customer")))
    subscription = _id(((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
                       or obj.get("subscription"))
    if not subscription:
        return Outcome(None, "an invoice without a subscription")
    return sync(subscription, customer=_id(obj.get("customer")))


def sync(subscription_id: str, *, tenant_hint: int | None = None, customer: str | None = None) -> Outcome:
    """Bring the company that owns Stripe subscription `subscription_id` to its current state."""
    tenant_id = _owner(subscription_id, tenant_hint, customer)
    if tenant_id is None:
        return Outcome(None, f"no company for {subscription_id}")
    row = subscription_of(tenant_id, lock=True)  # one change at a time per company, fetched under the lock
    try:
        remote = stripe_provider.fetch(subscription_id)
    except stripe_provider.Gone:
        if row.stripe_subscription_id != subscription_id:
            return Outcome(tenant_id, f"{subscription_id} does not exist at Stripe; ignored")
        row.stripe_subscription_id = row.stripe_item_id = None
        changes = apply(row, FREE)
        return Outcome(tenant_id, f"{subscription_id} no longer exists at Stripe: back to Free")
    if row.stripe_subscription_id != remote["id"]:
        # Only a subscription our Checkout made for this company may become its subscription: a
        # client_reference_id alone can be typed by anyone into a payment link.
        if not _made_by_our_checkout(remote, tenant_id):
            return Outcome(tenant_id, f"{subscription_id} was not made by our Checkout for this company; ignored")
        if row.stripe_subscription_id is not None:
            return Outcome(tenant_id, _second_subscription(tenant_id, row, remote))
    if row.stripe_customer_id and remote["customer"] != row.stripe_customer_id:
        return Outcome(tenant_id, f"{subscription_id} belongs to another customer; ignored")
    try:
        state = stripe_provider.state_of(remote)
    except LookupError as error:
        return Outcome(tenant_id, str(error))
    row.provider, row.stripe_customer_id = Provider.STRIPE, remote["customer"]
    if state is None:
        row.stripe_subscription_id = row.stripe_item_id = None
        changes = apply(row, FREE)
    else:
        row.stripe_subscription_id, row.stripe_item_id = remote["id"], stripe_provider.seat_item(remote)["id"]
        changes = apply(row, state)
    return Outcome(tenant_id, "changed " + ", ".join(sorted(changes)) if changes else "no change")


def _made_by_our_checkout(remote: dict, tenant_id: int) -> bool:
    return str((remote.get("metadata") or {}).get("tenant_id")) == str(tenant_id)


def _second_subscription(tenant_id: int, row: Subscription, remote: dict) -> str:
    """The company already pays through another subscription. An old one ending changes nothing;
    a live second one (two Checkouts in two tabs) is cancelled, so the company is not charged twice."""
    if remote["status"] in stripe_provider.ENDED:
        return f"{remote['id']} is an earlier subscription that ended; ignored"
    stripe_provider.cancel_now_by_id(remote["id"])
    current_app.logger.error("tenant %s: cancelled duplicate subscription %s (current: %s); refund its first "
                             "invoice in Stripe if it was paid", tenant_id, remote["id"], row.stripe_subscription_id)
    return f"{remote['id']} duplicated the current subscription and was cancelled; refund it in Stripe if paid"


def _owner(subscription_id: str, tenant_hint: int | None, customer: str | None) -> int | None:
    """The company a subscription belongs to: known by its id, else by the tenant our Checkout
    recorded, else by the Stripe customer."""
    for column, value in ((Subscription.stripe_subscription_id, subscription_id),
                          (Subscription.tenant_id, tenant_hint),
                          (Subscription.stripe_customer_id, customer)):
        if value:
            found = db.session.scalar(select(Subscription.tenant_id).where(column == value))
            if found is not None:
                return found
    if tenant_hint is not None:
        return tenant_hint if _tenant_exists(tenant_hint) else None
    return None


def _tenant_exists(tenant_id: int) -> bool:
    return db.session.get(Tenant, tenant_id) is not None


def _id(value) -> str | None:
    """An expandable field: an id, or the expanded object."""
    return value.get("id") if isinstance(value, dict) else value


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
