"""End to end in headless Chromium: what a new company does in its first minutes."""
import os
import re
from email import message_from_bytes
from pathlib import Path

import pytest

from .conftest import PASSWORD, unique_slug

SHOTS = Path(os.environ.get("SCREENSHOTS", "/tmp/dealdocs-screenshots"))


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_up_in_browser(page, live_server, company: str, slug: str, name: str, email: str):
    page.goto(live_server + "/")
    page.fill("#company_name", company)
    assert page.input_value("#slug") == re.sub(r"[^a-z0-9]+", "-", company.lower()).strip("-")  # suggested
    page.fill("#slug", slug)
    page.fill("#owner_name", name)
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"http://{slug}.{live_server.split('//')[1]}/")


def invitation_link(outbox: Path) -> str:
    messages = sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime)
    assert messages, "no invitation in the outbox"
    body = message_from_bytes(messages[-1].read_bytes()).get_payload(decode=True).decode()
    return re.search(r"http://\S+/invite/\S+", body).group(0)


@pytest.mark.browser
def test_two_companies_an_invited_employee_and_the_switcher(live_server, browser, run_jobs, outbox):
    acme, globex = unique_slug("acme"), unique_slug("globex")
    owner_email = f"anna@{acme}.example.com"

    owner = browser.new_context(locale="en-US").new_page()
    owner.goto(live_server + "/")
    shot(owner, "01-landing")
    sign_up_in_browser(owner, live_server, "Acme Trading", acme, "Anna Owner", owner_email)
    assert owner.locator("h1").inner_text() == "Acme Trading"
    assert "No deals yet" in owner.content()
    shot(owner, "02-dashboard")

    # Invite an employee; the worker sends the mail to the outbox.
    owner.click("text=People")
    owner.fill("#email", "ivan@example.com")
    owner.click("text=Send invitation")
    assert "Invitation sent to ivan@example.com" in owner.content()
    shot(owner, "03-people")
    run_jobs()
    link = invitation_link(outbox)
    assert f"{acme}." in link

    employee = browser.new_context(locale="en-US").new_page()
    employee.goto(link)
    assert "Join Acme Trading" in employee.content()
    employee.fill("#name", "Ivan Employee")
    employee.fill("#password", PASSWORD)
    employee.click("button:has-text('Join')")
    employee.wait_for_url(re.compile(rf"http://{acme}\.[^/]+/$"))
    assert "Welcome to Acme Trading" in employee.content()
    assert employee.locator("text=Invite people").count() == 0  # members do not manage people

    # The owner sees the employee; signing in afresh works for both.
    owner.reload()
    assert "Ivan Employee" in owner.content()
    for email in (owner_email, "ivan@example.com"):
        fresh = browser.new_context(locale="en-US").new_page()
        fresh.goto(f"http://{acme}.{live_server.split('//')[1]}/")
        fresh.wait_for_url(re.compile(r"/signin"))
        fresh.fill("#email", email)
        fresh.fill("#password", PASSWORD)
        fresh.click("button:has-text('Sign in')")
        fresh.wait_for_url(re.compile(rf"http://{acme}\.[^/]+/$"))
        assert fresh.locator("h1").inner_text() == "Acme Trading"
        fresh.context.close()

    # A second company, by the same owner: the switcher then offers both.
    second = browser.new_context(locale="en-US").new_page()
    sign_up_in_browser(second, live_server, "Globex", globex, "Anna Owner", owner_email)
    second.context.close()
    owner.goto(f"http://{acme}.{live_server.split('//')[1]}/")
    owner.click("summary[title='Switch company']")
    shot(owner, "04-switcher")
    owner.click("a:has-text('Globex')")
    owner.wait_for_url(re.compile(rf"http://{globex}\.[^/]+/$"))
    assert owner.locator("h1").inner_text() == "Globex"
    owner.context.close()
    employee.context.close()


@pytest.mark.browser
def test_sign_up_errors_are_shown_next_to_the_field(live_server, page):
    page.goto(live_server + "/")
    page.fill("#company_name", "Admin Co")
    page.fill("#slug", "admin")
    page.fill("#owner_name", "X")
    page.fill("#email", "not-an-email")
    page.fill("#password", "short")
    page.click("button[type=submit]")
    assert page.locator(".has-error").count() >= 1
    assert "reserved" in page.content() or "valid email" in page.content()
    shot(page, "05-signup-errors")
    assert page.input_value("#company_name") == "Admin Co"  # nothing typed is lost
