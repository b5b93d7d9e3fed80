"""Document pages through the test client: raw uploads to a card, duplicates and versions,
the document card, downloads through presigned links to the real S3 server, the recycle bin,
the quota refusal and notices, the usage page, and who may not see what."""
import io
import re
from urllib.parse import quote
from urllib.request import urlopen

from saas.crm import services as crm
from saas.crm.models import Entity
from storage import ledger
from tenants.db import db

from .conftest import csrf_token, sign_in
from .crm_helpers import acting_as, add_person, set_rule

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MB = 1024 * 1024


def make_deal(app, company, title="Supply of boilers", user_id=None) -> int:
    with acting_as(app, company, user_id) as actor:
        return crm.create(Entity.DEAL, {"title": title}, actor).id


def token_of(client) -> str:
    return csrf_token(client.get("/recycle-bin").get_data(as_text=True))


def post_file(client, url: str, content: bytes, filename: str = "contract.pdf"):
    """What documents.js sends: the file as the raw body, its name in the query string."""
    return client.post(f"{url}?filename={quote(filename)}", data=content, content_type="application/octet-stream",
                       headers={"X-CSRFToken": token_of(client), "Accept": "application/json"})


def upload(client, deal_id: int, content: bytes = PDF, filename: str = "contract.pdf") -> int:
    response = post_file(client, f"/deals/{deal_id}/documents", content, filename)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def fetch(client, url: str) -> tuple[bytes, dict]:
    """Follow our 302 to the presigned S3 link, as a browser would: the bytes and the headers."""
    response = client.get(url)
    assert response.status_code == 302 and response.headers["Cache-Control"] == "no-store"
    with urlopen(response.headers["Location"], timeout=10) as answer:
        return answer.read(), dict(answer.headers)


def test_an_upload_streams_to_the_card_keeping_the_name_for_display_and_sniffing_the_type(app, make_tenant):
    company = make_tenant()
    deal_id = make_deal(app, company)
    owner = sign_in(app, company)

    response = post_file(owner, f"/deals/{deal_id}/documents", PDF, "../..\\C:\\tmp/Договор №1 «Поставка».pdf")
    assert response.status_code == 201
    document_id = response.get_json()["id"]
    assert response.get_json()["url"] == f"/documents/{document_id}"
    card = owner.get(f"/deals/{deal_id}").get_data(as_text=True)
    assert "Договор №1 «Поставка».pdf" in card and f'href="/documents/{document_id}"' in card
    assert "data-documents-upload" in card
    page = owner.get(f"/documents/{document_id}").get_data(as_text=True)
    assert "application/pdf" in page and "<iframe" in page  # a real PDF previews inline

    body, headers = fetch(owner, f"/documents/{document_id}/view")
    assert body == PDF and headers["Content-Type"] == "application/pdf" and "inline" in headers["Content-Disposition"]

    # A PNG claiming to be a PDF is a PNG: never offered as a PDF.
    spoofed = upload(owner, deal_id, PNG, "contract.pdf")
    page = owner.get(f"/documents/{spoofed}").get_data(as_text=True)
    assert "image/png" in page and "<iframe" not in page
    body, headers = fetch(owner, f"/documents/{spoofed}/view")
    assert body == PNG and headers["Content-Type"] == "image/png"

    # Whatever is not a PDF or a raster image only ever downloads.
    drawing = upload(owner, deal_id, b"0\nSECTION\n2\nHEADER\n0\nENDSEC\n0\nEOF\n", "plan.dxf")
    body, headers = fetch(owner, f"/documents/{drawing}/view")
    assert headers["Content-Type"] == "application/octet-stream" and "attachment" in headers["Content-Disposition"]

    # The list alone (what the page refreshes after uploads) has all three.
    listed = owner.get(f"/deals/{deal_id}/documents").get_data(as_text=True)
    assert listed.count("data-document-id=") == 3


def test_an_upload_needs_the_csrf_token_and_a_length(app, make_tenant):
    company = make_tenant()
    deal_id = make_deal(app, company)
    owner = sign_in(app, company)
    assert owner.post(f"/deals/{deal_id}/documents?filename=a.pdf", data=PDF,
                      content_type="application/octet-stream").status_code == 400
    chunked = owner.post(f"/deals/{deal_id}/documents?filename=a.pdf", input_stream=io.BytesIO(PDF),
                         content_type="application/octet-stream", headers={"X-CSRFToken": token_of(owner)},
                         environ_overrides={"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked"})
    assert chunked.status_code == 422 and chunked.get_json()["error"] == "invalid"


