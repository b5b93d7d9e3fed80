"""CRM pages: lists, cards and forms of leads, contacts, companies and deals, through the real
sign-in and forms; access rules and other companies' records from the page side."""
import re

from saas.crm import admin, services
from saas.crm.models import Entity

from .conftest import client_for, csrf_token, sign_in
from .crm_helpers import acting_as, add_person, set_rule


def submit(client, path: str, data: dict, form_path: str | None = None):
    """POST a form the way a browser does: with the CSRF token of the page that shows it."""
    page = client.get(form_path or path)
    assert page.status_code == 200, page.status_code
    return client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data})


def html(response) -> str:
    return response.get_data(as_text=True)


def card_id(response) -> int:
    assert response.status_code == 302, html(response)[:2000]
    return int(re.search(r"/(\d+)$", response.headers["Location"]).group(1))


def titles_in_order(page: str, titles: list[str]) -> list[str]:
    return sorted((t for t in titles if t in page), key=page.index)


# --- forms and cards -----------------------------------------------------------------------

def test_records_are_created_shown_and_changed_through_the_forms(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)

    company_id = card_id(submit(client, "/companies/new", {
        "name": "Romashka", "tin": "7701234567", "phones": "8 (912) 345-67-89\r\n+7 495 123 45 67",
        "emails": "Info@Romashka.example", "responsible_id": str(company.owner_id)}))
    with acting_as(app, company) as owner:
        stored = services.get(Entity.COMPANY, company_id, owner)
        assert stored.phones == ["+79123456789", "+74951234567"]
        assert stored.emails == ["info@romashka.example"]
    page = html(client.get(f"/companies/{company_id}"))
    assert "Romashka" in page and "+7 912 345-67-89" in page and "7701234567" in page

    contact_id = card_id(submit(client, "/contacts/new", {
        "first_name": "Anna", "last_name": "Petrova", "phones": "89123456780", "company_ids": str(company_id),
        "birthday": "1990-05-17"}, form_path=f"/contacts/new?company_ids={company_id}"))
    contact_page = html(client.get(f"/contacts/{contact_id}"))
    assert f'href="/companies/{company_id}">Romashka</a>' in contact_page
    assert "+7 912 345-67-80" in contact_page and "1990-05-17" in contact_page

    prefilled = html(client.get(f"/deals/new?company_id={company_id}"))
    assert f'name="company_id" value="{company_id}"' in prefilled and "Romashka" in prefilled
    deal_id = card_id(submit(client, "/deals/new", {
        "title": "Supply of pumps", "company_id": str(company_id), "contact_ids": str(contact_id),
        "currency": "RUB", "close_date": "2030-01-31",
        "line_items.0.name": "Pump", "line_items.0.quantity": "2", "line_items.0.unit": "pcs",
        "line_items.0.price": "1000", "line_items.0.discount": "10", "line_items.0.vat_rate": "20",
        "line_items.1.name": "", "line_items.2.name": "Delivery", "line_items.2.price": "500"}))
    deal_page = html(client.get(f"/deals/{deal_id}"))
    assert "Supply of pumps" in deal_page and f'href="/companies/{company_id}">Romashka</a>' in deal_page
    assert f'href="/contacts/{contact_id}">Anna Petrova</a>' in deal_page
    # 2 × 1000 − 10 % = 1,800.00 net, VAT 360.00; delivery 500.00 without VAT → 2,660.00
    assert "1,800.00" in deal_page and "360.00" in deal_page and "2,660.00" in deal_page
    assert 'action="/deals/%d/move"' % deal_id in deal_page  # the stage bar: one click per stage

    company_page = html(client.get(f"/companies/{company_id}"))
    assert f'href="/contacts/{contact_id}">Anna Petrova</a>' in company_page
    assert f'href="/deals/{deal_id}">Supply of pumps</a>' in company_page

    lead_id = card_id(submit(client, "/leads/new", {
        "title": "Website enquiry", "contact_name": "Oleg", "phone": "8 912 000 11 22", "source": "Website"}))
    lead_page = html(client.get(f"/leads/{lead_id}"))
    assert "Open" in lead_page and f'href="/leads/{lead_id}/convert"' in lead_page
    assert "+7 912 000-11-22" in lead_page and 'name="junk_reason"' in lead_page

    # Editing: the form holds the stored values; the timeline shows the change old → new.
    edit_page = html(client.get(f"/companies/{company_id}/edit"))
    assert 'value="Romashka"' in edit_page and "+7 912 345-67-89" in edit_page
    response = submit(client, f"/companies/{company_id}/edit", {
        "name": "Romashka Ltd", "tin": "7701234567", "phones": "+7 912 345-67-89\n+7 495 123-45-67",
        "emails": "info@romashka.example", "responsible_id": str(company.owner_id), "address": "Moscow"})
    assert response.status_code == 302
    page = html(client.get(f"/companies/{company_id}"))
    assert re.search(r"Company name:</span>\s*<del>Romashka</del> → Romashka Ltd", page)
    assert re.search(r"Address:</span>\s*Moscow", page)
    assert not re.search(r"Phones:</span>\s*<del>", page)  # the same numbers typed differently are no change
    # The company's timeline also tells what happened to its deal and contact.
    assert f'Deal “Supply of pumps”</a>' in page


