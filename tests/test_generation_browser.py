"""In headless Chromium, with a real worker process running, as the issue's "Done when": a manager
edits the ready contract with a live preview of a deal and saves version 2; on the deal card the
contract is generated, shows "Generating…" at once and turns ready without a reload; its PDF holds
the number, the lines, the total and the added sentence; it is forwarded to the client by mail.
And a template asking for the cloud's metadata address fails, saying so, with "Try again"."""
import io
import re
import time
from datetime import date
from email import message_from_bytes

import pytest
from PIL import Image
from playwright.sync_api import expect
from pypdf import PdfReader

from saas.crm import services as crm
from saas.crm.models import Entity
from saas.settings.requisites import save_image, save_requisites

from .crm_helpers import acting_as
from .test_browser import shot
from .test_crm_browser import sign_in_in_browser
from .test_generation import pdf_text

YEAR = date.today().year
WORKER_WARM_UP = 60_000  # ms: the worker loads WeasyPrint and its fonts before its first job
OUR = {"name": "Romashka", "legal_name": "Romashka Trading Ltd", "address": "1 Garden Street, Springfield",
       "director": "Ivan Ivanov", "tin": "7707083893", "email": "office@romashka.example.com"}
CLIENT_EMAIL = "buy@northwind.example.com"
DEAL = "Boiler house renovation"
LINES = [{"name": "Gas boiler", "quantity": "1", "price": "2450", "vat_rate": "20"},
         {"name": "Chimney kit", "quantity": "2", "price": "180.50", "vat_rate": "20"},
         {"name": "Commissioning", "quantity": "1", "price": "600", "vat_rate": "20"}]
TOTAL = "$4,093.20"  # (2450 + 2 × 180.50 + 600) + 20 % VAT, as the contract's |money prints it in English
ADDED = "<p>Special terms: the Supplier grants a five-year warranty on {{ deal.title }}.</p>"
ADDED_TEXT = f"Special terms: the Supplier grants a five-year warranty on {DEAL}."
FILENAME = f"CT-{YEAR}-0001 Contract — {DEAL}.pdf"
METADATA_URL = "http://169.254.169.254/latest/meta-data/"


def logo_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 40), (30, 90, 200)).save(out, "PNG")
    return out.getvalue()


def set_up_company(app, company, *, requisites=True) -> int:
    """Our requisites and logo, a client company, the deal with three lines (returned) and a later,
    unrelated deal, so the editor's record picker starts on the wrong one."""
    with acting_as(app, company) as owner:
        if requisites:
            save_requisites(owner, OUR)
            save_image(owner, "logo", logo_png())
        client = crm.create(Entity.COMPANY, {"name": "Northwind LLC", "tin": "5012345678",
                                             "emails": CLIENT_EMAIL}, owner)
        deal = crm.create(Entity.DEAL, {"title": DEAL, "currency": "USD", "company_id": client.id,
                                        "line_items": LINES}, owner)
        crm.create(Entity.DEAL, {"title": "Office coffee machine", "currency": "USD", "amount": "300"}, owner)
        return deal.id


def keep_watch_for_reloads(page) -> None:
    """Mark the window: a reload (or any navigation) loses the mark, which still_the_same_page checks."""
    page.evaluate("window.__noReload = true")


def still_the_same_page(page) -> bool:
    return page.evaluate("window.__noReload === true")


def generate_on_the_card(page, template_name: str, deal_id: int) -> str:
    """Pick the template in the card's form and click Generate; returns the card list's HTML as the
    page was given it right after the click."""
    page.select_option("#generate-template", label=template_name)
    with page.expect_response(lambda response: response.url.endswith(f"/deals/{deal_id}/documents")) as listed:
        page.click("[data-documents-generate] button:has-text('Generate')")
    return listed.value.text()


def within_worker_time(check, worker) -> None:
    """Run a browser expectation that waits for the worker, saying whether the worker is alive if it fails."""
    try:
        check()
    except AssertionError as error:
        state = "running" if worker.poll() is None else f"exited with {worker.returncode}"
        raise AssertionError(f"{error}\n(the worker process is {state})") from error


