"""In headless Chromium: a lead converted through the missing-TIN case, and a deal dragged
across the board."""
import re

import pytest
from playwright.sync_api import expect

from saas.crm import admin, services
from saas.crm.models import Entity

from .crm_helpers import acting_as
from .test_browser import shot


def sign_in_in_browser(page, company) -> None:
    page.goto(company.base_url + "/signin")
    page.fill("#email", company.owner_email)
    page.fill("#password", company.password)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(rf"{re.escape(company.base_url)}/$"))


@pytest.mark.browser
def test_a_lead_is_converted_after_the_missing_tin_is_filled_in(app, live_server, page, make_tenant):
    acme = make_tenant("Acme Trading")
    with acting_as(app, acme) as owner:
        admin.set_required_fields(owner, Entity.COMPANY, ["tin"])
        lead_id = services.create(Entity.LEAD, {
            "title": "Boilers for the new plant", "contact_name": "Ivan Petrov", "company_name": "Romashka LLC",
            "email": "ivan@romashka.example", "amount": "250000"}, owner).id
    sign_in_in_browser(page, acme)

    page.goto(f"{acme.base_url}/leads/{lead_id}")
    page.click("text=Qualify / convert")
    page.wait_for_url(re.compile(rf"/leads/{lead_id}/convert$"))
    expect(page.locator("input[name='company.name']")).to_have_value("Romashka LLC")
    page.click("button:has-text('Convert')")

    tin = page.locator("label.has-error", has=page.locator("input[name='company.tin']"))
    expect(tin).to_contain_text("Required.")
    expect(page.locator("[role=alert]").first).to_contain_text("Nothing was created")
    shot(page, "crm-01-convert-missing-tin")
    tin.locator("input").fill("7707083893")
    page.click("button:has-text('Convert')")

    page.wait_for_url(re.compile(rf"/leads/{lead_id}$"))
    expect(page.locator("text=The lead is converted.")).to_be_visible()
    deal_link = page.locator(".crm-lead-status a[href^='/deals/']", has_text="Boilers for the new plant")
    expect(deal_link).to_be_visible()
    shot(page, "crm-02-converted-lead")
    deal_link.click()
    page.wait_for_url(re.compile(r"/deals/\d+$"))
    expect(page.locator("h1")).to_have_text("Boilers for the new plant")
    expect(page.locator("body")).to_contain_text("Romashka LLC")


@pytest.mark.browser
def test_a_deal_is_dragged_to_another_column_of_the_board(app, live_server, page, make_tenant):
    acme = make_tenant("Acme Trading")
    with acting_as(app, acme) as owner:
        stages = {stage.name: stage.id for stage in services.pipelines()[0].stages}
        boiler = services.create(Entity.DEAL, {"title": "Boiler delivery", "amount": "1500"}, owner).id
        pump = services.create(Entity.DEAL, {"title": "Pump repair", "amount": "700"}, owner).id
    sign_in_in_browser(page, acme)
    page.goto(f"{acme.base_url}/deals/board")

    new, negotiation = (page.locator(f"section[data-stage-id='{stages[name]}']") for name in ("New", "Negotiation"))
    expect(new.locator("[data-count]")).to_have_text("2")
    page.drag_and_drop(f"[data-deal-id='{boiler}']", f"section[data-stage-id='{stages['Negotiation']}'] [data-cards]")
    expect(negotiation.locator("[data-count]")).to_have_text("1")
    expect(negotiation.locator("[data-sum]")).to_have_text("1,500.00")
    expect(new.locator("[data-count]")).to_have_text("1")
    shot(page, "crm-03-board-after-drop")

    # A refused move puts the card back and says why (here: the deal went to the recycle bin).
    with acting_as(app, acme) as owner:
        services.delete_record(Entity.DEAL, pump, owner)
    page.drag_and_drop(f"[data-deal-id='{pump}']", f"section[data-stage-id='{stages['Contract']}'] [data-cards]")
    expect(page.locator(".board-message")).to_contain_text("No such record")
    expect(new.locator(f"[data-deal-id='{pump}']")).to_be_visible()

    page.reload()
    expect(negotiation.locator(f"[data-deal-id='{boiler}']")).to_be_visible()
    expect(negotiation.locator("[data-count]")).to_have_text("1")

    page.click(f"a[href='/deals/{boiler}']")
    page.wait_for_url(re.compile(rf"/deals/{boiler}$"))
    expect(page.locator("body")).to_contain_text("Negotiation")
    expect(page.locator(".crm-timeline")).to_contain_text("Negotiation")
