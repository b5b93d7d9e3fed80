"""Billing through Stripe, end to end: the plan API on a company's host, the local fake Stripe
(tests/stripe_fake.py) that our real stripe-python client talks to, signed webhooks delivered to
/billing/stripe/webhook, and the RQ jobs that apply them.

Each scenario changes the fake's state the way Stripe would, takes the events Stripe would send,
delivers them (in order, reversed, twice, late, forged…) and checks what the company ends up with.
"""
import json
import logging
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import stripe
from babel.dates import format_date
from sqlalchemy import text

from billing import stripe_provider
from billing.plans import MB
from storage import ledger
from tenants.db import db

from . import billing_helpers
from .billing_helpers import (
    PRICE_EXTENDED, PRICE_STANDARD, SECRET_KEY, WEBHOOK_SECRET, deliver, deliver_all, payload_of, queued_jobs,
    retry_failed_jobs_now, run_jobs_of, scheduled_retries, utc, webhook_client)
from .conftest import PASSWORD, api_token, sign_in
from .crm_helpers import acting_as, add_person
from .stripe_fake import sign
from .test_auth import page_text, public, sql
from .test_crm_api import Api, created, ok, owner_api
from .test_documents_api import PDF, raw
from .test_people import accept, follow, invitation_link, new_email, set_access, web_invite

# The fixtures these tests use, from billing_helpers.
stripe_fake, stripe_app, make_stripe_app, run_stripe_jobs = (
    billing_helpers.stripe_fake, billing_helpers.stripe_app, billing_helpers.make_stripe_app,
    billing_helpers.run_stripe_jobs)

STANDARD_PER_USER = 500 * MB
FREE_LIMIT = 200 * MB


# --- small steps ---------------------------------------------------------------------------

def billing(api: Api) -> dict:
    return ok(api.get("/billing"))


def choose(api: Api, plan: str, expect: int = 200) -> dict:
    return ok(api.post("/billing/plan", json={"plan": plan}), expect)


def session_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def checkout(stripe_app, fake, api, plan: str = "standard", **complete) -> tuple[str, list[dict]]:
    """The owner chooses a paid plan and pays at Checkout: (subscription id, the events Stripe sends)."""
    change = choose(api, plan)
    assert change["kind"] == "checkout", change
    events = fake.complete_checkout(session_of(change["url"]), **complete)
    return events[1]["data"]["object"]["id"], events


def subscribe(stripe_app, fake, api, run_jobs, plan: str = "standard") -> str:
    """Checkout, its webhooks delivered and processed: the company is on `plan`."""
    sub_id, events = checkout(stripe_app, fake, api, plan)
    apply_events(stripe_app, events, run_jobs)
    assert billing(api)["plan"] == plan
    return sub_id


def apply_events(stripe_app, events, run_jobs) -> list[dict]:
    """Deliver `events` and run the jobs: each is then stored and processed (whatever it decided)."""
    answers = deliver_all(webhook_client(stripe_app), events)
    run_jobs()
    stored = stored_events(stripe_app, events)
    assert len(stored) == len({e["id"] for e in events}) and all(e.processed_at for e in stored), stored
    return answers


def row(app, company) -> dict:
    found = sql(app, "SELECT * FROM public.subscriptions WHERE tenant_id = :t", t=company.id)
    return dict(found[0]._mapping)


def stored_events(app, event_ids) -> list:
    """The stored rows of these events (the table is shared by every test of the run)."""
    ids = [event_ids] if isinstance(event_ids, str) else [e if isinstance(e, str) else e["id"] for e in event_ids]
    return sql(app, "SELECT id, processed_at, tenant_id, outcome FROM public.stripe_events WHERE id = ANY(:ids)",
               ids=ids)


def execute(app, statement: str, **params) -> None:
    with app.app_context():
        db.session.execute(text(statement), params)
        db.session.commit()


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def item_of(fake, sub_id: str) -> dict:
    return fake.subscription(sub_id)["items"]["data"][0]


def membership_id(app, company, email: str) -> int:
    return sql(app, "SELECT m.id FROM public.memberships m JOIN public.users u ON u.id = m.user_id "
                    "WHERE m.tenant_id = :t AND u.email = :e", t=company.id, e=email)[0].id


@pytest.fixture
def company(make_tenant):
    return make_tenant(name="Acme")


@pytest.fixture
def api(stripe_app, company):
    return owner_api(stripe_app, company)


# --- 1. upgrading through Checkout ----------------------------------------------------------

