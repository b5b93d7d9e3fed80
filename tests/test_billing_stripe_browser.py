"""In headless Chromium, as a new user would: sign up, open the plan page, choose Standard, pay on
(the fake) Stripe Checkout, come back, and once the webhook's jobs have run see Standard.

The app runs on its own waitress server with Stripe configured; the fake Stripe serves the Checkout
page and, on Pay, posts its signed events to that server's webhook, as Stripe does.
"""
import re
import threading

import pytest
from playwright.sync_api import expect
from waitress import create_server

from saas.runtime.embedded import free_port

from . import billing_helpers
from .billing_helpers import WEBHOOK_SECRET, run_jobs_of
from .conftest import unique_slug
from .test_browser import shot, sign_up_in_browser

# The fixtures this test uses, from billing_helpers.
stripe_fake, make_stripe_app = billing_helpers.stripe_fake, billing_helpers.make_stripe_app


@pytest.fixture
def stripe_server(make_stripe_app, stripe_fake):
    """(base URL, app): a live server billing through the fake, whose events come back to it."""
    port = free_port()
    app = make_stripe_app(SERVER_NAME=f"localhost:{port}", TRIAL_DAYS=14)
    stripe_fake.webhook_url = f"http://localhost:{port}/billing/stripe/webhook"
    stripe_fake.webhook_secret = WEBHOOK_SECRET
    server = create_server(app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://localhost:{port}", app
    server.close()


@pytest.mark.browser
def test_a_new_company_subscribes_to_standard_through_stripe_checkout(stripe_server, stripe_fake, page):
    base, app = stripe_server
    slug = unique_slug("paying")
    sign_up_in_browser(page, base, "Paying Co", slug, "Olga Owner", f"olga@{slug}.example.com")
    company = f"http://{slug}.{base.split('//')[1]}"

    page.goto(company + "/settings/plan")
    expect(page.get_by_role("heading", name=re.compile("Free plan"))).to_be_visible()
    page.get_by_role("link", name=re.compile(r"(Switch|Upgrade).*Standard")).click()
    expect(page.get_by_text("14 days are a free trial", exact=False)).to_be_visible()
    shot(page, "stripe-01-confirm")
    page.get_by_role("button", name=re.compile("payment|Stripe|Standard", re.I)).click()

    page.wait_for_url(re.compile(re.escape(stripe_fake.url) + r"/checkout/cs_"))
    expect(page.get_by_role("heading", name=re.compile("Standard"))).to_be_visible()
    expect(page.locator("#seats")).to_have_text("1")
    expect(page.locator("#amount")).to_have_text("9.00 USD")
    shot(page, "stripe-02-checkout")
    page.get_by_role("button", name="Pay").click()

    page.wait_for_url(company + "/settings/plan")
    expect(page.get_by_text("as soon as Stripe confirms the payment", exact=False)).to_be_visible()
    assert [d["status"] for d in stripe_fake.deliveries] == [200, 200, 200]  # Stripe's events reached us

    run_jobs_of(app)  # the worker applies them
    page.reload()
    expect(page.get_by_role("heading", name=re.compile("Standard plan"))).to_be_visible()
    expect(page.locator("section.plan-now")).to_contain_text("Trial")
    expect(page.get_by_text("Card and invoices")).to_be_visible()
    shot(page, "stripe-03-standard")
