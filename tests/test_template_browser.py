"""In headless Chromium: a manager opens the ready contract template, types into its body and
watches the sandboxed preview fill in the deal as they type, is shown the line of a mistake,
inserts a placeholder from the side panel, saves a new version; and sees the numbering table
preview the next number while typing a pattern."""
import re
from datetime import date

import pytest
from playwright.sync_api import expect

from .test_browser import shot
from .test_crm_browser import sign_in_in_browser
from .test_generation import make_deal


@pytest.mark.browser
def test_a_manager_edits_the_contract_with_a_live_preview_and_saves_a_new_version(app, live_server, page,
                                                                                  make_tenant):
    acme = make_tenant("Acme Trading")
    make_deal(app, acme, title="Boiler delivery")  # for Northwind LLC, TIN 7707083893
    sign_in_in_browser(page, acme)

    page.goto(f"{acme.base_url}/settings/templates")
    pattern = page.locator("tr[data-numbering=contract] input[name=pattern]")
    pattern.fill("K/{YY}/{#####}")
    expect(page.locator("tr[data-numbering=contract] output")).to_have_text(f"K/{date.today().year % 100:02d}/00001")
    shot(page, "templates-00-list-and-numbering")
    page.get_by_role("link", name="Contract", exact=True).click()
    page.wait_for_url(re.compile(r"/settings/templates/\d+$"))

    preview = page.frame_locator("iframe[data-preview-frame]")
    expect(preview.locator("h1")).to_contain_text("Supply and Services Agreement No. CT-")
    expect(preview.locator("body")).to_contain_text("Boiler delivery")
    assert page.locator("iframe[data-preview-frame]").get_attribute("sandbox") == ""

    body = page.locator("textarea[name=body_html]")
    body.click()
    page.keyboard.press("Control+Home")
    page.keyboard.type("<p>Special terms for {{ deal.titel }}</p>\n")
    problem = page.locator("[data-preview-problem]")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("Body, line 1: unknown placeholder “deal.titel”")
    shot(page, "templates-01-a-mistake-named-with-its-line")

    problem.locator("button", has_text="Show the line").click()  # selects line 1: typing replaces it
    assert body.evaluate("area => area.value.slice(area.selectionStart, area.selectionEnd)") == \
        "<p>Special terms for {{ deal.titel }}</p>"
    page.keyboard.type("<p>Special terms for {{ deal.title }}</p>")
    expect(problem).to_be_hidden()
    expect(preview.locator("body")).to_contain_text("Special terms for Boiler delivery")

    page.keyboard.type("\n<p>Customer's TIN: ")
    panel = page.locator("[data-placeholders-for=deal]")
    panel.locator("summary", has_text="Client company").click()
    panel.locator("button[data-insert='{{ company.tin }}']").click()
    page.keyboard.type("</p>")
    expect(preview.locator("body")).to_contain_text("Customer's TIN: 7707083893")
    shot(page, "templates-02-live-preview-with-an-inserted-placeholder")

    page.locator("button.primary", has_text="Save").click()
    expect(page.locator(".flash-success")).to_have_text("Saved as version 2.")
    expect(page.locator("[data-template-version]")).to_contain_text("Version 2")
    expect(page.locator("tr[data-version='1']")).to_be_visible()
    assert body.input_value().startswith("<p>Special terms for {{ deal.title }}</p>\n<p>Customer's TIN: "
                                         "{{ company.tin }}</p>\n<style>")
    expect(preview.locator("body")).to_contain_text("Special terms for Boiler delivery")
    shot(page, "templates-03-saved-as-version-2")