def test_a_wrong_value_is_shown_at_its_field_and_the_input_is_kept(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    response = submit(client, "/companies/new", {"name": "Vasilek", "phones": "8 912 345 67 89\n12ab",
                                                  "tin": "123"})
    assert response.status_code == 422
    page = html(response)
    assert 'value="Vasilek"' in page and "8 912 345 67 89\n12ab" in page
    phones = page[page.index('name="phones"'):]
    assert "“12ab” is not a phone number." in phones[:phones.index("</label>")]
    assert "A TIN has 10 or 12 digits." in page

    response = submit(client, "/deals/new", {"title": "Bad lines", "line_items.0.name": "Pump",
                                              "line_items.0.quantity": "many"})
    assert response.status_code == 422
    page = html(response)
    assert 'name="line_items.0.quantity" value="many"' in page and "Enter a number" in page
    with acting_as(app, company) as owner:
        assert services.list_records(Entity.DEAL, owner).total == 0


def test_the_timeline_reads_like_the_card(app, make_tenant):
    company = make_tenant(name="Pumps Co")
    seller = add_person(app, company, "member", name="Sergei Seller")
    with acting_as(app, company) as owner:
        payment = admin.create_custom_field(owner, Entity.DEAL, label="Payment", type="list",
                                            items=["Cash", "Card"], key="payment")
        cash, card = (item["id"] for item in payment.options["items"])
        stages = [stage.id for stage in services.pipelines(Entity.DEAL)[0].stages]
        deal = services.create(Entity.DEAL, {"title": "Pumps", "amount": "100", "custom": {"payment": cash}}, owner).id
        services.update(Entity.DEAL, deal, {"amount": "1500", "responsible_id": seller.user_id,
                                            "custom": {"payment": card}}, owner)
    client = sign_in(app, company)
    # The stage bar on the card moves the deal: one button per stage.
    response = submit(client, f"/deals/{deal}/move", {"stage_id": str(stages[2])}, form_path=f"/deals/{deal}")
    assert response.status_code == 302
    page = html(client.get(f"/deals/{deal}"))
    assert re.search(r"Amount:</span>\s*<del>100.00</del> → 1,500.00", page)
    assert re.search(r"Responsible:</span>\s*<del>Pumps Co Owner</del> → Sergei Seller", page)
    assert re.search(r"Payment:</span>\s*<del>Cash</del> → Card", page)
    assert re.search(r"Stage changed</strong>.*?Stage:</span>\s*<del>New</del> → Negotiation", page, re.S)
    assert re.search(r'<li class="reached current"[^>]*aria-current="step">\s*<span>Negotiation', page)


def test_a_lead_card_shows_junk_and_what_a_lead_became(app, make_tenant):
    from saas.crm import conversion

    company = make_tenant()
    with acting_as(app, company) as owner:
        junk = services.create(Entity.LEAD, {"title": "Spam"}, owner).id
        junk_stage = [s.id for s in services.lead_pipeline().stages if s.kind == "lost"][0]
        good = services.create(Entity.LEAD, {"title": "Real order", "contact_name": "Oleg Ivanov",
                                             "company_name": "Vostok"}, owner).id
        made = conversion.convert(good, owner, create=["contact", "company", "deal"])
    client = sign_in(app, company)
    response = submit(client, f"/leads/{junk}/move", {"stage_id": str(junk_stage), "junk_reason": "A robot"},
                      form_path=f"/leads/{junk}")
    assert response.status_code == 302
    page = html(client.get(f"/leads/{junk}"))
    assert "Junk reason:</strong> A robot" in page and f"/leads/{junk}/edit" not in page
    assert f"/leads/{junk}/convert" not in page and 'name="junk_reason"' not in page

    page = html(client.get(f"/leads/{good}"))
    assert "Qualified" in page and "Converted into" in page
    assert f'href="/contacts/{made["contact_id"]}">Oleg Ivanov</a>' in page
    assert f'href="/companies/{made["company_id"]}">Vostok</a>' in page
    assert f'href="/deals/{made["deal_id"]}">Real order</a>' in page
    assert client.get(f"/leads/{good}/edit").status_code == 302  # closed: back to the card


def test_a_contact_photo_is_uploaded_shown_and_kept_to_its_company(app, make_tenant):
    import io

    company, other = make_tenant(), make_tenant()
    with acting_as(app, company) as owner:
        anna = services.create(Entity.CONTACT, {"first_name": "Anna"}, owner).id
    client = sign_in(app, company)
    picture = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

    def upload(content: bytes, name: str):
        token = csrf_token(html(client.get(f"/contacts/{anna}")))
        return client.post(f"/contacts/{anna}/photo", content_type="multipart/form-data",
                           data={"csrf_token": token, "photo": (io.BytesIO(content), name)})

    assert client.get(f"/contacts/{anna}/photo").status_code == 404
    assert upload(b"<script>alert(1)</script>", "evil.png").status_code == 302
    assert "Send a PNG, JPEG or WebP picture." in html(client.get(f"/contacts/{anna}"))
    assert upload(picture, "anna.png").status_code == 302
    page = html(client.get(f"/contacts/{anna}"))
    assert f'src="/contacts/{anna}/photo?v=' in page and "Photo:</span>" in page
    response = client.get(f"/contacts/{anna}/photo")
    assert response.status_code == 200 and response.data == picture
    assert response.headers["Content-Type"] == "image/png" and response.headers["X-Content-Type-Options"] == "nosniff"

    # Another company's people reach nothing by the same number, and cannot replace it.
    intruder = sign_in(app, other)
    assert intruder.get(f"/contacts/{anna}/photo").status_code == 404
    token = csrf_token(html(intruder.get("/contacts")))
    response = intruder.post(f"/contacts/{anna}/photo", content_type="multipart/form-data",
                             data={"csrf_token": token, "photo": (io.BytesIO(picture), "x.png")})
    assert response.status_code == 404


# --- lists ---------------------------------------------------------------------------------

def test_list_filters_sorting_and_pages(app, make_tenant):
    company = make_tenant()
    seller = add_person(app, company, "member", name="Sergei Seller")
    with acting_as(app, company) as owner:
        payment = admin.create_custom_field(owner, Entity.DEAL, label="Payment", type="list",
                                            items=["Cash", "Card"], key="payment")
        cash, card = (item["id"] for item in payment.options["items"])
        admin.create_custom_field(owner, Entity.DEAL, label="Weight", type="number", key="weight")
        sales = services.pipelines(Entity.DEAL)[0]
        proposal = sales.stages[1].id
        services.create(Entity.DEAL, {"title": "Alpha deal", "custom": {"payment": cash, "weight": 5}}, owner)
        services.create(Entity.DEAL, {"title": "Bravo deal", "custom": {"payment": card, "weight": 50},
                                      "stage_id": proposal}, owner)
        services.create(Entity.DEAL, {"title": "Charlie deal", "responsible_id": seller.user_id,
                                      "custom": {"payment": cash}}, owner)
    client = sign_in(app, company)
    deals = ["Alpha deal", "Bravo deal", "Charlie deal"]

    page = html(client.get("/deals"))
    assert all(title in page for title in deals) and "3 found" in page
    assert 'name="custom.payment"' in page and 'name="custom.weight.from"' in page
    assert 'href="/deals/board"' in page and 'href="/deals/import"' in page

    page = html(client.get(f"/deals?custom.payment={cash}"))
    assert sorted(titles_in_order(page, deals)) == ["Alpha deal", "Charlie deal"]
    assert f'href="/deals/export.csv?custom.payment={cash}&amp;sort=-updated_at"' in page
    page = html(client.get("/deals?custom.weight.from=10"))
    assert titles_in_order(page, deals) == ["Bravo deal"]
    page = html(client.get(f"/deals?stage_id={proposal}"))
    assert titles_in_order(page, deals) == ["Bravo deal"]
    page = html(client.get(f"/deals?responsible_id={seller.user_id}"))
    assert titles_in_order(page, deals) == ["Charlie deal"] and "Sergei Seller" in page

    assert titles_in_order(html(client.get("/deals?sort=title")), deals) == deals
    assert titles_in_order(html(client.get("/deals?sort=-title")), deals) == deals[::-1]

    first = html(client.get("/deals?sort=title&per_page=2"))
    assert titles_in_order(first, deals) == deals[:2] and "Page 1 of 2" in first
    assert 'href="/deals?sort=title&amp;per_page=2&amp;page=2"' in first
    second = html(client.get("/deals?sort=title&per_page=2&page=2"))
    assert titles_in_order(second, deals) == deals[2:] and "Page 2 of 2" in second

    for query, problem in (("created_from=someday", "Enter a date"), ("sort=colour", "Sort by one of"),
                           ("stage_id=99999999999999999999", "Choose from the list"),
                           ("page=99999999999999999999", "Nothing matches these filters")):
        response = client.get(f"/deals?{query}")
        assert response.status_code == 200 and problem in html(response), query


def test_empty_lists_say_what_to_do(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    for plural, message in (("leads", "No leads yet"), ("contacts", "No contacts yet"),
                            ("companies", "No companies yet"), ("deals", "No deals yet")):
        page = html(client.get(f"/{plural}"))
        assert message in page and f'href="/{plural}/new">Create the first one' in page
    with acting_as(app, company) as owner:
        services.create(Entity.COMPANY, {"name": "Lonely"}, owner)
    page = html(client.get("/companies?q=nothing-like-it"))
    assert "Nothing matches these filters." in page and 'href="/companies">Clear filters' in page


def test_deleting_moves_the_record_to_the_recycle_bin(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        doomed = services.create(Entity.CONTACT, {"first_name": "Doomed"}, owner).id
    client = sign_in(app, company)
    page = html(client.get(f"/contacts/{doomed}"))
    assert f'action="/contacts/{doomed}/delete"' in page
    response = submit(client, f"/contacts/{doomed}/delete", {}, form_path=f"/contacts/{doomed}")
    assert response.status_code == 302 and response.headers["Location"] == "/contacts"
    assert client.get(f"/contacts/{doomed}").status_code == 404
    assert "Doomed" not in html(client.get("/contacts"))
    with acting_as(app, company) as owner:
        assert [entry.record.id for entry in services.recycle_bin(owner)] == [doomed]


# --- access --------------------------------------------------------------------------------

def test_a_member_with_own_rights_sees_only_their_records(app, make_tenant):
    company = make_tenant()
    member = add_person(app, company, "member", name="Mila Member")
    with acting_as(app, company) as owner:
        others = services.create(Entity.DEAL, {"title": "Owner deal"}, owner).id
        mine = services.create(Entity.DEAL, {"title": "Mila deal", "responsible_id": member.user_id}, owner).id
    set_rule(app, company, "member", Entity.DEAL, "own")
    client = sign_in(app, company, member.email, member.password)

    page = html(client.get("/deals"))
    assert "Mila deal" in page and "Owner deal" not in page and "1 found" in page
    assert "Owner deal" not in html(client.get(f"/deals?q=Owner"))
    for path in (f"/deals/{others}", f"/deals/{others}/edit"):
        assert client.get(path).status_code == 404
    response = submit(client, f"/deals/{others}/delete", {}, form_path=f"/deals/{mine}")
    assert response.status_code == 404
    assert client.get(f"/deals/{mine}").status_code == 200

    # Creating a deal for someone else is refused at the field; the input stays.
    response = submit(client, "/deals/new", {"title": "For the boss", "responsible_id": str(company.owner_id)})
    assert response.status_code == 422 and "You may only create records for yourself." in html(response)
    assert 'value="For the boss"' in html(response)

    # Seeing everything but editing only one's own: no edit buttons, and a 403 with the reason.
    set_rule(app, company, "member", Entity.DEAL, "all", "own")
    page = html(client.get(f"/deals/{others}"))
    assert "Owner deal" in page and f"/deals/{others}/edit" not in page and "/delete" not in page
    response = client.get(f"/deals/{others}/edit")
    assert response.status_code == 403 and "not change it" in html(response)


def test_another_companys_records_are_not_there(app, make_tenant):
    a, b = make_tenant(name="Alpha"), make_tenant(name="Bravo")
    with acting_as(app, b) as b_owner:
        b_company = services.create(Entity.COMPANY, {"name": "Bravo client"}, b_owner).id
        b_deal = services.create(Entity.DEAL, {"title": "Bravo secret deal", "company_id": b_company}, b_owner).id
        b_lead = services.create(Entity.LEAD, {"title": "Bravo lead"}, b_owner).id
    client = sign_in(app, a)
    for path in (f"/deals/{b_deal}", f"/deals/{b_deal}/edit", f"/companies/{b_company}", f"/leads/{b_lead}"):
        assert client.get(path).status_code == 404, path
    for action in ("delete", "edit"):
        response = submit(client, f"/deals/{b_deal}/{action}", {"title": "Taken over"}, form_path="/deals")
        assert response.status_code == 404, action
    page = html(client.get(f"/deals?company_id={b_company}"))
    assert "Bravo secret deal" not in page and "Nothing matches these filters." in page
    # Linking A's deal to B's company by its number is refused, and B's name never shows.
    response = submit(client, "/deals/new", {"title": "Sneaky", "company_id": str(b_company)})
    assert response.status_code == 422 and f"No such record: #{b_company}." in html(response)
    assert "Bravo client" not in html(response)
    with acting_as(app, b) as b_owner:
        assert services.get(Entity.DEAL, b_deal, b_owner).title == "Bravo secret deal"

    # A's session cookie does not sign anyone in on B's host.
    client.host = b.host
    response = client.get("/deals")
    assert response.status_code == 302 and "/signin" in response.headers["Location"]


def test_pages_need_a_signed_in_member_of_the_company(app, make_tenant):
    company = make_tenant()
    anonymous = client_for(app, company)
    assert anonymous.get("/companies").status_code == 302
    from .conftest import SERVER_NAME
    assert client_for(app, SERVER_NAME).get("/companies").status_code == 404
