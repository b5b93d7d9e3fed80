"""In headless Chromium, as the issue's "Done when": a drawing and a contract uploaded to a deal,
an annex linked to the contract, new versions, preview, download, forwarding by email, delete and
restore, the Free quota's refusal, and another company that sees none of it."""
import io
import re
from email import message_from_bytes

import pytest
from playwright.sync_api import expect

from saas.crm import services as crm
from saas.crm.models import Entity
from saas.documents import services as documents

from .crm_helpers import acting_as
from .test_browser import shot
from .test_crm_browser import sign_in_in_browser
from .test_documents_pages import near_the_limit
from .test_documents_services import tenant_of

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PDF_V2 = PDF + b"% signed by both parties\n"
DWG = b"AC1015" + bytes(range(256)) * 4  # the start of an AutoCAD 2000 drawing


def files(*named):
    return [{"name": name, "mimeType": "application/octet-stream", "buffer": content} for name, content in named]


def uploaded(page, count: int):
    """Wait until `count` files of the widget are done (their bars full and gone)."""
    expect(page.locator("[data-documents-progress] li[data-state=done]")).to_have_count(count)


def document_id_of(page, title: str) -> int:
    href = page.locator("[data-documents-list] a", has_text=title).first.get_attribute("href")
    return int(href.rsplit("/", 1)[1])


@pytest.mark.browser
def test_a_contract_and_a_drawing_on_a_deal_with_an_annex_versions_preview_download_and_mail(
        app, live_server, page, make_tenant, outbox, run_jobs):
    acme = make_tenant("Acme Trading")
    with acting_as(app, acme) as owner:
        deal_id = crm.create(Entity.DEAL, {"title": "Boiler house"}, owner).id
    sign_in_in_browser(page, acme)
    page.goto(f"{acme.base_url}/deals/{deal_id}")
    expect(page.locator("#documents")).to_contain_text("No documents yet.")

    page.set_input_files("[data-documents-input]", files(("boiler house.dwg", DWG), ("Supply contract.pdf", PDF)))
    uploaded(page, 2)
    expect(page.locator("[data-documents-list] tbody tr")).to_have_count(2)
    expect(page.locator("[data-documents-list]")).to_contain_text("Drawing")  # a DWG is a drawing by its bytes
    shot(page, "docs-01-deal-with-documents")
    contract = document_id_of(page, "Supply contract.pdf")

    # The same contract again is offered as a new version of it.
    page.set_input_files("[data-documents-input]", files(("contract copy.pdf", PDF)))
    duplicate = page.locator("[data-documents-progress] li[data-state=duplicate]")
    expect(duplicate).to_contain_text("exactly this file")
    duplicate.locator("button", has_text="Add as a new version of “Supply contract.pdf”").click()
    uploaded(page, 3)

    # An annex, linked to the contract on its own card.
    page.set_input_files("[data-documents-input]", files(("annex 1.pdf", PDF + b"% annex\n")))
    uploaded(page, 4)
    page.locator("[data-documents-list] a", has_text="annex 1.pdf").click()
    page.select_option("select[name=type_id]", label="Annex")
    page.select_option("select[name=parent_id]", label="Supply contract.pdf")
    page.fill("input[name=number]", "1")
    page.click("button:has-text('Save')")
    expect(page.locator(".flash-success")).to_contain_text("Changes saved.")
    page.locator("a", has_text="Supply contract.pdf").first.click()
    page.wait_for_url(re.compile(rf"/documents/{contract}$"))
    expect(page.locator(".doc-children")).to_contain_text("annex 1.pdf")

    # A signed version from the contract's card: the earlier ones stay.
    page.set_input_files("[data-documents-input]", files(("Supply contract signed.pdf", PDF_V2)))
    expect(page.locator("tr[data-version]")).to_have_count(3)  # the page reloads with the new version
    expect(page.locator("tr[data-version='3']")).to_contain_text("Supply contract signed.pdf")
    shot(page, "docs-02-contract-card")

    # The preview frame shows the current version, from a presigned S3 link; download gives it too.
    with page.expect_response(lambda response: "X-Amz-Signature=" in response.url) as preview:
        page.reload()
    shown = preview.value.headers  # (Chromium's PDF viewer holds the bytes: those are checked by download)
    assert shown["content-type"] == "application/pdf" and shown["content-disposition"].startswith("inline;")
    assert "Supply%20contract%20signed.pdf" in shown["content-disposition"]
    assert preview.value.frame.parent_frame is page.main_frame
    with page.expect_download() as download:
        page.click("a.button:has-text('Download')")
    assert download.value.suggested_filename == "Supply contract signed.pdf"
    assert open(download.value.path(), "rb").read() == PDF_V2
    with page.expect_download() as download:
        page.click("tr[data-version='1'] a:has-text('Download')")
    assert open(download.value.path(), "rb").read() == PDF

    # Forward to the client as an attachment.
    page.fill("#forward input[name=to]", "client@romashka.example")
    page.fill("#forward textarea[name=message]", "The signed contract, as agreed.")
    page.click("#forward button:has-text('Send')")
    expect(page.locator(".flash-success")).to_contain_text("client@romashka.example")
    run_jobs()
    [sent] = [message_from_bytes(path.read_bytes()) for path in outbox.glob("*.eml")]
    assert sent["To"] == "client@romashka.example"
    [attachment] = [part for part in sent.walk() if part.get_filename()]
    assert attachment.get_filename() == "Supply contract signed.pdf" and attachment.get_payload(decode=True) == PDF_V2


