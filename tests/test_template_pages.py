"""The template pages through the test client: the list with the ready templates and the
numbering table, creating and saving versions, the check that names the line of a mistake,
the live preview (its HTML, its policy, its refusals), who may use the pages, and one company
never reaching another's templates or records."""
import html
import re
from datetime import date

from sqlalchemy import func, select

from saas.documents import doc_templates
from saas.documents.models import DocumentTemplate, TemplateVersion
from tenants.db import db

from .conftest import csrf_token, sign_in
from .crm_helpers import acting_as, add_person
from .test_generation import make_deal, make_template

BROKEN = "<h1>Contract</h1>\n<p>Between us and {{ company.name }}</p>\n<p>{{ deal.titel }}</p>"


def fields(**overrides) -> dict:
    """What the editor posts (besides the CSRF token and the record picked for the preview)."""
    return {"name": "Delivery letter", "document_type": "letter", "applies_to": "deal", "language": "en",
            "page_size": "A4", "margin_top": "20", "margin_right": "15", "margin_bottom": "20", "margin_left": "20",
            "header_html": "<p>{{ our.name }}</p>", "footer_html": '<p>Page <span class="page-number"></span></p>',
            "body_html": "<h1>{{ deal.title }}</h1>\n<p>{{ deal.amount|money }}</p>", **overrides}


def token(client) -> str:
    return csrf_token(client.get("/settings/templates/new").get_data(as_text=True))


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def template_ids(page: str) -> list[int]:
    return [int(found) for found in re.findall(r'data-template="(\d+)"', page)]


def count_templates(app, company) -> int:
    with acting_as(app, company):
        return db.session.scalar(select(func.count()).select_from(DocumentTemplate))


def saved(app, company, template_id: int) -> tuple[int, str, list[int]]:
    """(version, body, numbers of the versions kept) of a template as stored."""
    with acting_as(app, company):
        found = doc_templates.get_template(template_id)
        numbers = list(db.session.scalars(select(TemplateVersion.number)
                                          .where(TemplateVersion.template_id == template_id)
                                          .order_by(TemplateVersion.number)))
        return found.version, found.body_html, numbers


