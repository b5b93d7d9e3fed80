"""Stripe: Checkout to subscribe, the Customer Portal to pay and change, seat quantities, and
turning a Stripe subscription object into a State.

Enabled by STRIPE_SECRET_KEY. STRIPE_API_BASE points the client elsewhere (a local server in
tests). Prices live in Stripe; STRIPE_PRICE_STANDARD / STRIPE_PRICE_EXTENDED name them.
"""
from datetime import datetime, timezone

import stripe
from flask import current_app
from flask_babel import lazy_gettext as _l

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
    """Stripe could not be reached or refused the call; `message` is for a person."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


class Gone(StripeUnavailable):
    """Stripe has no such object (deleted, or from another Stripe account)."""


def enabled() -> bool:
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


def client() -> stripe.StripeClient:
    app = current_app._get_current_object()
    if "dealdocs_stripe" not in app.extensions:
        base = app.config.get("STRIPE_API_BASE")
        app.extensions["dealdocs_stripe"] = stripe.StripeClient(
            app.config["STRIPE_SECRET_KEY"], base_addresses={"api": base} if base else None,
            # Calls are made while the company's subscription row is locked: a slow Stripe must
            # fail in seconds (and be retried by the job), not hold the row for minutes.
            http_client=stripe.RequestsClient(timeout=10), max_network_retries=2)
    return app.extensions["dealdocs_stripe"]


def check_config(config) -> None:
    """At start-up: Stripe without its prices or webhook secret would fail only when an owner pays."""
    if not config.get("STRIPE_SECRET_KEY"):
        return
    missing = [name for name in ("STRIPE_WEBHOOK_SECRET", "STRIPE_PRICE_STANDARD", "STRIPE_PRICE_EXTENDED")
               if not config.get(name)]
    if missing:
        raise RuntimeError(f"STRIPE_SECRET_KEY is set but {', '.join(missing)} is not: set them, or unset "
                           "STRIPE_SECRET_KEY to switch plans without payment")


def price_id(plan: Plan) -> str:
    return current_app.config[f"STRIPE_PRICE_{plan.key.upper()}"]


def trial_days_for(row: Subscription) -> int:
    """The trial a first subscription starts with: one per company, before it ever had a customer."""
    return 0 if row.stripe_customer_id else int(current_app.config.get("TRIAL_DAYS", 0))


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
    except (stripe.APIConnectionError, stripe.RateLimitError) as error:
        current_app.logger.warning("Stripe did not answer: %s", error)
        raise StripeUnavailable(_l("The payment service did not answer. Nothing has changed; try again in a "
                                   "minute.")) from error
    except stripe.StripeError as error:  # our request or our Stripe account is wrong: retrying will not help
        if getattr(error, "code", None) == "resource_missing":
            raise Gone(_l("The subscription no longer exists at Stripe. Reload the page.")) from error
        current_app.logger.error("Stripe refused a call: %s", error)
        raise StripeUnavailable(_l("The payment service refused the request, so nothing has changed. The "
                                   "platform's team has been told; please try again later.")) from error


def checkout_url(row: Subscription, plan: Plan, seats: int, email: str, success_url: str, cancel_url: str) -> str:
    """A Checkout page where the owner subscribes `seats` seats of `plan` for this company."""
    subscription_data = {"metadata": {"tenant_id": str(row.tenant_id)}}
    if trial_days_for(row):
        subscription_data["trial_period_days"] = trial_days_for(row)
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
    """The Customer Portal for card and invoices; with a paid `plan`, straight to confirming the
    switch to it (prorated)."""
    params = {"customer": row.stripe_customer_id, "return_url": return_url}
    if plan is not None and plan.paid and row.stripe_subscription_id:
        params["flow_data"] = {
            "type": "subscription_update_confirm",
            "after_completion": {"type": "redirect", "redirect": {"return_url": return_url}},
            "subscription_update_confirm": {"subscription": row.stripe_subscription_id,
                                            "items": [{"id": row.stripe_item_id, "price": price_id(plan),
                                                       "quantity": row.seats}]}}
    return _call(client().v1.billing_portal.sessions.create, params).url


def end_with_period(row: Subscription, end: bool) -> dict:
    """End the subscription when its paid period does (back to Free then), or withdraw that.

    Done here rather than in the Portal so that "at the period's end" does not depend on how the
    Portal happens to be configured."""
    return _call(client().v1.subscriptions.update, row.stripe_subscription_id,
                 {"cancel_at_period_end": end}).to_dict()


def cancel_now_by_id(subscription_id: str) -> None:
    """Stop charging at once, with a prorated credit (a duplicate, or a company being deleted)."""
    _call(client().v1.subscriptions.cancel, subscription_id, {"prorate": True})


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