def test_a_duplicate_is_offered_as_a_new_version_and_old_versions_stay_downloadable(app, make_tenant):
    company = make_tenant()
    deal_id = make_deal(app, company)
    owner = sign_in(app, company)
    first = upload(owner, deal_id, PDF, "contract.pdf")

    again = post_file(owner, f"/deals/{deal_id}/documents", PDF, "contract copy.pdf")
    assert again.status_code == 409
    answer = again.get_json()
    assert (answer["error"], answer["document_id"], answer["url"]) == ("duplicate", first, f"/documents/{first}")
    assert "contract.pdf" in answer["message"]

    signed = PDF + b"% signed\n"
    response = post_file(owner, answer["versions_url"], signed, "contract signed.pdf")
    assert response.status_code == 201 and response.get_json()["id"] == first

    page = owner.get(f"/documents/{first}").get_data(as_text=True)
    assert page.count("data-version=") == 2 and "contract signed.pdf" in page
    assert fetch(owner, f"/documents/{first}/download")[0] == signed
    old, headers = fetch(owner, f"/documents/{first}/download?version=1")
    assert old == PDF and 'filename="contract.pdf"' in headers["Content-Disposition"]
    assert owner.get(f"/documents/{first}/download?version=7").status_code == 404

    # The old version goes to the recycle bin; the current one cannot be deleted that way.
    token = token_of(owner)
    assert owner.post(f"/documents/{first}/versions/1/delete", data={"csrf_token": token}).status_code == 302
    assert owner.get(f"/documents/{first}").get_data(as_text=True).count("data-version=") == 1
    assert owner.get(f"/documents/{first}/download?version=1").status_code == 404
    refused = owner.post(f"/documents/{first}/versions/2/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "only version" in refused.get_data(as_text=True)


def test_the_card_fields_are_saved_and_an_annex_belongs_to_a_contract_of_the_same_card(app, make_tenant):
    company = make_tenant()
    deal_id, other_deal = make_deal(app, company), make_deal(app, company, "Another deal")
    owner = sign_in(app, company)
    contract = upload(owner, deal_id, PDF, "contract.pdf")
    annex = upload(owner, deal_id, PDF + b"annex", "annex 1.pdf")
    elsewhere = upload(owner, other_deal, PDF + b"other", "other.pdf")
    page = owner.get(f"/documents/{annex}").get_data(as_text=True)
    types = {name: value for value, name in re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>',
                                                      select(page, "type_id"))}
    assert {"Contract", "Annex", "Act", "Drawing"} <= set(types)
    parents = select(page, "parent_id")
    assert f'<option value="{contract}"' in parents and f'<option value="{elsewhere}"' not in parents

    form = {"csrf_token": csrf_token(page), "title": "Annex 1 to the supply contract", "type_id": types["Annex"],
            "number": "A-1", "signed_on": "2024-03-15", "counterparty": "Romashka LLC", "our_entity": "Acme Ltd",
            "responsible_id": str(company.owner_id), "status": "signed", "notes": "Prices for 2024",
            "parent_id": str(contract)}
    assert owner.post(f"/documents/{annex}", data=form).status_code == 302
    page = owner.get(f"/documents/{annex}").get_data(as_text=True)
    assert "Annex 1 to the supply contract" in page and 'value="A-1"' in page and 'value="2024-03-15"' in page
    assert f'<option value="{contract}" selected' in select(page, "parent_id")
    contract_page = owner.get(f"/documents/{contract}").get_data(as_text=True)
    assert f'href="/documents/{annex}"' in contract_page  # the contract lists its annex
    listed = owner.get(f"/deals/{deal_id}/documents").get_data(as_text=True)
    assert "A-1" in listed and "Annex" in listed

    refused = owner.post(f"/documents/{annex}", data={**form, "parent_id": str(elsewhere)})
    assert refused.status_code == 422 and "same card" in refused.get_data(as_text=True)
    refused = owner.post(f"/documents/{annex}", data={**form, "title": " "})
    assert refused.status_code == 422 and "title" in refused.get_data(as_text=True)