def test_upgrade_from_free_goes_through_checkout_and_its_webhooks(stripe_app, stripe_fake, company, api,
                                                                  run_stripe_jobs):
    add_person(stripe_app, company, "member")  # two active people: the Checkout is for two seats
    before = billing(api)
    assert (before["plan"], before["provider"], before["limit_bytes"], before["seats"]) == \
           ("free", "offline", FREE_LIMIT, 2)

    change = choose(api, "standard")
    assert (change["applied"], change["kind"], change["billing"]) == (False, "checkout", None)
    assert change["url"].startswith(f"{stripe_fake.url}/checkout/cs_")
    params = stripe_fake.calls("POST", "/v1/checkout/sessions")[-1]["params"]
    assert params["mode"] == "subscription"
    assert params["client_reference_id"] == str(company.id)
    assert params["line_items"] == [{"price": PRICE_STANDARD, "quantity": "2"}]
    assert params["subscription_data"]["metadata"] == {"tenant_id": str(company.id)}
    assert "trial_period_days" not in params["subscription_data"]  # TRIAL_DAYS=0 in this app
    assert params["customer_email"] == company.owner_email and "customer" not in params
    assert params["success_url"].startswith(f"http://{company.host}/settings/plan")
    assert billing(api)["plan"] == "free"  # nothing changes before Stripe says it is paid

    events = stripe_fake.complete_checkout(session_of(change["url"]))
    assert [e["type"] for e in events] == ["checkout.session.completed", "customer.subscription.created",
                                           "invoice.paid"]
    answers = deliver_all(webhook_client(stripe_app), events)
    assert all(answer["duplicate"] is False for answer in answers)
    assert billing(api)["plan"] == "free"  # the webhook only stores and queues: jobs apply
    run_stripe_jobs()

    sub = stripe_fake.subscription(events[1]["data"]["object"]["id"])
    now = billing(api)
    assert (now["plan"], now["limits_plan"], now["status"], now["provider"]) == \
           ("standard", "standard", "active", "stripe")
    assert (now["seats"], now["seats_paid"]) == (2, 2)
    assert now["limit_bytes"] == 2 * STANDARD_PER_USER
    assert when(now["period_end"]) == utc(sub["items"]["data"][0]["current_period_end"])
    assert now["grace_until"] is None and now["cancel_at_period_end"] is False
    assert now["next_invoice"]["amount"] in ("18", "18.00") and now["next_invoice"]["currency"] == "usd"
    saved = row(stripe_app, company)
    assert (saved["stripe_customer_id"], saved["stripe_subscription_id"], saved["stripe_item_id"]) == \
           (sub["customer"], sub["id"], sub["items"]["data"][0]["id"])
    assert {e.tenant_id for e in stored_events(stripe_app, events)} == {company.id}
    # Nothing more to bill: the seats already match the people.
    assert stripe_fake.subscription_updates(sub["id"]) == []


def test_a_first_subscription_starts_with_the_configured_trial(make_stripe_app, stripe_fake, company):
    trial_app = make_stripe_app(TRIAL_DAYS=14)
    api = owner_api(trial_app, company)
    change = choose(api, "extended")
    params = stripe_fake.calls("POST", "/v1/checkout/sessions")[-1]["params"]
    assert params["subscription_data"]["trial_period_days"] == "14"
    assert params["line_items"][0]["price"] == PRICE_EXTENDED

    events = stripe_fake.complete_checkout(session_of(change["url"]))
    deliver_all(webhook_client(trial_app), events)
    run_jobs_of(trial_app)

    now = billing(api)
    sub = events[1]["data"]["object"]
    assert (now["plan"], now["status"], now["limit_bytes"]) == ("extended", "trialing", None)
    assert when(now["period_end"]) == utc(sub["trial_end"])
    assert row(trial_app, company)["trial_end"] == utc(sub["trial_end"])


# --- 2. seats follow active people ----------------------------------------------------------

def invite_and_join(stripe_app, company, owner, run_jobs) -> str:
    """The owner invites a new address by the web form; the person follows the mailed link and joins."""
    address = new_email()
    assert web_invite(owner, address).status_code == 302
    run_jobs()  # sends the mail
    link = invitation_link(Path(stripe_app.config["OUTBOX_DIR"]), address)
    newcomer, path = follow(stripe_app, link)
    assert accept(newcomer, path, name="New Person", password=PASSWORD).status_code == 302
    return address