def mail_to(outbox, address: str, worker, seconds: float = 30):
    """The mail the worker wrote to the outbox for `address`, waiting for it up to `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path in outbox.glob("*.eml"):
            message = message_from_bytes(path.read_bytes())
            if message["To"] == address:
                return message
        assert worker.poll() is None, f"the worker exited with {worker.returncode}"
        time.sleep(0.2)
    raise AssertionError(f"no mail to {address} in {outbox} after {seconds} s")


@pytest.mark.browser
def test_a_contract_edited_in_the_browser_is_generated_on_the_deal_card_downloaded_and_mailed(
        app, live_server, page, make_tenant, live_worker, outbox):
    acme = make_tenant("Acme Trading")
    deal_id = set_up_company(app, acme)
    sign_in_in_browser(page, acme)

    # Settings → Document templates → the ready "Contract".
    page.get_by_role("link", name="Settings").click()
    page.locator("nav.settings-nav").get_by_role("link", name="Document templates").click()
    page.wait_for_url(re.compile(r"/settings/templates$"))
    page.get_by_role("link", name="Contract", exact=True).click()
    page.wait_for_url(re.compile(r"/settings/templates/\d+$"))

    body = page.locator("textarea[name=body_html]")
    body.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\n" + ADDED)
    page.select_option("[data-records-for=deal] select[data-record-select]", label=f"{DEAL} (#{deal_id})")
    preview = page.frame_locator("iframe[data-preview-frame]")
    expect(preview.locator("h1")).to_contain_text(f"Supply and Services Agreement No. CT-{YEAR}-0001")
    expect(preview.locator("body")).to_contain_text(f"Goods and Services ({DEAL})")
    expect(preview.locator("table.items")).to_contain_text("Chimney kit")
    expect(preview.locator("body")).to_contain_text(ADDED_TEXT)
    expect(page.locator("[data-preview-problem]")).to_be_hidden()
    shot(page, "gen-01-contract-edited-with-the-deal-previewed")

    page.locator("button.primary", has_text="Save").click()
    expect(page.locator(".flash-success")).to_have_text("Saved as version 2.")
    expect(page.locator("[data-template-version]")).to_contain_text("Version 2")
    shot(page, "gen-02-contract-saved-as-version-2")

    # The deal card: generate the contract; it is listed at once, then ready without a reload.
    page.goto(f"{acme.base_url}/deals/{deal_id}")
    expect(page.locator("#documents")).to_contain_text("No documents yet.")
    keep_watch_for_reloads(page)
    listed = generate_on_the_card(page, "Contract", deal_id)
    assert "Generating…" in listed and "data-generating" in listed
    row = page.locator("[data-documents-list] tr[data-document-id]")
    expect(row).to_have_count(1)
    shot(page, "gen-03-generating-on-the-deal-card")
    within_worker_time(lambda: expect(row.locator("a", has_text="Download")).to_be_visible(
        timeout=WORKER_WARM_UP), live_worker)
    expect(row.locator("[data-generation]")).to_have_count(0)  # no "Generating…" or "Failed" left
    expect(row).to_contain_text(f"CT-{YEAR}-0001")
    assert still_the_same_page(page), "the card was reloaded"
    expect(page.locator("[data-documents-generate-status]")).to_be_empty()
    shot(page, "gen-04-ready-on-the-deal-card")

    # The document's card: made from version 2; its PDF, through the page's own download link.
    row.locator("td a").first.click()
    page.wait_for_url(re.compile(r"/documents/\d+$"))
    expect(page.locator(".doc-generation")).to_contain_text("Made from the template “Contract”, version 2.")
    # (The download link redirects to a presigned S3 address. Chromium follows it; page.request could
    # not: its resolver, unlike Chromium's, does not know the company's host under *.localhost.)
    with page.expect_download() as download:
        page.click(".crm-actions a.button:has-text('Download')")
    assert "X-Amz-Signature=" in download.value.url, download.value.url
    assert download.value.suggested_filename == FILENAME
    made = open(download.value.path(), "rb").read()
    assert made.startswith(b"%PDF")
    words = pdf_text(made)
    for wanted in (f"Supply and Services Agreement No. CT-{YEAR}-0001", *(line["name"] for line in LINES),
                   f"Contract price: {TOTAL}", ADDED_TEXT, OUR["legal_name"], "Northwind LLC"):
        assert wanted in words, f"no “{wanted}” in {words[:3000]}"
    assert PdfReader(io.BytesIO(made)).pages[0].images, "no logo on the first page"
    shot(page, "gen-05-document-card")

    # Forward it to the client: the live worker sends the mail, the PDF attached.
    page.click(".crm-actions a:has-text('Forward by email')")
    page.fill("#forward input[name=to]", CLIENT_EMAIL)
    page.fill("#forward textarea[name=message]", "The contract, as agreed.")
    page.click("#forward button:has-text('Send')")
    expect(page.locator(".flash-success")).to_contain_text(f"The mail to {CLIENT_EMAIL} is on its way.")
    shot(page, "gen-06-forwarded")
    sent = mail_to(outbox, CLIENT_EMAIL, live_worker)
    [attachment] = [part for part in sent.walk() if part.get_filename()]
    assert attachment.get_filename() == FILENAME and attachment.get_content_type() == "application/pdf"
    assert attachment.get_payload(decode=True) == made
    assert "The contract, as agreed." in "".join(
        part.get_payload(decode=True).decode() for part in sent.walk() if part.get_content_type() == "text/plain")


@pytest.mark.browser
def test_a_template_asking_for_the_metadata_address_fails_on_the_card_with_try_again(
        app, live_server, page, make_tenant, live_worker):
    acme = make_tenant("Acme Trading")
    deal_id = set_up_company(app, acme, requisites=False)
    sign_in_in_browser(page, acme)

    # A manager makes a template that asks the cloud's metadata service for an image.
    page.goto(f"{acme.base_url}/settings/templates")
    page.locator(".tpl-heading").get_by_role("link", name="New template").click()
    page.wait_for_url(re.compile(r"/settings/templates/new"))
    page.fill("input[name=name]", "Metadata probe")
    page.locator("textarea[name=body_html]").fill(f'<h1>{{{{ number }}}}</h1>\n<img src="{METADATA_URL}">')
    page.locator("button.primary", has_text="Save").click()
    expect(page.locator(".flash-success")).to_have_text("Saved as version 1.")

    page.goto(f"{acme.base_url}/deals/{deal_id}")
    keep_watch_for_reloads(page)
    listed = generate_on_the_card(page, "Metadata probe", deal_id)
    assert "Generating…" in listed
    row = page.locator("[data-documents-list] tr[data-document-id]")
    within_worker_time(lambda: expect(row.locator("[data-generation=failed]")).to_have_text(
        "Failed", timeout=WORKER_WARM_UP), live_worker)
    expect(row.locator(".doc-error")).to_contain_text(f"The template asks for {METADATA_URL}")
    expect(row.locator(".doc-error")).to_contain_text("nothing from the Internet or the server")
    expect(row.locator("a", has_text="Download")).to_have_count(0)
    again = row.locator("button", has_text="Try again")
    expect(again).to_be_visible()
    assert still_the_same_page(page), "the card was reloaded"
    shot(page, "gen-07-failed-with-try-again")

    # Trying again without fixing the template fails the same way, now on the document's card.
    again.click()
    page.wait_for_url(re.compile(r"/documents/\d+$"))
    expect(page.locator(".flash-success")).to_contain_text("is being made again.")
    within_worker_time(lambda: expect(page.locator(".doc-generation[data-generation=failed]")).to_contain_text(
        "169.254.169.254", timeout=30_000), live_worker)
    expect(page.locator(".doc-generation")).to_contain_text("Made from the template “Metadata probe”, version 1.")
    expect(page.locator(".doc-generation a", has_text="Fix the template")).to_be_visible()