def select(page: str, name: str) -> str:
    return re.search(rf'<select name="{name}">(.*?)</select>', page, re.S).group(1)


def test_a_deleted_document_leaves_the_card_and_comes_back_from_the_recycle_bin(app, make_tenant):
    company = make_tenant()
    deal_id = make_deal(app, company)
    owner = sign_in(app, company)
    document_id = upload(owner, deal_id, PDF, "contract.pdf")

    deleted = owner.post(f"/documents/{document_id}/delete", data={"csrf_token": token_of(owner)})
    assert deleted.status_code == 302 and deleted.headers["Location"].endswith(f"/deals/{deal_id}")
    assert f"/documents/{document_id}" not in owner.get(f"/deals/{deal_id}").get_data(as_text=True)
    for path in ("", "/download", "/view"):
        assert owner.get(f"/documents/{document_id}{path}").status_code == 404
    bin_page = owner.get("/recycle-bin").get_data(as_text=True)
    assert f'data-document-id="{document_id}"' in bin_page and "Supply of boilers" in bin_page
    assert "The recycle bin is empty" not in bin_page

    restored = owner.post(f"/recycle-bin/documents/{document_id}/restore", data={"csrf_token": csrf_token(bin_page)})
    assert restored.status_code == 302
    assert f"/documents/{document_id}" in owner.get(f"/deals/{deal_id}").get_data(as_text=True)
    assert owner.post(f"/recycle-bin/documents/{document_id}/restore",
                      data={"csrf_token": csrf_token(bin_page)}).status_code == 404  # not in the bin any more