def test_a_new_company_lists_its_ten_ready_templates_and_their_numbering(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    response = client.get("/settings/templates")
    assert response.status_code == 200
    page = text_of(response)
    assert len(template_ids(page)) == 10
    for heading in ("Made on a deal card", "New template", "Document numbering"):
        assert heading in page
    assert "Contract" in page and "Invoice" in page and "English" in page and "Русский" in page
    assert len(re.findall(r'<tr data-numbering="', page)) == 6
    assert 'value="CT-{YYYY}-{####}"' in page and f"CT-{date.today().year}-0001" in page
    assert "templates-editor.js" in page


def test_creating_makes_version_1_and_saving_a_change_version_2_with_the_first_listed(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    created = client.post("/settings/templates", data={"csrf_token": token(client), **fields()})
    assert created.status_code == 302, text_of(created)[:2000]
    template_id = int(created.headers["Location"].rsplit("/", 1)[1])
    editor = text_of(client.get(created.headers["Location"]))
    assert "Saved as version 1." in editor and "Version 1, saved" in editor
    assert "This is the first version." in editor
    assert saved(app, company, template_id) == (1, fields()["body_html"], [1])

    changed = client.post(f"/settings/templates/{template_id}", data={
        "csrf_token": token(client), **fields(body_html="<h1>{{ deal.title }}</h1>\n<p>Thank you.</p>")})
    assert changed.status_code == 302
    editor = text_of(client.get(changed.headers["Location"]))
    assert "Saved as version 2." in editor and "Version 2, saved" in editor
    assert re.search(r'<tr data-version="1"><td>1</td><td>Acme Owner</td>', editor)
    assert 'data-version="2"' not in editor  # the current one is not "earlier"
    assert saved(app, company, template_id) == (2, "<h1>{{ deal.title }}</h1>\n<p>Thank you.</p>", [1, 2])

    same = client.post(f"/settings/templates/{template_id}", data={
        "csrf_token": token(client), **fields(body_html="<h1>{{ deal.title }}</h1>\n<p>Thank you.</p>")})
    assert "Nothing has changed: still version 2." in text_of(client.get(same.headers["Location"]))
    assert saved(app, company, template_id)[0] == 2


def test_a_template_naming_an_unknown_placeholder_is_refused_with_its_line_and_nothing_saved(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    before = len(template_ids(client.get("/settings/templates").get_data(as_text=True)))

    refused = client.post("/settings/templates", data={"csrf_token": token(client), **fields(body_html=BROKEN)})
    assert refused.status_code == 422
    page = text_of(refused)
    assert "Body, line 3: unknown placeholder “deal.titel”" in page
    assert 'data-error-line="3"' in page
    assert "{{ deal.titel }}" in page and 'value="Delivery letter"' in page  # what was typed is kept
    assert count_templates(app, company) == before

    template_id = make_template(app, company)
    refused = client.post(f"/settings/templates/{template_id}", data={"csrf_token": token(client),
                                                                     **fields(body_html=BROKEN)})
    assert refused.status_code == 422 and "line 3" in text_of(refused)
    assert saved(app, company, template_id)[:1] == (1,)
    assert saved(app, company, template_id)[2] == [1]

    unnamed = client.post("/settings/templates", data={"csrf_token": token(client), **fields(name=" ")})
    assert unnamed.status_code == 422 and "Give the template a name." in text_of(unnamed)


def test_the_preview_fills_the_template_with_the_record_under_a_policy_that_loads_nothing(app, make_tenant):
    company = make_tenant()
    deal_id = make_deal(app, company, title="Boilers for the north wing")
    client = sign_in(app, company)
    editor = text_of(client.get("/settings/templates/new"))
    before = count_templates(app, company)
    assert f'<option value="{deal_id}">Boilers for the north wing (#{deal_id})</option>' in editor

    answer = client.post("/settings/templates/preview", data={"csrf_token": token(client), "record_id": deal_id,
                                                             **fields(name="")})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:2000]
    assert answer.mimetype == "text/html"
    assert answer.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    page = answer.get_data(as_text=True)
    assert "<h1>Boilers for the north wing</h1>" in page and "$481.20" in page
    assert "@page { size: A4" in page and "Acme" in page  # page setup, and our name in the header
    assert count_templates(app, company) == before  # a preview saves nothing

    broken = client.post("/settings/templates/preview", data={"csrf_token": token(client), "record_id": deal_id,
                                                             **fields(body_html=BROKEN)})
    assert broken.status_code == 422
    assert broken.get_json() == {"error": "template_error", "part": "body_html", "line": 3,
                                 "message": "Body, line 3: unknown placeholder “deal.titel”"}

    no_record = client.post("/settings/templates/preview", data={"csrf_token": token(client), "record_id": "",
                                                                **fields()})
    assert no_record.status_code == 422 and no_record.get_json()["field"] == "record_id"
    missing = client.post("/settings/templates/preview", data={"csrf_token": token(client),
                                                              "record_id": deal_id + 1000, **fields()})
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"


def test_numbering_is_saved_and_shown_and_a_bad_pattern_refused_beside_its_field(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    done = client.post("/settings/templates/numbering", data={
        "csrf_token": token(client), "document_type": "contract", "pattern": "C-{YY}/{###}", "next_value": "42"})
    assert done.status_code == 302
    page = text_of(client.get("/settings/templates"))
    assert "Numbering of “Contract” saved." in page
    assert 'value="C-{YY}/{###}"' in page and f"C-{date.today().year % 100:02d}/042" in page

    refused = client.post("/settings/templates/numbering", data={
        "csrf_token": token(client), "document_type": "invoice", "pattern": "INV-{YEAR}-{###}", "next_value": "7"})
    assert refused.status_code == 422
    page = text_of(refused)
    row = page[page.index('<tr data-numbering="invoice"'):]
    row = row[:row.index("</tr>")]
    assert "Only {YYYY}, {YY}, {MM}, {DD} and {###} may stand in braces." in row
    assert 'value="INV-{YEAR}-{###}"' in row  # what was typed is kept
    assert f"INV-{date.today().year}-0001" in page  # and nothing was saved

    zero = client.post("/settings/templates/numbering", data={
        "csrf_token": token(client), "document_type": "act", "pattern": "A-{####}", "next_value": "0"})
    assert zero.status_code == 422 and "The next number is a whole number from 1." in text_of(zero)


def test_members_who_are_not_managers_are_refused_every_template_page(app, make_tenant):
    company = make_tenant()
    template_id = make_template(app, company)
    manager = sign_in(app, company)
    csrf = token(manager)
    member = add_person(app, company, "member")
    client = sign_in(app, company, member.email, member.password)
    for path in ("/settings/templates", "/settings/templates/new", f"/settings/templates/{template_id}"):
        assert client.get(path).status_code == 403, path
    for path, data in (("/settings/templates", fields()), (f"/settings/templates/{template_id}", fields()),
                       (f"/settings/templates/{template_id}/delete", {}), ("/settings/templates/preview", fields()),
                       ("/settings/templates/numbering", {"document_type": "contract", "pattern": "X-{#}",
                                                          "next_value": "1"})):
        assert client.post(path, data={"csrf_token": csrf_token(client.get("/deals").get_data(as_text=True)),
                                       **data}).status_code == 403, path
    assert csrf and saved(app, company, template_id)[0] == 1


def test_a_manager_deletes_a_template_and_is_told_documents_keep_their_files(app, make_tenant):
    company = make_tenant()
    template_id = make_template(app, company)
    client = sign_in(app, company)
    editor = text_of(client.get(f"/settings/templates/{template_id}"))
    assert "Documents already made from it keep their files." in editor and "confirm(" in editor
    gone = client.post(f"/settings/templates/{template_id}/delete", data={"csrf_token": token(client)})
    assert gone.status_code == 302
    page = text_of(client.get(gone.headers["Location"]))
    assert "Template “Supply contract” deleted. Documents already made from it keep their files." in page
    assert template_id not in template_ids(page)
    assert client.get(f"/settings/templates/{template_id}").status_code == 404


def test_one_company_never_reaches_another_companys_templates_or_records(app, make_tenant):
    acme, rival = make_tenant("Acme"), make_tenant("Rival")
    acme_client, rival_client = sign_in(app, acme), sign_in(app, rival)
    acme_ids = template_ids(acme_client.get("/settings/templates").get_data(as_text=True))
    rival_client.get("/settings/templates")
    secret = make_template(app, rival, body="<p>Rival secret terms {{ deal.title }}</p>", name="Rival secret")
    assert secret not in acme_ids  # ids are per company: this one exists only at Rival
    make_deal(app, rival, title="first")
    rival_deal = make_deal(app, rival, title="Rival confidential deal")
    acme_deal = make_deal(app, acme, title="Acme deal")
    assert rival_deal != acme_deal

    csrf = token(acme_client)
    assert acme_client.get(f"/settings/templates/{secret}").status_code == 404
    changed = acme_client.post(f"/settings/templates/{secret}", data={"csrf_token": csrf, **fields()})
    assert changed.status_code == 404
    assert acme_client.post(f"/settings/templates/{secret}/delete", data={"csrf_token": csrf}).status_code == 404
    assert saved(app, rival, secret) == (1, "<p>Rival secret terms {{ deal.title }}</p>", [1])

    peek = acme_client.post("/settings/templates/preview", data={"csrf_token": csrf, "record_id": rival_deal,
                                                                **fields()})
    assert peek.status_code == 404
    assert "Rival confidential" not in peek.get_data(as_text=True)
    for path in ("/settings/templates", "/settings/templates/new"):
        page = acme_client.get(path).get_data(as_text=True)
        assert "Rival secret" not in page and "Rival confidential" not in page