def test_paid_seats_follow_invitations_and_deactivation(stripe_app, stripe_fake, company, api, run_stripe_jobs):
    sub_id = subscribe(stripe_app, stripe_fake, api, run_stripe_jobs)
    item_id = item_of(stripe_fake, sub_id)["id"]
    owner = sign_in(stripe_app, company)

    invite_and_join(stripe_app, company, owner, run_stripe_jobs)
    run_stripe_jobs()
    assert [u["items"][0]["quantity"] for u in stripe_fake.subscription_updates(sub_id)] == ["2"]
    second = invite_and_join(stripe_app, company, owner, run_stripe_jobs)
    run_stripe_jobs()

    updates = stripe_fake.subscription_updates(sub_id)
    assert [u["items"] for u in updates] == [[{"id": item_id, "quantity": "2"}], [{"id": item_id, "quantity": "3"}]]
    assert {u["proration_behavior"] for u in updates} == {"create_prorations"}
    assert item_of(stripe_fake, sub_id)["quantity"] == 3
    now = billing(api)
    assert (now["seats"], now["seats_paid"], now["limit_bytes"]) == (3, 3, 3 * STANDARD_PER_USER)
    assert now["next_invoice"]["amount"] in ("27", "27.00")

    assert set_access(owner, membership_id(stripe_app, company, second), "deactivate").status_code == 302
    run_stripe_jobs()
    assert stripe_fake.subscription_updates(sub_id)[-1]["items"] == [{"id": item_id, "quantity": "2"}]
    assert item_of(stripe_fake, sub_id)["quantity"] == 2
    now = billing(api)
    assert (now["seats"], now["seats_paid"], now["limit_bytes"]) == (2, 2, 2 * STANDARD_PER_USER)

    # Stripe's own events about those updates change nothing more, and call for no further update.
    calls = len(stripe_fake.subscription_updates(sub_id))
    apply_events(stripe_app, [e for e in stripe_fake.events if e["type"] == "customer.subscription.updated"],
                 run_stripe_jobs)
    assert billing(api)["seats_paid"] == 2 and len(stripe_fake.subscription_updates(sub_id)) == calls


# --- 3. a failed payment, the grace period, and paying again -------------------------------

def test_payment_failure_grace_period_then_free_limits_then_paying_restores(stripe_app, stripe_fake, company, api,
                                                                           run_stripe_jobs):
    sub_id = subscribe(stripe_app, stripe_fake, api, run_stripe_jobs)
    deal = created(api, "deals", title="Supply")
    document = ok(raw(api, f"/deals/{deal['id']}/documents", PDF), 201)
    with acting_as(stripe_app, company):
        ledger.set_used(company.id, 300 * MB)  # more than Free allows, well within Standard

    events = stripe_fake.fail_payment(sub_id)
    assert [e["type"] for e in events] == ["invoice.payment_failed", "customer.subscription.updated"]
    apply_events(stripe_app, events, run_stripe_jobs)
    saved = row(stripe_app, company)
    assert saved["status"] == "past_due" and saved["past_due_since"] is not None
    grace_until = saved["past_due_since"] + timedelta(days=7)
    now = billing(api)
    assert (now["plan"], now["status"], now["limits_plan"]) == ("standard", "past_due", "standard")
    assert when(now["grace_until"]) == grace_until
    assert now["limit_bytes"] == STANDARD_PER_USER  # within the grace period nothing is limited yet
    plan_page = page_text(sign_in(stripe_app, company).get("/settings/plan"))
    # The owner is told the deadline (the page formats dates in UTC, Babel's default zone).
    assert format_date(grace_until.astimezone(timezone.utc), "long", locale="en") in plan_page

    # A later reminder of the same failure does not restart the grace period.
    apply_events(stripe_app, [stripe_fake.event("invoice.payment_failed",
                                                 stripe_fake.invoices[stripe_fake.subscription(sub_id)
                                                                      ["latest_invoice"]])], run_stripe_jobs)
    assert row(stripe_app, company)["past_due_since"] == saved["past_due_since"]

    execute(stripe_app, "UPDATE public.subscriptions SET past_due_since = past_due_since - interval '8 days' "
                        "WHERE tenant_id = :t", t=company.id)  # the grace period has run out
    limited = billing(api)
    assert (limited["plan"], limited["status"], limited["limits_plan"]) == ("standard", "past_due", "free")
    assert limited["limit_bytes"] == FREE_LIMIT and limited["over_limit_bytes"] == 100 * MB
    refused = raw(api, f"/deals/{deal['id']}/documents", b"one more\n", "more.txt")
    assert refused.status_code == 413 and refused.get_json()["limit_bytes"] == FREE_LIMIT
    streamed = api.get(f"/documents/{document['id']}/content?stream=1")
    assert streamed.status_code == 200 and streamed.data == PDF  # reading and downloading stay available

    events = stripe_fake.pay(sub_id)
    assert [e["type"] for e in events] == ["invoice.paid", "customer.subscription.updated"]
    apply_events(stripe_app, events, run_stripe_jobs)
    restored = billing(api)
    assert (restored["status"], restored["limits_plan"], restored["grace_until"]) == ("active", "standard", None)
    assert restored["limit_bytes"] == STANDARD_PER_USER
    assert row(stripe_app, company)["past_due_since"] is None
    assert raw(api, f"/deals/{deal['id']}/documents", b"one more\n", "more.txt").status_code == 201