@pytest.mark.browser
def test_delete_and_restore_the_free_quota_refusal_and_another_company_sees_nothing(
        app, live_server, browser, page, make_tenant):
    acme, globex = make_tenant("Acme Trading"), make_tenant("Globex")
    with acting_as(app, acme) as owner:
        deal_id = crm.create(Entity.DEAL, {"title": "Boiler house"}, owner).id
        contract = documents.upload(tenant_of(acme), Entity.DEAL, deal_id, io.BytesIO(PDF), filename="contract.pdf",
                                    size=len(PDF), actor=owner).id
    sign_in_in_browser(page, acme)

    page.goto(f"{acme.base_url}/documents/{contract}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button.danger:has-text('Delete')")
    page.wait_for_url(re.compile(rf"/deals/{deal_id}$"))
    expect(page.locator(".flash-success")).to_contain_text("is in the recycle bin")
    expect(page.locator("#documents")).to_contain_text("No documents yet.")
    page.goto(f"{acme.base_url}/recycle-bin")
    page.locator(f"tr[data-document-id='{contract}'] button:has-text('Restore')").click()
    expect(page.locator(".flash-success")).to_contain_text("“contract.pdf” is restored.")
    page.goto(f"{acme.base_url}/deals/{deal_id}")
    expect(page.locator("[data-documents-list] a", has_text="contract.pdf")).to_be_visible()

    # Nearly full: the next file is refused, naming the plan and the usage, with the way out.
    near_the_limit(app, acme, 10)
    page.reload()
    expect(page.locator(".storage-notice")).to_contain_text("99% of the Free plan's storage is used")
    page.set_input_files("[data-documents-input]", files(("drawing.dwg", DWG)))
    refused = page.locator("[data-documents-progress] li[data-state=quota_exceeded]")
    expect(refused).to_contain_text("Free plan's storage limit: 200.0 MB of 200.0 MB used")
    expect(refused.locator("a", has_text="Storage and plan")).to_have_attribute("href", "/settings/plan")
    shot(page, "docs-03-quota-refusal")

    # Globex's owner sees none of it: not on its own host, not by Acme's addresses.
    other = browser.new_context(locale="en-US").new_page()
    try:
        sign_in_in_browser(other, globex)
        for path in (f"/documents/{contract}", f"/documents/{contract}/download", f"/documents/{contract}/view"):
            assert other.goto(globex.base_url + path).status == 404
        other.goto(f"{acme.base_url}/documents/{contract}")
        assert other.url.startswith(f"{acme.base_url}/signin")  # Globex's session means nothing on Acme's host
        other.goto(f"{globex.base_url}/recycle-bin")
        expect(other.locator("body")).not_to_contain_text("contract.pdf")
    finally:
        other.context.close()
