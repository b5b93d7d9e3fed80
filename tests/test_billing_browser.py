"""In headless Chromium, as a new company would: sign up on the landing page, upload a file, open
Plan from the settings, switch to Standard and see the new limit; then, on a server whose Free plan
holds 1 MB, store more than that, switch back to Free after reading what it means, and see the next
upload refused with the excess named while the documents stay."""
import os
import re
import threading

import pytest
from playwright.sync_api import expect
from waitress import create_server

from saas.documents.services import human_size
from saas.runtime.embedded import free_port
from tenants.db import db

from .conftest import unique_slug
from .test_browser import shot, sign_up_in_browser

KB = 1024


@pytest.fixture
def tiny_server(make_app):
    """A second live server whose Free plan holds 1 MB (same database, queue and S3)."""
    port = free_port()
    tiny = make_app(SERVER_NAME=f"localhost:{port}", PLAN_FREE_STORAGE_MB=1)
    server = create_server(tiny, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://localhost:{port}"
    server.close()
    with tiny.app_context():
        db.engine.dispose()


def files(*named):
    return [{"name": name, "mimeType": "application/octet-stream", "buffer": content} for name, content in named]


def new_deal(page, base: str, title: str) -> None:
    page.goto(f"{base}/deals/new")
    page.fill("input[name=title]", title)
    page.click("button.primary:has-text('Save')")
    page.wait_for_url(re.compile(r"/deals/\d+$"))


def upload_in_browser(page, name: str, content: bytes, done: int) -> None:
    page.set_input_files("[data-documents-input]", files((name, content)))
    expect(page.locator("[data-documents-progress] li[data-state=done]")).to_have_count(done)


def open_plan_from_settings(page) -> None:
    page.click(".mainnav a:has-text('Settings')")
    page.click(".settings-nav a:has-text('Plan')")
    page.wait_for_url(re.compile(r"/settings/plan$"))


def switch_to(page, plan: str) -> None:
    """From the plan page: the plan's button, then the confirmation's."""
    page.locator(f"[data-plan-option={plan.lower()}] a.button", has_text=f"Switch to {plan}").click()
    page.wait_for_url(re.compile(rf"/settings/plan/{plan.lower()}$"))


def confirm_switch(page) -> None:
    page.click("button[data-confirm-switch]")
    page.wait_for_url(re.compile(r"/settings/plan$"))


@pytest.mark.browser
def test_a_new_company_signs_up_uploads_and_switches_to_standard(live_server, page):
    slug = unique_slug("plan")
    sign_up_in_browser(page, live_server, "Plan Trading", slug, "Anna Owner", f"anna@{slug}.example.com")
    base = f"http://{slug}.{live_server.split('//')[1]}"
    new_deal(page, base, "Boiler house")
    upload_in_browser(page, "contract.pdf", os.urandom(50 * KB), 1)

    open_plan_from_settings(page)
    expect(page.locator(".plan-now h2")).to_contain_text("Free plan")
    expect(page.locator(".plan-now [data-limit]")).to_have_text("200.0 MB")
    expect(page.locator(".plan-now [data-used]")).to_have_text("50.0 KB")
    expect(page.locator("[data-billing]")).to_contain_text("Billing is offline")
    expect(page.locator("[data-plan-option=standard] [data-plan-total]")).to_contain_text(
        "$9.00 a month for your 1 active person")
    shot(page, "plan-01-free")

    switch_to(page, "Standard")
    expect(page.locator("h1")).to_have_text("Switch from Free to Standard?")
    expect(page.locator(".plan-changes")).to_contain_text("The storage limit becomes 500.0 MB.")
    expect(page.locator(".plan-changes")).to_contain_text("Everything stored today (50.0 KB) fits.")
    shot(page, "plan-02-confirm-standard")
    confirm_switch(page)
    expect(page.locator(".flash-success")).to_contain_text(
        "The company is on the Standard plan now: the storage limit is 500.0 MB.")
    expect(page.locator(".plan-now h2")).to_contain_text("Standard plan")
    expect(page.locator(".plan-now [data-limit]")).to_have_text("500.0 MB")
    shot(page, "plan-03-standard")

    page.click(".settings-nav a:has-text('Storage')")
    expect(page.locator("[data-limit]")).to_have_text("500.0 MB")


@pytest.mark.browser
def test_back_to_free_over_the_limit_is_explained_and_the_next_upload_is_refused(tiny_server, page):
    slug = unique_slug("over")
    sign_up_in_browser(page, tiny_server, "Over Trading", slug, "Anna Owner", f"anna@{slug}.example.com")
    base = f"http://{slug}.{tiny_server.split('//')[1]}"
    new_deal(page, base, "Boiler house")
    deal_url = page.url
    first, second = os.urandom(600 * KB), os.urandom(700 * KB)
    upload_in_browser(page, "contract.pdf", first, 1)

    open_plan_from_settings(page)
    expect(page.locator(".plan-now [data-limit]")).to_have_text("1.0 MB")
    switch_to(page, "Standard")
    confirm_switch(page)
    expect(page.locator(".plan-now [data-limit]")).to_have_text("500.0 MB")

    page.goto(deal_url)
    upload_in_browser(page, "drawing.dwg", second, 1)  # (a fresh page) 1.3 MB in all: more than Free holds
    used = len(first) + len(second)
    excess = used - 1024 * KB

    open_plan_from_settings(page)
    switch_to(page, "Free")
    over = page.locator(".plan-over")
    expect(over).to_contain_text(f"The company stores {human_size(used)}, {human_size(excess)} over this limit: "
                                 f"nothing is deleted, but new uploads and generated documents are refused until "
                                 f"{human_size(excess)} is freed.")
    expect(over).to_have_attribute("data-over-bytes", str(excess))
    shot(page, "plan-04-confirm-free-over-limit")
    confirm_switch(page)
    expect(page.locator(".flash-success")).to_contain_text(f"It stores {human_size(excess)} more than that")
    expect(page.locator(".plan-now h2")).to_contain_text("Free plan")

    page.goto(deal_url)
    expect(page.locator(".storage-notice")).to_contain_text(f"until {human_size(excess)} is freed")
    page.set_input_files("[data-documents-input]", files(("letter.pdf", os.urandom(5 * KB))))
    refused = page.locator("[data-documents-progress] li[data-state=quota_exceeded]")
    expect(refused).to_contain_text(f"free {human_size(excess)} or change the plan before uploading")
    expect(refused).to_contain_text("Nothing has been deleted.")
    shot(page, "plan-05-upload-refused")
    page.reload()
    for name in ("contract.pdf", "drawing.dwg"):
        expect(page.locator("[data-documents-list] a", has_text=name)).to_be_visible()
