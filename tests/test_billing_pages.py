"""The plan page with the offline provider: switching both ways with limits that follow at once,
a downgrade over the limit explained with the exact excess (allowed, uploads refused, nothing
lost), who may see and switch, the owner's past-due and ending banners, and another company's
owner and token that reach nothing.

Storage is filled by real uploads through an app whose Free plan holds 1 MB (PLAN_FREE_STORAGE_MB),
so a few hundred KB stand in for 200 MB."""
import html
import os
import re
from datetime import timedelta

import pytest
from babel.dates import format_date
from sqlalchemy import text

from billing.models import Status
from billing.services import State, apply, subscription_of
from saas.documents.services import human_size
from tenants.db import db
from tenants.models import utcnow

from .conftest import client_for, csrf_token, api_token, sign_in
from .crm_helpers import add_person
from .test_auth import copy_cookie, messages
from .test_documents_pages import fetch, make_deal, post_file, upload

KB = 1024
MB = 1024 * KB
FREE_MB = 1


@pytest.fixture
def tiny(tuned_app):
    """The app with a 1 MB Free plan (Standard keeps its 500 MB per person)."""
    return tuned_app(PLAN_FREE_STORAGE_MB=FREE_MB)


def content(size: int) -> bytes:
    return os.urandom(size)  # different bytes each time: never a duplicate


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def billing(client, token: str) -> dict:
    response = client.get("/api/v1/billing", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def any_token(client) -> str:
    """The CSRF token every signed-in page carries (the sign-out form)."""
    return csrf_token(client.get("/").get_data(as_text=True))


def switch(client, key: str):
    """Open the confirmation page for `key` and press its button, as the owner would."""
    page = client.get(f"/settings/plan/{key}")
    assert page.status_code == 200, page.status_code
    assert f'action="/settings/plan/{key}"' in page.get_data(as_text=True)
    return client.post(f"/settings/plan/{key}", data={"csrf_token": csrf_token(page.get_data(as_text=True))})


def switched(client, key: str) -> str:
    response = switch(client, key)
    assert response.status_code == 302 and response.headers["Location"].endswith("/settings/plan"), \
        (response.status_code, response.headers.get("Location"))
    return text_of(client.get("/settings/plan"))


def storage_limit_shown(client) -> str:
    """The limit the documents' usage page shows (what uploads are admitted against)."""
    page = text_of(client.get("/settings/storage"))
    match = re.search(r"<strong data-limit>([^<]+)</strong>", page)
    return match.group(1) if match else ("unlimited" if "no storage limit" in page else "?")


def upload_refused(client, deal_id: int, size: int = 10 * KB) -> dict:
    response = post_file(client, f"/deals/{deal_id}/documents", content(size), "more.bin")
    assert response.status_code == 413, (response.status_code, response.get_json())
    return response.get_json()


def plan_row(app, company):
    with app.app_context():
        row = subscription_of(company.id)
        db.session.expunge(row)
        return row


def set_state(app, company, state: State) -> None:
    """What a payment provider would say, applied by our own billing code."""
    with app.app_context():
        apply(subscription_of(company.id, lock=True), state)
        db.session.commit()


# --- switching ---------------------------------------------------------------------------------

def test_the_owner_switches_both_ways_and_the_limits_follow_at_once(tiny, make_tenant):
    company = make_tenant()
    deal_id = make_deal(tiny, company)
    owner = sign_in(tiny, company)
    token = api_token(tiny, company)
    api = client_for(tiny, company)
    upload(owner, deal_id, content(300 * KB), "drawing.bin")

    start = billing(api, token)
    assert (start["plan"], start["limit_bytes"], start["used_bytes"]) == ("free", FREE_MB * MB, 300 * KB)
    assert storage_limit_shown(owner) == "1.0 MB"

    expected = {"free": (FREE_MB * MB, "1.0 MB"), "standard": (500 * MB, "500.0 MB"), "extended": (None, "unlimited")}
    for key in ("standard", "extended", "standard", "free", "extended", "free"):
        page = switched(owner, key)
        limit, shown = expected[key]
        now = billing(api, token)
        assert (now["plan"], now["limits_plan"], now["limit_bytes"], now["status"]) == (key, key, limit, "active")
        assert now["used_bytes"] == 300 * KB and now["over_limit_bytes"] == 0
        assert storage_limit_shown(owner) == shown
        assert f'data-plan="{key}"' in page
        said = f"The company is on the {key.title()} plan now: " + (
            "storage is unlimited." if limit is None else f"the storage limit is {shown}.")
        assert said in page  # the flash, on the plan page it leads back to
        assert plan_row(tiny, company).provider == "offline"


def test_the_plan_page_shows_the_plan_seats_storage_and_the_three_plans_side_by_side(app, make_tenant):
    company = make_tenant()
    add_person(app, company, "member")
    add_person(app, company, "admin")
    owner = sign_in(app, company)

    page = owner.get("/settings/plan")
    assert page.status_code == 200
    body = text_of(page)
    assert 'data-plan="free"' in body and "Free plan" in body and "Active" in body
    assert "3 active people" in body  # seats in use
    assert "<strong data-used>0 B</strong> of <strong data-limit>200.0 MB</strong>" in body
    assert "Nothing stored yet." in body  # an empty company
    assert "Billing is offline: there is no payment, and a switch of plan takes effect at once." in body
    assert 'href="/settings/plan" aria-current="page"' in body  # the settings tab

    for key in ("free", "standard", "extended"):
        assert f'data-plan-option="{key}"' in body
    # Prices per person a month, with the company's total for today's three people.
    assert "$9.00</strong> per person a month" in body and "$27.00 a month for your 3 active people" in body
    assert "$15.00</strong> per person a month" in body and "$45.00 a month for your 3 active people" in body
    assert "1.5 GB of storage: 500.0 MB for each of your 3 active people" in body
    assert "Unlimited storage" in body
    assert "The storage limit becomes 1.5 GB." in body and "Storage becomes unlimited." in body
    assert 'href="/settings/plan/standard"' in body and 'href="/settings/plan/extended"' in body
    assert 'href="/settings/plan/free"' not in body  # not a switch to where it is
    assert "trial" not in body.lower()  # offline: no trials


def test_extended_has_no_bar_and_says_unlimited(app, make_tenant):
    company = make_tenant()
    owner = sign_in(app, company)
    switched(owner, "extended")
    body = text_of(owner.get("/settings/plan"))
    assert 'data-plan="extended"' in body and 'role="progressbar"' not in body
    assert '<span data-limit>unlimited</span>' in body


def test_an_unknown_plan_is_404_and_the_current_one_is_no_switch(app, make_tenant):
    company = make_tenant()
    owner = sign_in(app, company)
    assert owner.get("/settings/plan/platinum").status_code == 404
    assert owner.post("/settings/plan/platinum", data={"csrf_token": any_token(owner)}).status_code == 404
    same = owner.get("/settings/plan/free")
    assert same.status_code == 302
    assert "The company is already on the Free plan." in messages(owner.get("/settings/plan"))
    assert owner.post("/settings/plan/standard", data={}).status_code == 400  # no CSRF token: nothing changes
    assert plan_row(app, company).plan == "free"


def test_back_from_checkout_the_owner_reads_what_happens_next(app, make_tenant):
    company = make_tenant()
    owner = sign_in(app, company)
    done = owner.get("/settings/plan?checkout=done")
    assert done.status_code == 302 and done.headers["Location"].endswith("/settings/plan")
    assert any("as soon as Stripe confirms the payment, usually within seconds" in m
               for m in messages(owner.get("/settings/plan")))
    owner.get("/settings/plan?checkout=cancelled")
    assert any("Checkout was cancelled" in m for m in messages(owner.get("/settings/plan")))


def test_offline_there_is_no_portal_and_the_owner_is_told_why(app, make_tenant):
    company = make_tenant()
    owner = sign_in(app, company)
    response = owner.get("/settings/plan/portal")
    assert response.status_code == 302 and response.headers["Location"].endswith("/settings/plan")
    assert "There is no payment account yet: choose a paid plan first." in messages(owner.get("/settings/plan"))
    admin = add_person(app, company, "admin")
    assert sign_in(app, company, admin.email).get("/settings/plan/portal").status_code == 403


# --- a downgrade over the limit, and an upgrade ----------------------------------------------------

def test_a_downgrade_over_the_limit_is_explained_allowed_refuses_uploads_and_loses_nothing(tiny, make_tenant):
    company = make_tenant()
    deal_id = make_deal(tiny, company)
    owner = sign_in(tiny, company)
    switched(owner, "standard")
    files = {"contract.pdf": content(700 * KB), "drawing.dwg": content(500 * KB), "photo.png": content(123_457)}
    ids = {name: upload(owner, deal_id, data, name) for name, data in files.items()}
    used = sum(len(data) for data in files.values())
    excess = used - FREE_MB * MB
    assert excess > 0

    # The plan page already says what a switch to Free would mean…
    page = text_of(owner.get("/settings/plan"))
    free = page[page.index('data-plan-option="free"'):page.index('data-plan-option="standard"')]
    assert f'data-over-bytes="{excess}"' in free
    # …and the confirmation spells it out with the exact figures.
    confirm = text_of(owner.get("/settings/plan/free"))
    assert "Switch from Standard to Free?" in confirm and "The storage limit becomes 1.0 MB." in confirm
    assert f'data-over-bytes="{excess}"' in confirm
    assert (f"The company stores {human_size(used)}, {human_size(excess)} over this limit: nothing is deleted, but "
            f"new uploads and generated documents are refused until {human_size(excess)} is freed.") in confirm
    assert f"({excess:,} bytes exactly)" in confirm

    switch(owner, "free")
    assert any(f"It stores {human_size(excess)} more than that: nothing is deleted" in m
               for m in messages(owner.get("/settings/plan")))
    token = api_token(tiny, company)
    now = billing(client_for(tiny, company), token)
    assert (now["plan"], now["used_bytes"], now["limit_bytes"], now["over_limit_bytes"]) == \
        ("free", used, FREE_MB * MB, excess)

    refused = upload_refused(owner, deal_id)
    assert refused["error"] == "quota_exceeded" and refused["plan"] == "Free"
    assert f"free {human_size(excess)}" in refused["message"] and "Nothing has been deleted." in refused["message"]
    assert refused["used_bytes"] == used and refused["limit_bytes"] == FREE_MB * MB

    # Nothing is lost: every document is listed and downloads byte for byte.
    card = owner.get(f"/deals/{deal_id}").get_data(as_text=True)
    for name, document_id in ids.items():
        assert f'href="/documents/{document_id}"' in card and name in card
        body, _headers = fetch(owner, f"/documents/{document_id}/download")
        assert body == files[name]
    assert billing(client_for(tiny, company), token)["used_bytes"] == used
    # The owner's storage notice names the excess on every page.
    assert f"until {human_size(excess)} is freed" in text_of(owner.get("/"))


def test_an_upgrade_takes_effect_at_once(tiny, make_tenant):
    company = make_tenant()
    deal_id = make_deal(tiny, company)
    owner = sign_in(tiny, company)
    upload(owner, deal_id, content(800 * KB), "first.bin")
    waiting = content(400 * KB)
    refused = post_file(owner, f"/deals/{deal_id}/documents", waiting, "second.bin")
    assert refused.status_code == 413 and refused.get_json()["plan"] == "Free"

    switched(owner, "standard")
    accepted = post_file(owner, f"/deals/{deal_id}/documents", waiting, "second.bin")
    assert accepted.status_code == 201, accepted.get_json()


# --- who may see and switch ----------------------------------------------------------------------

def test_members_get_403_and_administrators_see_the_plan_but_cannot_switch(app, make_tenant):
    company = make_tenant()
    member = sign_in(app, company, add_person(app, company, "member").email)
    admin = sign_in(app, company, add_person(app, company, "admin").email)

    for path in ("/settings/plan", "/settings/plan/standard"):
        refused = member.get(path)
        assert refused.status_code == 403
        assert "Only the owner and administrators can see the plan." in text_of(refused)
    assert member.post("/settings/plan/standard", data={"csrf_token": any_token(member)}).status_code == 403

    page = text_of(admin.get("/settings/plan"))
    assert 'data-plan="free"' in page and "Only the company's owner can change the plan." in page
    assert 'href="/settings/plan/standard"' not in page and 'href="/settings/plan/extended"' not in page
    confirm = admin.get("/settings/plan/standard")
    assert confirm.status_code == 200 and "The storage limit becomes" in text_of(confirm)
    assert 'action="/settings/plan/standard"' not in confirm.get_data(as_text=True)
    refused = admin.post("/settings/plan/standard", data={"csrf_token": any_token(admin)})
    assert refused.status_code == 403 and "Only the company's owner can change the plan." in text_of(refused)
    assert plan_row(app, company).plan == "free"

    anonymous = client_for(app, company).get("/settings/plan")
    assert anonymous.status_code == 302 and "/signin" in anonymous.headers["Location"]


# --- banners -------------------------------------------------------------------------------------

def long_date(moment) -> str:
    return format_date(moment, "long", locale="en")


def test_past_due_the_owner_alone_is_warned_and_free_limits_apply_after_the_grace_period(tiny, make_tenant):
    company = make_tenant()
    deal_id = make_deal(tiny, company)
    owner = sign_in(tiny, company)
    admin = sign_in(tiny, company, add_person(tiny, company, "admin").email)
    member = sign_in(tiny, company, add_person(tiny, company, "member").email)
    switched(owner, "standard")
    kept = content(1200 * KB)
    kept_id = upload(owner, deal_id, kept, "contract.pdf")
    assert "billing-notice" not in owner.get("/").get_data(as_text=True)

    set_state(tiny, company, State("standard", status=Status.PAST_DUE, seats=3))
    since = plan_row(tiny, company).past_due_since
    grace_end = since + timedelta(days=7)
    banner = text_of(owner.get("/deals"))
    assert 'data-billing-notice="past_due"' in banner
    assert (f"A payment failed. Update the card by {long_date(grace_end)} — after that the company is limited to "
            "the Free plan's limits. Nothing is deleted.") in banner
    assert 'href="/settings/plan"' in banner  # offline there is no card to update: the plan page instead
    for other in (admin, member):
        assert "billing-notice" not in other.get("/deals").get_data(as_text=True)
    page = text_of(owner.get("/settings/plan"))
    assert "Past due" in page and f"Update the card by {long_date(grace_end)}" in page
    upload(owner, deal_id, content(20 * KB), "within grace.bin")  # Standard's limits still apply

    # Eight days later: Free's limits, reading and downloading still work.
    with tiny.app_context():
        db.session.execute(text("UPDATE public.subscriptions SET past_due_since = past_due_since - interval '8 days' "
                                "WHERE tenant_id = :id"), {"id": company.id})
        db.session.commit()
    banner = text_of(owner.get("/deals"))
    assert 'data-billing-notice="limited"' in banner and "limited to the Free plan's limits" in banner
    assert "Reading and downloading still work and nothing is deleted" in banner
    token = api_token(tiny, company)
    now = billing(client_for(tiny, company), token)
    assert (now["plan"], now["limits_plan"], now["limit_bytes"], now["status"]) == \
        ("standard", "free", FREE_MB * MB, "past_due")
    excess = now["used_bytes"] - FREE_MB * MB
    assert f"free {human_size(excess)}" in upload_refused(owner, deal_id)["message"]
    assert fetch(owner, f"/documents/{kept_id}/download")[0] == kept
    assert "billing-notice" not in member.get("/deals").get_data(as_text=True)

    # The payment goes through: the banner goes, Standard's limits are back.
    set_state(tiny, company, State("standard", seats=3))
    assert "billing-notice" not in owner.get("/deals").get_data(as_text=True)
    upload(owner, deal_id, content(20 * KB), "paid.bin")


def test_a_cancelled_plan_is_announced_to_the_owner_with_its_end(app, make_tenant):
    company = make_tenant()
    owner = sign_in(app, company)
    admin = sign_in(app, company, add_person(app, company, "admin").email)
    ends = utcnow() + timedelta(days=12)
    set_state(app, company, State("standard", seats=2, current_period_end=ends, cancel_at_period_end=True))
    banner = text_of(owner.get("/"))
    assert 'data-billing-notice="ending"' in banner and f"Standard ends on {long_date(ends)}; then Free." in banner
    assert "billing-notice" not in admin.get("/").get_data(as_text=True)
    set_state(app, company, State("standard", seats=2, current_period_end=ends))
    assert "billing-notice" not in owner.get("/").get_data(as_text=True)


# --- isolation -----------------------------------------------------------------------------------

def test_another_companys_owner_and_token_can_neither_see_nor_switch_its_plan(app, make_tenant):
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    acme_owner = sign_in(app, acme)
    token = any_token(acme_owner)
    intruder = client_for(app, globex)
    copy_cookie(acme_owner, acme.host, intruder, globex.host)

    for path in ("/settings/plan", "/settings/plan/extended", "/settings/plan/portal"):
        response = intruder.get(path)
        assert response.status_code == 302 and "/signin" in response.headers["Location"], path
    response = intruder.post("/settings/plan/extended", data={"csrf_token": token})
    assert response.status_code in (302, 400) and plan_row(app, globex).plan == "free"
    if response.status_code == 302:
        assert "/signin" in response.headers["Location"]

    acme_token = api_token(app, acme)
    api = client_for(app, globex)
    assert api.get("/api/v1/billing", headers=bearer(acme_token)).status_code == 401
    assert api.post("/api/v1/billing/plan", json={"plan": "extended"}, headers=bearer(acme_token)).status_code == 401
    assert plan_row(app, globex).plan == "free"

    # Acme's own switch changes Acme only.
    switched(acme_owner, "extended")
    assert (plan_row(app, acme).plan, plan_row(app, globex).plan) == ("extended", "free")


# --- with Stripe configured (nothing leaves the machine: the API address is a closed local port) ---------

@pytest.fixture
def with_stripe(tuned_app):
    return tuned_app(STRIPE_SECRET_KEY="sk_test_local", STRIPE_WEBHOOK_SECRET="whsec_local", STRIPE_API_BASE="http://127.0.0.1:9", TRIAL_DAYS=14,
                     STRIPE_PRICE_STANDARD="price_standard", STRIPE_PRICE_EXTENDED="price_extended")


def test_with_stripe_the_page_shows_the_trial_and_an_unanswering_payment_service_changes_nothing(
        with_stripe, make_tenant):
    company = make_tenant()
    owner = sign_in(with_stripe, company)
    page = text_of(owner.get("/settings/plan"))
    assert "No invoices: the Free plan costs nothing." in page and "Billing is offline" not in page
    for key in ("standard", "extended"):
        option = page[page.index(f'data-plan-option="{key}"'):]
        assert "14-day free trial" in option[:option.index("</section>")]
    confirm = text_of(owner.get("/settings/plan/standard"))
    assert "You continue on Stripe's payment page" in confirm and "The first 14 days are a free trial." in confirm
    assert "Continue to payment" in confirm

    response = switch(owner, "standard")  # Checkout cannot be reached
    assert response.status_code == 302 and response.headers["Location"].endswith("/settings/plan")
    assert any(m.startswith("The payment service did not answer") for m in messages(owner.get("/settings/plan")))
    assert plan_row(with_stripe, company).plan == "free"


def test_with_a_stripe_subscription_the_owner_sees_the_next_invoice_and_the_card_link(with_stripe, make_tenant):
    company = make_tenant()
    renews = utcnow() + timedelta(days=20)
    with with_stripe.app_context():
        row = subscription_of(company.id, lock=True)
        apply(row, State("standard", seats=2, monthly_amount=1800, currency="usd", current_period_end=renews))
        row.provider, row.stripe_customer_id = "stripe", f"cus_{company.slug}"
        row.stripe_subscription_id, row.stripe_item_id = f"sub_{company.slug}", f"si_{company.slug}"
        db.session.commit()
    owner = sign_in(with_stripe, company)
    page = text_of(owner.get("/settings/plan"))
    assert f"Next invoice on {long_date(renews)}: $18.00." in page
    assert 'href="/settings/plan/portal"' in page and "trial" not in page.lower()  # one trial per company
    confirm = text_of(owner.get("/settings/plan/free"))
    assert "The subscription ends with the paid period" in confirm and "Switch to Free" in confirm
    confirm = text_of(owner.get("/settings/plan/extended"))
    assert "the difference for the current period is prorated" in confirm

    admin = sign_in(with_stripe, company, add_person(with_stripe, company, "admin").email)
    assert 'href="/settings/plan/portal"' not in admin.get("/settings/plan").get_data(as_text=True)
    response = owner.get("/settings/plan/portal")  # the Portal cannot be reached: said, not a crash
    assert response.status_code == 302 and response.headers["Location"].endswith("/settings/plan")
    assert any(m.startswith("The payment service did not answer") for m in messages(owner.get("/settings/plan")))