def test_a_company_card_lists_the_documents_of_its_deals(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as actor:
        firm = crm.create(Entity.COMPANY, {"name": "Romashka LLC"}, actor).id
        deal_id = crm.create(Entity.DEAL, {"title": "Boilers", "company_id": firm}, actor).id
    owner = sign_in(app, company)
    on_deal = upload(owner, deal_id, PDF, "deal contract.pdf")
    on_company = upload_to(owner, f"/companies/{firm}/documents", PNG, "charter.png")
    with acting_as(app, company) as actor:
        person = crm.create(Entity.CONTACT, {"first_name": "Ivan", "last_name": "Petrov"}, actor).id
    on_contact = upload_to(owner, f"/contacts/{person}/documents", PDF + b"passport", "passport scan.pdf")
    assert f'href="/documents/{on_contact}"' in owner.get(f"/contacts/{person}").get_data(as_text=True)
    card = owner.get(f"/companies/{firm}").get_data(as_text=True)
    assert f'href="/documents/{on_deal}"' in card and f'href="/documents/{on_company}"' in card
    assert f'href="/deals/{deal_id}"' in card


def upload_to(client, url: str, content: bytes, filename: str) -> int:
    response = post_file(client, url, content, filename)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_forwarding_from_the_page_sends_the_mail(app, make_tenant, outbox, run_jobs):
    company = make_tenant()
    deal_id = make_deal(app, company)
    owner = sign_in(app, company)
    document_id = upload(owner, deal_id, PDF, "contract.pdf")
    bad = owner.post(f"/documents/{document_id}/forward", data={"csrf_token": token_of(owner), "to": "nobody",
                                                                "mode": "attachment"}, follow_redirects=True)
    assert "flash-error" in bad.get_data(as_text=True)
    sent = owner.post(f"/documents/{document_id}/forward", data={
        "csrf_token": token_of(owner), "to": "client@example.com", "mode": "attachment", "message": "Here it is"})
    assert sent.status_code == 302
    run_jobs()
    mails = [path.read_text(errors="replace") for path in outbox.glob("*.eml")]
    assert len(mails) == 1 and "client@example.com" in mails[0] and "contract.pdf" in mails[0]


def near_the_limit(app, company, free_bytes: int) -> None:
    with app.app_context():
        ledger.set_used(company.id, 200 * MB - free_bytes)
        db.session.commit()


def test_the_free_quota_refuses_an_upload_with_the_plan_and_the_usage(app, make_tenant):
    company = make_tenant()
    deal_id = make_deal(app, company)
    owner = sign_in(app, company)
    near_the_limit(app, company, 10)

    refused = post_file(owner, f"/deals/{deal_id}/documents", PDF, "contract.pdf")
    assert refused.status_code == 413
    answer = refused.get_json()
    assert answer["error"] == "quota_exceeded" and answer["plan"] == "Free"
    assert answer["limit_bytes"] == 200 * MB and answer["used_bytes"] == 200 * MB - 10
    assert "Free" in answer["message"] and "200.0 MB" in answer["message"]
    assert answer["plan_url"] == "/settings/plan"
    with app.app_context():
        assert ledger.usage(company.id) == (200 * MB - 10, 0)  # the reservation was never granted

    # The owner sees how full storage is on every page; a member does not.
    page = owner.get(f"/deals/{deal_id}").get_data(as_text=True)
    assert "99% of the Free plan's storage is used: 200.0 MB of 200.0 MB" in page
    near_the_limit(app, company, 0)
    page = owner.get(f"/deals/{deal_id}").get_data(as_text=True)
    assert "The storage of the Free plan is full" in page and 'href="/settings/storage"' in page
    member = add_person(app, company, "member")
    member_client = sign_in(app, company, member.email)
    assert "storage-notice" not in member_client.get("/deals").get_data(as_text=True)

    near_the_limit(app, company, 30 * MB)  # 85% used
    page = owner.get("/").get_data(as_text=True)
    assert "85% of the Free plan" in page
    near_the_limit(app, company, 100 * MB)
    assert "storage-notice" not in owner.get("/").get_data(as_text=True)


def test_the_usage_page_shows_used_and_limit_by_record_type_and_employee(app, make_tenant):
    company = make_tenant()
    deal_id = make_deal(app, company, "Big drawings deal")
    owner = sign_in(app, company)
    upload(owner, deal_id, PDF + b"x" * (3 * 1024), "contract.pdf")
    upload(owner, deal_id, PNG, "photo.png")

    page = owner.get("/settings/storage").get_data(as_text=True)
    size = len(PDF) + 3 * 1024 + len(PNG)
    assert f"<strong data-used>{size / 1024:.1f} KB</strong>" in page and "<strong data-limit>200.0 MB</strong>" in page
    assert "Free plan" in page and "Being uploaded right now: 0 B" in page
    assert f'<a href="/deals/{deal_id}">Deal · Big drawings deal</a>' in page
    assert "Other" in page and "Acme Owner" in page

    added = owner.post("/settings/storage/types", data={"csrf_token": csrf_token(page), "name": "Specification"})
    assert added.status_code == 302
    assert "Specification" in owner.get("/settings/storage").get_data(as_text=True)
    twice = owner.post("/settings/storage/types", data={"csrf_token": csrf_token(page), "name": "specification"})
    assert twice.status_code == 409

    member = add_person(app, company, "member")
    assert sign_in(app, company, member.email).get("/settings/storage").status_code == 403


def test_a_member_with_own_deal_rights_cannot_reach_the_documents_of_others_deals(app, make_tenant):
    company = make_tenant()
    set_rule(app, company, "member", Entity.DEAL, see="own")
    member = add_person(app, company, "member")
    theirs = make_deal(app, company, "Owner's deal")
    mine = make_deal(app, company, "Member's deal", user_id=member.user_id)
    owner = sign_in(app, company)
    secret = upload(owner, theirs, PDF, "secret.pdf")

    client = sign_in(app, company, member.email)
    own = upload(client, mine, PDF, "mine.pdf")
    assert client.get(f"/documents/{own}").status_code == 200
    assert_unreachable(client, secret, theirs)
    assert f"/documents/{secret}" not in client.get("/recycle-bin").get_data(as_text=True)


def test_a_member_who_sees_but_may_not_change_a_deal_reads_its_documents_but_adds_none(app, make_tenant):
    company = make_tenant()
    set_rule(app, company, "member", Entity.DEAL, see="all", edit="own")
    member = add_person(app, company, "member")
    deal_id = make_deal(app, company)
    document_id = upload(sign_in(app, company), deal_id, PDF, "contract.pdf")

    client = sign_in(app, company, member.email)
    card = client.get(f"/deals/{deal_id}").get_data(as_text=True)
    assert f'href="/documents/{document_id}"' in card and "data-documents-upload" not in card
    page = client.get(f"/documents/{document_id}").get_data(as_text=True)
    assert 'name="title"' not in page and "data-documents-upload" not in page  # read-only
    assert fetch(client, f"/documents/{document_id}/download")[0] == PDF
    refused = post_file(client, f"/deals/{deal_id}/documents", PNG, "photo.png")
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    assert post_file(client, f"/documents/{document_id}/versions", PNG).status_code == 403
    assert client.post(f"/documents/{document_id}", data={"csrf_token": csrf_token(page), "title": "x"}
                       ).status_code == 403


def assert_unreachable(client, document_id: int, deal_id: int) -> None:
    """Every route of a document, and of its deal's documents, answers 404 to `client`."""
    for path in ("", "/download", "/view", "/download?version=1"):
        assert client.get(f"/documents/{document_id}{path}").status_code == 404, path
    token = token_of(client)
    for path, form in (("", {"title": "Mine now"}), ("/delete", {}), ("/versions/1/delete", {}),
                       ("/forward", {"to": "x@example.com", "mode": "link"})):
        assert client.post(f"/documents/{document_id}{path}", data={"csrf_token": token, **form}).status_code == 404
    assert post_file(client, f"/documents/{document_id}/versions", PNG).status_code == 404
    assert post_file(client, f"/deals/{deal_id}/documents", PNG).status_code == 404
    assert client.get(f"/deals/{deal_id}/documents").status_code == 404
    assert client.post(f"/recycle-bin/documents/{document_id}/restore", data={"csrf_token": token}).status_code == 404


def test_another_companys_documents_are_404_on_every_route(app, make_tenant):
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    acme_deal = make_deal(app, acme)
    make_deal(app, globex, "Globex first deal")
    globex_deal = make_deal(app, globex, "Globex secret deal")  # an id Acme does not have
    acme_owner, globex_owner = sign_in(app, acme), sign_in(app, globex)
    upload(acme_owner, acme_deal, PDF + b"acme", "acme.pdf")
    for n in range(2):
        upload(globex_owner, globex_deal, PDF + b"globex %d" % n, "draft.pdf")
    secret = upload(globex_owner, globex_deal, PDF + b"globex", "globex.pdf")
    assert secret == 3 and globex_deal == 2  # Acme has deal 1 and document 1 only

    assert_unreachable(acme_owner, secret, globex_deal)
    with acting_as(app, globex) as actor:
        from saas.documents import services as documents
        documents.delete(secret, actor)
    assert acme_owner.post(f"/recycle-bin/documents/{secret}/restore",
                           data={"csrf_token": token_of(acme_owner)}).status_code == 404
    assert "globex.pdf" not in acme_owner.get("/recycle-bin").get_data(as_text=True)


def test_a_deleted_version_waits_in_the_recycle_bin_and_comes_back(app, make_tenant):
    from saas.documents import services as documents
    from .test_documents_services import PDF, tenant_of

    company, other = make_tenant(), make_tenant()
    with acting_as(app, company) as owner:
        deal_id = crm.create(Entity.DEAL, {"title": "Supply"}, owner).id
        document = documents.upload(tenant_of(company), Entity.DEAL, deal_id, io.BytesIO(PDF), filename="c.pdf",
                                    size=len(PDF), actor=owner)
        documents.add_version(tenant_of(company), document.id, io.BytesIO(PDF + b"%2"), filename="c2.pdf",
                              size=len(PDF) + 2, actor=owner)
        documents.delete(document.id, owner, version=1)
        document_id = document.id
    client = sign_in(app, company)
    page = client.get("/recycle-bin").get_data(as_text=True)
    assert f'data-version-of="{document_id}"' in page and "1 · c.pdf" in page
    restore = f"/recycle-bin/documents/{document_id}/versions/1/restore"
    stranger = sign_in(app, other)
    assert stranger.post(restore, data={"csrf_token": csrf_token(stranger.get("/recycle-bin").get_data(as_text=True))}
                         ).status_code == 404
    response = client.post(restore, data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    assert "Version 1 of “c.pdf” is restored." in response.get_data(as_text=True)
    with acting_as(app, company) as owner:
        assert [v.number for v in documents.get(document_id, owner).live_versions] == [1, 2]
