"""Stripe: Checkout to subscribe, the Customer Portal to pay and change, seat quantities, and
turning a Stripe subscription object into a State.

Enabled by STRIPE_SECRET_KEY. STRIPE_API_BASE points the client elsewhere (a local server in
tests). Prices live in Stripe; STRIPE_PRICE_STANDARD / STRIPE_PRICE_EXTENDED name them.
"""
from datetime import datetime, timezone

import stripe
from flask import current_app

from .models import Status, Subscription
from .plans import Plan, plan_of
from .services import State

stripe.enable_telemetry = False  # no request timings sent to Stripe

# Stripe statuses: live ones become ours; ended ones return the company to Free; "incomplete"
# (the first payment has not gone through) changes nothing yet.
LIVE = {"active": Status.ACTIVE, "trialing": Status.TRIALING, "past_due": Status.PAST_DUE,
        "unpaid": Status.PAST_DUE, "paused": Status.PAST_DUE}
ENDED = {"canceled", "incomplete_expired"}


class StripeUnavailable(Exception):
    """Stripe could not be reached or refused the call; the message is for a person."""


def enabled() -> bool:
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


def client() -> stripe.StripeClient:
    app = current_app._get_current_object()
    if "dealdocs_stripe" not in app.extensions:
        base = app.config.get("STRIPE_API_BASE")
        app.extensions["dealdocs_stripe"] = stripe.StripeClient(
            app.config["STRIPE_SECRET_KEY"], base_addresses={"api": base} if base else None,
            max_network_retries=2)
    return app.extensions["dealdocs_stripe"]


def price_id(plan: Plan) -> str:
    price = current_app.config.get(f"STRIPE_PRICE_{plan.key.upper()}")
    if not price:
        raise RuntimeError(f"STRIPE_PRICE_{plan.key.upper()} is not set: name the Stripe price of the {plan.key} plan")
    return price


def plan_for_price(price) -> str | None:
    """Which of our plans a Stripe price is: by the configured id, else its lookup key."""
    for key in ("standard", "extended"):
        if price.get("id") and price.get("id") == current_app.config.get(f"STRIPE_PRICE_{key.upper()}"):
            return key
    lookup = (price.get("lookup_key") or "").removeprefix("dealdocs_")
    return lookup if lookup in ("standard", "extended") else None


def _call(method, *args, **kwargs):
    try:
        return method(*args, **kwargs)
    except stripe.StripeError as error:
        current_app.logger.warning("Stripe refused a call: %s", error)
        raise StripeUnavailable(error.user_message or "Stripe could not be reached. Try again in a minute.") from error


def checkout_url(row: Subscription, plan: Plan, seats: int, email: str, success_url: str, cancel_url: str) -> str:
    """A Checkout page where the owner subscribes `seats` seats of `plan` for this company."""
    subscription_data = {"metadata": {"tenant_id": str(row.tenant_id)}}
    trial_days = int(current_app.config.get("TRIAL_DAYS", 0))
    if trial_days and row.stripe_customer_id is None:  # one trial per company, on its first subscription
        subscription_data["trial_period_days"] = trial_days
    params = {
        "mode": "subscription",
        "client_reference_id": str(row.tenant_id),
        "line_items": [{"price": price_id(plan), "quantity": max(seats, 1)}],
        "subscription_data": subscription_data,
        "metadata": {"tenant_id": str(row.tenant_id), "plan": plan.key},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    if row.stripe_customer_id:
        params["customer"] = row.stripe_customer_id
    else:
        params["customer_email"] = email
    return _call(client().v1.checkout.sessions.create, params).url


def portal_url(row: Subscription, return_url: str, plan: Plan | None = None) -> str:
    """The Customer Portal for card and invoices; with `plan`, straight to switching to it
    (a paid plan) or to cancelling (Free, effective at the period's end)."""
    params = {"customer": row.stripe_customer_id, "return_url": return_url}
    if plan is not None and row.stripe_subscription_id:
        after = {"type": "redirect", "redirect": {"return_url": return_url}}
        if plan.paid:
            params["flow_data"] = {"type": "subscription_update_confirm", "after_completion": after,
                                   "subscription_update_confirm": {
                                       "subscription": row.stripe_subscription_id,
                                       "items": [{"id": row.stripe_item_id, "price": price_id(plan),
                                                  "quantity": row.seats}]}}
        else:
            params["flow_data"] = {"type": "subscription_cancel", "after_completion": after,
                                   "subscription_cancel": {"subscription": row.stripe_subscription_id}}
    return _call(client().v1.billing_portal.sessions.create, params).url


def set_seats(row: Subscription, seats: int) -> dict:
    """Bill `seats` seats from now on, prorated; the absolute quantity, so repeating it is harmless."""
    return _call(client().v1.subscriptions.update, row.stripe_subscription_id, {
        "items": [{"id": row.stripe_item_id, "quantity": max(seats, 1)}],
        "proration_behavior": "create_prorations",
    }).to_dict()


def fetch(subscription_id: str) -> dict:
    """The subscription as Stripe has it now, as plain dicts (StripeObjects are not dicts in stripe 16)."""
    return _call(client().v1.subscriptions.retrieve, subscription_id).to_dict()


def seat_item(remote) -> dict | None:
    """The subscription's line that is one of our plans (its quantity is the seats)."""
    for item in (remote.get("items") or {}).get("data", []):
        if plan_for_price(item.get("price") or {}):
            return item
    return None


def state_of(remote) -> State | None:
    """Our State for a live Stripe subscription; None when it has ended (back to Free).

    Raises LookupError when it is not ours to apply (still incomplete, or no plan of ours)."""
    if remote["status"] in ENDED:
        return None
    item = seat_item(remote)
    if remote["status"] not in LIVE or item is None:
        raise LookupError(f"subscription {remote['id']} is {remote['status']} with no plan of ours")
    price = item["price"]
    quantity = int(item.get("quantity") or 1)
    per_month = int(price.get("unit_amount") or 0) * quantity
    if ((price.get("recurring") or {}).get("interval")) == "year":
        per_month //= 12
    return State(
        plan=plan_for_price(price), status=LIVE[remote["status"]], seats=quantity, monthly_amount=per_month,
        currency=(price.get("currency") or plan_of("standard").currency).lower(),
        # Since Stripe's 2025-03-31 API the period belongs to each item, not the subscription.
        current_period_end=_time(item.get("current_period_end") or remote.get("current_period_end")),
        cancel_at_period_end=bool(remote.get("cancel_at_period_end") or remote.get("cancel_at")),
        trial_end=_time(remote.get("trial_end")),
    )


def _time(epoch) -> datetime | None:
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc) if epoch else None