# --- 4. cancellation ----------------------------------------------------------------------------

def test_cancellation_keeps_the_plan_until_the_period_ends_then_returns_to_free(stripe_app, stripe_fake, company, api,
                                                                                run_stripe_jobs):
    sub_id = subscribe(stripe_app, stripe_fake, api, run_stripe_jobs)
    period_end = billing(api)["period_end"]

    apply_events(stripe_app, stripe_fake.cancel_at_period_end(sub_id), run_stripe_jobs)
    ending = billing(api)
    assert (ending["plan"], ending["status"], ending["cancel_at_period_end"]) == ("standard", "active", True)
    assert ending["period_end"] == period_end and ending["next_invoice"] is None
    assert ending["limit_bytes"] == STANDARD_PER_USER

    events = stripe_fake.end(sub_id)
    assert [e["type"] for e in events] == ["customer.subscription.deleted"]
    apply_events(stripe_app, events, run_stripe_jobs)
    ended = billing(api)
    assert (ended["plan"], ended["status"], ended["limit_bytes"]) == ("free", "active", FREE_LIMIT)
    assert (ended["cancel_at_period_end"], ended["period_end"], ended["next_invoice"]) == (False, None, None)
    saved = row(stripe_app, company)
    assert saved["stripe_subscription_id"] is None and saved["stripe_customer_id"] is not None  # kept for next time

    # Subscribing again reuses the customer (no second trial, card on file).
    choose(api, "standard")
    params = stripe_fake.calls("POST", "/v1/checkout/sessions")[-1]["params"]
    assert params["customer"] == saved["stripe_customer_id"] and "customer_email" not in params


# --- switching and cancelling through the Customer Portal ---------------------------------------

class _StayHere(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the redirect is to the company's host, which no server answers in these tests


def open_page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def press(url: str) -> tuple[int, str]:
    """POST a form button on a fake Stripe page: (status, where it sends the browser)."""
    try:
        urllib.request.build_opener(_StayHere).open(urllib.request.Request(url, data=b"", method="POST"), timeout=10)
    except urllib.error.HTTPError as answer:
        return answer.code, answer.headers["Location"]
    raise AssertionError("no redirect")


def test_switching_and_cancelling_go_through_the_portal(stripe_app, stripe_fake, company, api, run_stripe_jobs):
    sub_id = subscribe(stripe_app, stripe_fake, api, run_stripe_jobs)
    change = choose(api, "extended")
    assert (change["applied"], change["kind"]) == (False, "portal")
    asked = stripe_fake.calls("POST", "/v1/billing_portal/sessions")[-1]["params"]
    assert asked["flow_data"]["type"] == "subscription_update_confirm"
    assert asked["flow_data"]["subscription_update_confirm"]["items"] == [
        {"id": item_of(stripe_fake, sub_id)["id"], "price": PRICE_EXTENDED, "quantity": "1"}]
    assert "Switch to Extended" in open_page(change["url"]) and billing(api)["plan"] == "standard"

    made = len(stripe_fake.events)
    status, location = press(change["url"] + "/confirm")
    assert status == 303 and location.startswith(f"http://{company.host}/settings/plan")
    apply_events(stripe_app, stripe_fake.events[made:], run_stripe_jobs)
    now = billing(api)
    assert (now["plan"], now["limit_bytes"]) == ("extended", None)
    assert now["next_invoice"]["amount"] in ("15", "15.00")

    # Free: we end the subscription with its period ourselves (whatever the Portal's settings say).
    back = choose(api, "free")
    assert (back["applied"], back["kind"]) == (True, None)
    assert stripe_fake.subscription_updates(sub_id)[-1] == {"cancel_at_period_end": "true"}
    now = billing(api)
    assert (now["plan"], now["cancel_at_period_end"], now["next_invoice"]) == ("extended", True, None)
    assert choose(api, "free", expect=409)["error"] == "conflict"  # already ending: nothing to do
    kept = choose(api, "extended")  # the owner changes their mind
    assert kept["applied"] and stripe_fake.subscription_updates(sub_id)[-1] == {"cancel_at_period_end": "false"}
    assert billing(api)["cancel_at_period_end"] is False


# --- 5. replayed events -----------------------------------------------------------------------

def test_a_replayed_event_is_recognised_and_changes_nothing(stripe_app, stripe_fake, company, api, run_stripe_jobs):
    sub_id, events = checkout(stripe_app, stripe_fake, api)
    hook = webhook_client(stripe_app)
    first = deliver(hook, events[0])
    assert first.status_code == 200 and first.get_json()["duplicate"] is False
    assert queued_jobs(stripe_app) == ["process_stripe_event"]
    run_stripe_jobs()
    assert billing(api)["plan"] == "standard"
    before = (billing(api), row(stripe_app, company))

    again = deliver(hook, events[0])  # Stripe retries, or someone replays it with a fresh signature
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert queued_jobs(stripe_app) == []
    assert len(stored_events(stripe_app, events[0]["id"])) == 1
    fetches = len(stripe_fake.calls("GET", f"/v1/subscriptions/{sub_id}"))
    run_stripe_jobs()
    assert (billing(api), row(stripe_app, company)) == before
    assert len(stripe_fake.calls("GET", f"/v1/subscriptions/{sub_id}")) == fetches


def test_a_captured_signature_older_than_five_minutes_is_refused(stripe_app, stripe_fake, company, api,
                                                                  run_stripe_jobs):
    sub_id = subscribe(stripe_app, stripe_fake, api, run_stripe_jobs)
    failed = stripe_fake.fail_payment(sub_id)[0]
    hook = webhook_client(stripe_app)

    old = deliver(hook, failed, timestamp=int(time.time()) - 301)
    assert old.status_code == 400 and old.get_json()["error"] == "bad_signature"
    assert stored_events(stripe_app, failed["id"]) == [] and queued_jobs(stripe_app) == []
    assert billing(api)["status"] == "active"

    fresh = deliver(hook, failed)  # the same event, signed now: accepted (the age was the reason)
    assert fresh.status_code == 200 and len(stored_events(stripe_app, failed["id"])) == 1


# --- 6. forged events ---------------------------------------------------------------------------

def test_forged_events_are_refused_and_nothing_is_stored(stripe_app, stripe_fake, company, api, run_stripe_jobs):
    sub_id = subscribe(stripe_app, stripe_fake, api, run_stripe_jobs)
    ended = stripe_fake.event("customer.subscription.deleted", {**stripe_fake.subscription(sub_id),
                                                                 "status": "canceled"})
    payload = payload_of(ended)
    tampered = payload_of({**ended, "type": "customer.subscription.updated"})
    hook = webhook_client(stripe_app)
    attempts = {
        "wrong secret": deliver(hook, ended, secret="whsec_someone_else"),
        "tampered body": deliver(hook, tampered, signature=sign(payload, WEBHOOK_SECRET)),
        "missing header": hook.post("/billing/stripe/webhook", data=payload, content_type="application/json"),
        "empty header": deliver(hook, ended, signature=""),
        "made-up v1": deliver(hook, ended, signature=f"t={int(time.time())},v1={'0' * 64}"),
        "v0 only": deliver(hook, ended, signature=sign(payload, WEBHOOK_SECRET).replace("v1=", "v0=")),
        "garbage": deliver(hook, b"\xff\xfe not json", signature="t=1,v1=zz"),
        "signed garbage": deliver(hook, b"{not json", signature=sign(b"{not json", WEBHOOK_SECRET)),
    }
    for name, response in attempts.items():
        assert response.status_code == 400, name
        assert response.get_json()["error"] == "bad_signature", name
    assert stored_events(stripe_app, ended["id"]) == [] and queued_jobs(stripe_app) == []
    run_stripe_jobs()
    assert billing(api)["plan"] == "standard"
    assert deliver(hook, ended).status_code == 200  # the same event, signed with our secret, is taken


def test_the_webhook_is_closed_without_stripe(app):
    response = public(app).post("/billing/stripe/webhook", data=b"{}", content_type="application/json",
                                headers={"Stripe-Signature": "t=1,v1=00"})
    assert response.status_code == 404


# --- 7. events out of order -----------------------------------------------------------------------

def test_events_in_reverse_order_end_in_stripes_current_state(stripe_app, stripe_fake, company, api, run_stripe_jobs):
    sub_id, created_events = checkout(stripe_app, stripe_fake, api)
    switched = stripe_fake.switch_price(sub_id, PRICE_EXTENDED)
    for event in reversed(created_events + switched):  # updated-to-extended first, checkout last
        apply_events(stripe_app, [event], run_stripe_jobs)
        assert billing(api)["plan"] == "extended", event["type"]
    now = billing(api)
    assert (now["status"], now["limit_bytes"]) == ("active", None)
    assert now["next_invoice"]["amount"] in ("15", "15.00")


def test_deleted_before_created_ends_on_free(stripe_app, stripe_fake, company, api, run_stripe_jobs):
    sub_id, created_events = checkout(stripe_app, stripe_fake, api)
    deleted = stripe_fake.end(sub_id)
    for event in deleted + list(reversed(created_events)):
        apply_events(stripe_app, [event], run_stripe_jobs)
        assert billing(api)["plan"] == "free", event["type"]
    saved = row(stripe_app, company)
    assert saved["stripe_subscription_id"] is None and saved["provider"] == "stripe"
    assert saved["stripe_customer_id"] == stripe_fake.subscription(sub_id)["customer"]


def test_an_old_subscription_ending_late_does_not_touch_the_new_one(stripe_app, stripe_fake, company, api,
                                                                     run_stripe_jobs):
    old = subscribe(stripe_app, stripe_fake, api, run_stripe_jobs)
    stale_update = stripe_fake.cancel_at_period_end(old)
    apply_events(stripe_app, stale_update + stripe_fake.end(old), run_stripe_jobs)
    assert billing(api)["plan"] == "free"

    new = subscribe(stripe_app, stripe_fake, api, run_stripe_jobs, plan="extended")
    assert new != old
    before = row(stripe_app, company)
    late = [stripe_fake.event("customer.subscription.deleted", stripe_fake.subscription(old)),
            stripe_fake.event("invoice.payment_failed", stripe_fake.invoices[stripe_fake.subscription(old)
                                                                             ["latest_invoice"]])]
    # …and Stripe's retry of the old cancellation notice, which we have never seen under this id.
    late.append(stripe_fake.event("customer.subscription.updated", stale_update[0]["data"]["object"]))
    apply_events(stripe_app, late, run_stripe_jobs)
    after = row(stripe_app, company)
    assert {k: v for k, v in after.items() if k != "updated_at"} == {k: v for k, v in before.items()
                                                                     if k != "updated_at"}
    assert (after["plan"], after["stripe_subscription_id"]) == ("extended", new)
    outcomes = [e.outcome for e in stored_events(stripe_app, late)]
    assert len(outcomes) == 3 and all("ignored" in outcome for outcome in outcomes), outcomes


def test_a_stale_payment_failure_after_the_invoice_was_paid_leaves_the_company_active(stripe_app, stripe_fake, company,
                                                                                        api, run_stripe_jobs):
    sub_id = subscribe(stripe_app, stripe_fake, api, run_stripe_jobs)
    failed = stripe_fake.fail_payment(sub_id)
    paid = stripe_fake.pay(sub_id)
    for event in paid + failed:  # the failure notice arrives after the payment
        apply_events(stripe_app, [event], run_stripe_jobs)
        now = billing(api)
        assert (now["status"], now["grace_until"]) == ("active", None), event["type"]
    assert row(stripe_app, company)["past_due_since"] is None


# --- 8. one company never reaches another's billing -------------------------------------------------

def test_company_a_cannot_read_or_change_company_b_billing(stripe_app, stripe_fake, make_tenant, run_stripe_jobs):
    a, b = make_tenant(name="Acme"), make_tenant(name="Globex")
    api_a, api_b = owner_api(stripe_app, a), owner_api(stripe_app, b)
    token_a = api_token(stripe_app, a)
    a_on_b = Api(stripe_app, b, token_a)
    assert a_on_b.get("/billing").status_code == 401
    assert a_on_b.post("/billing/plan", json={"plan": "standard"}).status_code == 401
    assert stripe_fake.calls("POST", "/v1/checkout/sessions") == []

    sub_b = subscribe(stripe_app, stripe_fake, api_b, run_stripe_jobs)
    b_before = row(stripe_app, b)
    sub_a = subscribe(stripe_app, stripe_fake, api_a, run_stripe_jobs)  # A's Checkout events…
    assert row(stripe_app, b) == b_before  # …never touch B
    assert row(stripe_app, a)["stripe_customer_id"] != b_before["stripe_customer_id"]
    assert {e.tenant_id for e in stored_events(stripe_app, stripe_fake.events)} == {a.id, b.id}

    # A subscription of another customer that claims to be B's (metadata, client_reference_id) is ignored.
    foreign = stripe_fake.create_checkout_session({
        "mode": "subscription", "client_reference_id": str(b.id), "customer_email": "mallory@example.com",
        "line_items": [{"price": PRICE_EXTENDED, "quantity": "1"}],
        "subscription_data": {"metadata": {"tenant_id": str(b.id)}}, "success_url": "http://example.com/"})
    claims = stripe_fake.complete_checkout(foreign["id"])
    claims.append(stripe_fake.event("customer.subscription.updated",
                                    {**stripe_fake.subscription(sub_a), "metadata": {"tenant_id": str(b.id)}}))
    apply_events(stripe_app, claims, run_stripe_jobs)
    assert row(stripe_app, b) == b_before and billing(api_b)["plan"] == "standard"
    assert row(stripe_app, a)["stripe_subscription_id"] == sub_a and billing(api_a)["plan"] == "standard"

    # A's owner, an administrator in B, still cannot open B's Portal (the owner's) by page or API.
    add_person(stripe_app, b, "admin", email_address=a.owner_email)
    portals = len(stripe_fake.calls("POST", "/v1/billing_portal/sessions"))
    at_b = sign_in(stripe_app, b, email=a.owner_email, password=PASSWORD)
    assert at_b.get("/settings/plan/portal").status_code == 403
    admin_api = Api(stripe_app, b, api_token(stripe_app, b, email=a.owner_email, password=PASSWORD))
    assert admin_api.post("/billing/plan", json={"plan": "extended"}).status_code == 403
    assert len(stripe_fake.calls("POST", "/v1/billing_portal/sessions")) == portals
    # A's own Portal is A's customer, never B's.
    portal = choose(api_a, "extended")
    assert portal["kind"] == "portal" and portal["url"].startswith(f"{stripe_fake.url}/portal/bps_")
    asked = stripe_fake.calls("POST", "/v1/billing_portal/sessions")[-1]["params"]
    assert asked["customer"] == row(stripe_app, a)["stripe_customer_id"]
    assert asked["flow_data"]["subscription_update_confirm"]["subscription"] == sub_a
    assert sub_b not in json.dumps(stripe_fake.calls("POST", "/v1/billing_portal/sessions"))


# --- 9. Stripe is down ----------------------------------------------------------------------------

def test_checkout_while_stripe_is_down_is_a_502_and_nothing_changes(stripe_app, stripe_fake, company, api):
    stripe_fake.fail_next("/v1/checkout/sessions", 503, times=100)  # down, whatever our client's retries
    response = api.post("/billing/plan", json={"plan": "standard"})
    assert response.status_code == 502
    body = response.get_json()
    assert body["error"] == "payment_provider_unavailable" and body["message"]
    assert billing(api)["plan"] == "free" and row(stripe_app, company)["provider"] == "offline"
    assert stripe_fake.calls("POST", "/v1/checkout/sessions")  # it was tried

    stripe_fake.recover()
    assert choose(api, "standard")["kind"] == "checkout"  # once Stripe answers again


def test_a_failing_subscription_fetch_fails_the_job_and_its_retry_applies_the_event(stripe_app, stripe_fake, company,
                                                                                     api, run_stripe_jobs):
    sub_id, events = checkout(stripe_app, stripe_fake, api)
    stripe_fake.fail_next(f"/v1/subscriptions/{sub_id}", 500, times=100)
    deliver_all(webhook_client(stripe_app), events[:1])
    run_stripe_jobs()
    assert scheduled_retries(stripe_app) == 1
    assert stored_events(stripe_app, events[0]["id"])[0].processed_at is None  # to be done again
    assert billing(api)["plan"] == "free"

    stripe_fake.recover()
    assert retry_failed_jobs_now(stripe_app) == 1
    run_stripe_jobs()
    assert billing(api)["plan"] == "standard"
    assert stored_events(stripe_app, events[0]["id"])[0].processed_at is not None
    assert scheduled_retries(stripe_app) == 0


# --- 10. no call leaves the machine ---------------------------------------------------------------

def test_every_stripe_call_goes_to_the_configured_server_with_the_secret_key(stripe_app, stripe_fake, company, api,
                                                                              run_stripe_jobs, caplog):
    assert stripe.enable_telemetry is False
    caplog.set_level(logging.INFO, logger="stripe")
    sub_id = subscribe(stripe_app, stripe_fake, api, run_stripe_jobs)  # Checkout, then fetches
    add_person(stripe_app, company, "member")
    leaving = add_person(stripe_app, company, "member")
    assert set_access(sign_in(stripe_app, company), leaving.membership_id, "deactivate").status_code == 302
    run_stripe_jobs()  # seats: 2
    choose(api, "extended")  # the Portal

    made = [line for line in caplog.messages if "Request to Stripe api" in line]
    assert len(made) == len(stripe_fake.requests) >= 4
    assert all(f"url={stripe_fake.url}/v1/" in line for line in made)
    assert {(r["method"], r["path"].rsplit("_test_", 1)[0]) for r in stripe_fake.requests} == {
        ("POST", "/v1/checkout/sessions"), ("GET", "/v1/subscriptions/sub"), ("POST", "/v1/subscriptions/sub"),
        ("POST", "/v1/billing_portal/sessions")}
    for request in stripe_fake.requests:
        assert request["headers"]["authorization"] == f"Bearer {SECRET_KEY}"
        assert "x-stripe-client-telemetry" not in request["headers"]
    assert stripe_fake.subscription_updates(sub_id)[-1]["items"][0]["quantity"] == "2"
    with stripe_app.app_context():
        assert stripe_provider.client()._requestor.base_addresses.get("api") == stripe_fake.url


# --- 11. guards added after review ----------------------------------------------------------

def test_a_subscription_our_checkout_did_not_make_never_binds_to_a_company(stripe_app, stripe_fake, company, api,
                                                                          run_stripe_jobs):
    """A payment link carries any client_reference_id a stranger types; only our Checkout sets the
    subscription's metadata, so only that binds."""
    stranger = stripe_fake.create_checkout_session({
        "mode": "subscription", "client_reference_id": str(company.id), "customer_email": "stranger@example.com",
        "success_url": "https://example.com/", "line_items": [{"price": PRICE_STANDARD, "quantity": "1"}]})
    apply_events(stripe_app, stripe_fake.complete_checkout(stranger["id"]), run_stripe_jobs)
    after = row(stripe_app, company)
    assert (after["plan"], after["stripe_customer_id"], after["stripe_subscription_id"]) == ("free", None, None)
    outcomes = [event.outcome or "" for event in stored_events(stripe_app, stripe_fake.events[-3:])]
    assert any("not made by our Checkout" in outcome for outcome in outcomes), outcomes


def test_a_second_checkout_in_another_tab_is_cancelled_not_charged_twice(stripe_app, stripe_fake, company, api,
                                                                         run_stripe_jobs):
    first = choose(api, "standard")
    second = choose(api, "standard")  # the first Checkout's webhooks have not arrived yet
    first_sub, first_events = stripe_fake.complete_checkout(session_of(first["url"]))[1]["data"]["object"]["id"], \
        stripe_fake.events[-3:]
    apply_events(stripe_app, first_events, run_stripe_jobs)
    second_events = stripe_fake.complete_checkout(session_of(second["url"]))
    second_sub = second_events[1]["data"]["object"]["id"]
    apply_events(stripe_app, second_events, run_stripe_jobs)
    assert stripe_fake.calls("DELETE", f"/v1/subscriptions/{second_sub}"), "the duplicate was not cancelled"
    assert stripe_fake.subscription(second_sub)["status"] == "canceled"
    assert (row(stripe_app, company)["stripe_subscription_id"], billing(api)["plan"]) == (first_sub, "standard")


def test_dropping_a_company_cancels_its_subscription_first(stripe_app, stripe_fake, company, api, run_stripe_jobs):
    from saas.maintenance import drop_tenant
    from tenants.registry import lookup_tenant

    sub_id = subscribe(stripe_app, stripe_fake, api, run_stripe_jobs)
    with stripe_app.app_context():
        drop_tenant(lookup_tenant(tenant_id=company.id))
    assert stripe_fake.subscription(sub_id)["status"] == "canceled"


def test_an_oversized_webhook_body_is_refused_unread(stripe_app):
    answer = webhook_client(stripe_app).post("/billing/stripe/webhook", data=b"x" * (2 * 1024 * 1024),
                                             headers={"Stripe-Signature": "t=1,v1=0"})
    assert answer.status_code == 413


def test_stripe_without_its_prices_or_webhook_secret_refuses_to_start(make_app):
    with pytest.raises(RuntimeError, match="STRIPE_WEBHOOK_SECRET, STRIPE_PRICE_EXTENDED"):
        make_app(STRIPE_SECRET_KEY="sk_test_x", STRIPE_PRICE_STANDARD="price_standard")


def test_the_daily_sync_repairs_what_lost_webhooks_would_have_done(stripe_app, stripe_fake, company, api,
                                                                   run_stripe_jobs, make_tenant):
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from saas.cli import cli

    def sync():
        return CliRunner().invoke(cli, ["billing", "sync"], obj=ScriptInfo(create_app=lambda: stripe_app))

    sub_id = subscribe(stripe_app, stripe_fake, api, run_stripe_jobs)
    stripe_fake.fail_payment(sub_id)  # its events never arrive
    result = sync()
    assert result.exit_code == 0, result.output
    assert billing(api)["status"] == "past_due" and "changed past_due_since, status" in result.output

    other = make_tenant(name="Globex")
    other_api = owner_api(stripe_app, other)
    other_sub = subscribe(stripe_app, stripe_fake, other_api, run_stripe_jobs)
    del stripe_fake.subscriptions[other_sub]  # gone from Stripe (deleted there by hand)
    stripe_fake.end(sub_id)
    result = sync()
    assert result.exit_code == 0, result.output
    assert billing(api)["plan"] == "free" and billing(other_api)["plan"] == "free"
    assert "no longer exists at Stripe" in result.output
    assert (row(stripe_app, company)["stripe_subscription_id"], row(stripe_app, other)["stripe_subscription_id"]) \
        == (None, None)
