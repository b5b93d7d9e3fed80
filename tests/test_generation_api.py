"""The templates and generation REST API (/api/v1): templates saved with a check that names the
line of a mistake, versions, previews under a strict CSP, documents generated on cards by a real
RQ worker (ready, failed with a reason, retried keeping their number), batches with progress,
HTML/DOCX exports, the quota, and one company's token never reaching another's templates,
records or documents.
"""
from datetime import date

import pytest
from sqlalchemy import select

from billing.plans import MB
from saas.documents.models import Document
from storage import ledger
from tenants.db import db

from .conftest import client_for
from .crm_helpers import acting_as
from .test_crm_api import error, ok, owner_api, person_api
from .test_documents_api import raw
from .test_generation import make_deal, pdf_text

YEAR = date.today().year
LETTER = "<h1>Contract {{ number }}</h1>\n<p>{{ deal.title }} for {{ company.name }}</p>"
PREVIEW_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@pytest.fixture
def company(make_tenant):
    return make_tenant(name="Acme")


@pytest.fixture
def api(app, company):
    return owner_api(app, company)


def new_template(api, body: str = LETTER, **fields) -> dict:
    return ok(api.post("/templates", json={"name": "Supply contract", "document_type": "contract",
                                           "applies_to": "deal", "body_html": body, **fields}), 201)


def generate(api, deal_id: int, template_id: int) -> dict:
    response = api.post(f"/deals/{deal_id}/generate", json={"template_id": template_id})
    made = ok(response, 202)
    assert response.headers["Location"] == f"/api/v1/documents/{made['id']}"
    return made


def documents_of(app, company) -> list[Document]:
    with acting_as(app, company):
        return list(db.session.scalars(select(Document)))


# --- templates -----------------------------------------------------------------------------

def test_templates_are_created_changed_as_new_versions_and_deleted(app, company, api):
    response = api.post("/templates", json={"name": "Supply contract", "document_type": "contract",
                                            "applies_to": "deal", "body_html": LETTER, "language": "ru",
                                            "page_size": "A5", "margin_left": 30, "footer_html": "{{ number }}"})
    made = ok(response, 201)
    assert response.headers["Location"] == f"/api/v1/templates/{made['id']}"
    assert (made["version"], made["name"], made["language"], made["page_size"], made["margin_left"],
            made["margin_top"], made["footer_html"], made["header_html"], made["body_html"]) == \
           (1, "Supply contract", "ru", "A5", 30, 20, "{{ number }}", "", LETTER)
    assert made["created_at"] and made["updated_at"] and made["created_by"] == made["updated_by"]

    for_contacts = new_template(api, "<p>{{ contact.full_name }}</p>", applies_to="contact")
    everything = [t["id"] for t in ok(api.get("/templates"))]
    assert made["id"] in everything and for_contacts["id"] in everything
    assert [t["id"] for t in ok(api.get("/templates?applies_to=contact"))] == [for_contacts["id"]]
    assert made["id"] in [t["id"] for t in ok(api.get("/templates?applies_to=deal"))]
    error(api.get("/templates?applies_to=lead"), 422)

    changed = ok(api.patch(f"/templates/{made['id']}", json={"body_html": "<p>{{ deal.title }}</p>"}))
    assert (changed["version"], changed["body_html"], changed["language"]) == (2, "<p>{{ deal.title }}</p>", "ru")
    assert ok(api.patch(f"/templates/{made['id']}", json={"body_html": "<p>{{ deal.title }}</p>"}))["version"] == 2
    assert ok(api.get(f"/templates/{made['id']}"))["version"] == 2
    versions = ok(api.get(f"/templates/{made['id']}/versions"))
    assert [v["number"] for v in versions] == [1, 2] and all(v["created_by"] == made["created_by"] for v in versions)

    assert api.delete(f"/templates/{made['id']}").status_code == 204
    error(api.get(f"/templates/{made['id']}"), 404)
    error(api.get(f"/templates/{made['id']}/versions"), 404)


def test_missing_or_invalid_template_fields_are_named(api):
    missing = error(api.post("/templates", json={"name": "X"}), 422)
    assert {"document_type", "applies_to", "body_html"} <= set(missing["fields"])
    wrong = error(api.post("/templates", json={"name": "X", "document_type": "memo", "applies_to": "deal",
                                               "body_html": "<p></p>"}), 422)
    assert wrong["error"] == "invalid" and set(wrong["fields"]) == {"document_type"}
    margin = error(api.post("/templates", json={"name": "X", "document_type": "letter", "applies_to": "deal",
                                                "body_html": "<p></p>", "margin_top": 99}), 422)
    assert set(margin["fields"]) == {"margin_top"}


def test_a_mistake_in_a_template_is_a_422_naming_its_part_and_line(api):
    body = error(api.post("/templates", json={"name": "X", "document_type": "letter", "applies_to": "deal",
                                              "body_html": "<p>Hello</p>\n<p>{{ deal.titel }}</p>"}), 422)
    assert (body["error"], body["part"], body["line"]) == ("template_error", "body_html", 2)
    assert body["message"].startswith("Body, line 2:") and "deal.titel" in body["message"]
    assert body["fields"] == {"body_html": [body["message"]]}

    made = new_template(api)
    syntax = error(api.patch(f"/templates/{made['id']}", json={"header_html": "<b>\n\n{% if %}</b>"}), 422)
    assert (syntax["error"], syntax["part"], syntax["line"]) == ("template_error", "header_html", 3)
    assert syntax["message"].startswith("Header, line 3:")
    assert ok(api.get(f"/templates/{made['id']}"))["version"] == 1  # nothing saved


def test_only_managers_change_templates_but_everyone_lists_them(app, company, api):
    made = new_template(api)
    member, _user_id = person_api(app, company, "member")
    assert made["id"] in [t["id"] for t in ok(member.get("/templates"))]
    ok(member.get(f"/templates/{made['id']}"))
    error(member.post("/templates", json={"name": "X", "document_type": "letter", "applies_to": "deal",
                                          "body_html": "<p></p>"}), 403)
    error(member.patch(f"/templates/{made['id']}", json={"name": "Mine"}), 403)
    error(member.delete(f"/templates/{made['id']}"), 403)
    assert ok(api.get(f"/templates/{made['id']}"))["name"] == "Supply contract"


# --- preview -------------------------------------------------------------------------------

def test_a_preview_is_the_filled_page_under_a_strict_policy(app, company, api):
    deal_id, made = make_deal(app, company, title="Boiler delivery"), new_template(api)
    response = api.post(f"/templates/{made['id']}/preview", json={"record_id": deal_id})
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == PREVIEW_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = response.get_data(as_text=True)
    assert f"Contract CT-{YEAR}-0001" in page and "Boiler delivery for Northwind LLC" in page

    unsaved = api.post(f"/templates/{made['id']}/preview",
                       json={"record_id": deal_id, "body_html": "<p>Draft for {{ deal.title }}</p>"})
    assert unsaved.status_code == 200 and "Draft for Boiler delivery" in unsaved.get_data(as_text=True)
    assert ok(api.get(f"/templates/{made['id']}"))["version"] == 1  # a preview saves nothing

    broken = error(api.post(f"/templates/{made['id']}/preview",
                            json={"record_id": deal_id, "body_html": "<p>\n{{ deal.nope }}</p>"}), 422)
    assert (broken["error"], broken["part"], broken["line"]) == ("template_error", "body_html", 2)
    error(api.post(f"/templates/{made['id']}/preview", json={"record_id": deal_id + 1000}), 404)
    error(api.post(f"/templates/{made['id']}/preview", json={}), 422)

    member, _user_id = person_api(app, company, "member")
    error(member.post(f"/templates/{made['id']}/preview", json={"record_id": deal_id, "body_html": "<p></p>"}), 403)


# --- generating ----------------------------------------------------------------------------

def test_a_generated_document_is_generating_then_ready_with_its_number_and_pdf(app, company, api, run_jobs):
    deal_id, made = make_deal(app, company, title="Boiler delivery"), new_template(api)
    started = generate(api, deal_id, made["id"])
    assert (started["generation_status"], started["error"], started["template_id"], started["template_version"]) == \
           ("generating", None, made["id"], 1)
    assert (started["entity"], started["record_id"], started["number"]) == ("deal", deal_id, None)
    assert all(started[name] is None for name in ("filename", "content_type", "size", "sha256", "version"))
    assert ok(api.get(f"/documents/{started['id']}"))["generation_status"] == "generating"
    error(api.get(f"/documents/{started['id']}/content?stream=1"), 404)  # not made yet

    run_jobs()
    ready = ok(api.get(f"/documents/{started['id']}"))
    assert (ready["generation_status"], ready["error"], ready["number"]) == ("ready", None, f"CT-{YEAR}-0001")
    assert (ready["content_type"], ready["version"]) == ("application/pdf", 1)
    assert ready["filename"].endswith(".pdf") and ready["size"] > 0
    assert started["id"] in [d["id"] for d in ok(api.get(f"/deals/{deal_id}/documents"))]

    content = api.get(f"/documents/{started['id']}/content?stream=1")
    assert content.status_code == 200 and content.data.startswith(b"%PDF")
    assert f"Contract CT-{YEAR}-0001" in pdf_text(content.data)

    html = api.get(f"/documents/{started['id']}/content?format=html")
    assert html.status_code == 200 and html.mimetype == "text/html"
    assert html.headers["Content-Security-Policy"] == PREVIEW_POLICY
    assert "Boiler delivery for Northwind LLC" in html.get_data(as_text=True)
    assert "attachment" in html.headers["Content-Disposition"]
    docx = api.get(f"/documents/{started['id']}/content?format=docx")
    assert docx.status_code == 200 and docx.data[:2] == b"PK" and ".docx" in docx.headers["Content-Disposition"]
    error(api.get(f"/documents/{started['id']}/content?format=odt"), 422)

    uploaded = ok(raw(api, f"/deals/{deal_id}/documents", b"plain words\n", "notes.txt"), 201)
    assert (uploaded["generation_status"], uploaded["template_id"]) == (None, None)
    assert error(api.get(f"/documents/{uploaded['id']}/content?format=html"), 422)["fields"].keys() == {"format"}


def test_a_template_for_other_cards_or_an_unknown_one_is_refused(app, company, api):
    deal_id = make_deal(app, company)
    for_contacts = new_template(api, "<p>{{ contact.full_name }}</p>", applies_to="contact")
    refused = error(api.post(f"/deals/{deal_id}/generate", json={"template_id": for_contacts["id"]}), 422)
    assert set(refused["fields"]) == {"template_id"}
    error(api.post(f"/deals/{deal_id}/generate", json={"template_id": 10 ** 9}), 404)
    error(api.post(f"/deals/{deal_id}/generate", json={}), 422)
    error(api.post(f"/deals/{deal_id + 1000}/generate", json={"template_id": new_template(api)["id"]}), 404)
    assert documents_of(app, company) == []


def test_a_broken_template_fails_naming_its_line_and_is_made_after_a_fix(app, company, api, run_jobs):
    deal_id = make_deal(app, company)
    made = new_template(api, "<h1>{{ number }}</h1>\n<p>{{ ''.__class__ }}</p>")
    started = generate(api, deal_id, made["id"])
    run_jobs()
    failed = ok(api.get(f"/documents/{started['id']}"))
    assert failed["generation_status"] == "failed" and "line 2" in failed["error"], failed["error"]
    assert failed["number"] is None  # a broken template consumes no number
    error(api.get(f"/documents/{started['id']}/content"), 404)
    error(api.post(f"/documents/{generate(api, deal_id, new_template(api)['id'])['id']}/retry"), 422)  # not failed

    fixed = ok(api.patch(f"/templates/{made['id']}", json={"body_html": "<h1>{{ number }}</h1>\n<p>Fixed</p>"}))
    again = api.post(f"/documents/{started['id']}/retry")
    assert ok(again, 202)["generation_status"] == "generating"
    assert again.headers["Location"] == f"/api/v1/documents/{started['id']}"
    run_jobs()
    ready = ok(api.get(f"/documents/{started['id']}"))
    assert (ready["generation_status"], ready["error"], ready["template_version"]) == ("ready", None, fixed["version"])
    assert ready["number"].startswith(f"CT-{YEAR}-")


def test_a_retry_after_a_late_failure_keeps_the_number(app, company, api, run_jobs):
    """A page that asks for an address fails while rendering, after its number was taken: made again, it keeps it."""
    deal_id = make_deal(app, company)
    made = new_template(api, '<h1>{{ number }}</h1><img src="http://169.254.169.254/logo.png">')
    started = generate(api, deal_id, made["id"])
    run_jobs()
    failed = ok(api.get(f"/documents/{started['id']}"))
    assert failed["generation_status"] == "failed" and "169.254.169.254" in failed["error"]
    assert failed["number"] == f"CT-{YEAR}-0001"

    ok(api.patch(f"/templates/{made['id']}", json={"body_html": "<h1>{{ number }}</h1>"}))
    ok(api.post(f"/documents/{started['id']}/retry"), 202)
    run_jobs()
    ready = ok(api.get(f"/documents/{started['id']}"))
    assert (ready["generation_status"], ready["number"]) == ("ready", f"CT-{YEAR}-0001")
    assert f"CT-{YEAR}-0001" in pdf_text(api.get(f"/documents/{started['id']}/content?stream=1").data)


def test_a_full_storage_refuses_generation_with_the_figures(app, company, api):
    deal_id, made = make_deal(app, company), new_template(api)
    limit = 200 * MB
    with acting_as(app, company):
        ledger.set_used(company.id, limit)
    refused = error(api.post(f"/deals/{deal_id}/generate", json={"template_id": made["id"]}), 413)
    assert (refused["error"], refused["plan"], refused["limit_bytes"]) == ("quota_exceeded", "free", limit)
    error(api.post(f"/templates/{made['id']}/generate", json={"record_ids": [deal_id]}), 413)
    assert documents_of(app, company) == []


def test_a_batch_makes_one_document_per_deal_and_reports_progress(app, company, api, run_jobs):
    deal_ids = [make_deal(app, company, title=f"Deal {n}") for n in range(3)]
    made = new_template(api)
    response = api.post(f"/templates/{made['id']}/generate", json={"record_ids": [*deal_ids, 10 ** 9]})
    started = ok(response, 202)
    batch_url = f"/api/v1/generation/batches/{started['batch_id']}"
    assert response.headers["Location"] == batch_url
    assert sorted(d["record_id"] for d in started["documents"]) == sorted(deal_ids)
    assert all(d["generation_status"] == "generating" for d in started["documents"])
    assert list(started["skipped"]) == [str(10 ** 9)] and started["skipped"][str(10 ** 9)]

    progress = ok(api.get(f"/generation/batches/{started['batch_id']}"))
    assert (progress["total"], progress["generating"], progress["ready"], progress["failed"]) == (3, 3, 0, 0)
    run_jobs()
    done = ok(api.get(f"/generation/batches/{started['batch_id']}"))
    assert (done["batch_id"], done["total"], done["generating"], done["ready"], done["failed"]) == \
           (started["batch_id"], 3, 0, 3, 0)
    assert sorted(d["number"] for d in done["documents"]) == [f"CT-{YEAR}-000{n}" for n in (1, 2, 3)]

    error(api.post(f"/templates/{made['id']}/generate", json={"record_ids": []}), 422)
    error(api.post(f"/templates/{made['id']}/generate", json={"record_ids": "all"}), 422)
    error(api.get("/generation/batches/not-a-batch"), 404)
    error(api.get("/generation/batches/8a3f2a1e-1111-4c4c-9d9d-123456789abc"), 404)


# --- tenant isolation ----------------------------------------------------------------------

def test_a_company_never_reaches_another_companys_templates_records_or_documents(app, make_tenant, run_jobs):
    ours, theirs = make_tenant(name="Ours"), make_tenant(name="Theirs")
    our_api, their_api = owner_api(app, ours), owner_api(app, theirs)
    our_deal = make_deal(app, ours)
    their_deals = [make_deal(app, theirs, title=f"Secret {n}") for n in range(3)]
    for api in (our_api, their_api):
        ok(api.get("/templates"))  # both start with the ready ones
    new_template(their_api)
    their_template = new_template(their_api, "<p>{{ deal.title }} secret</p>")
    their_document = generate(their_api, their_deals[0], their_template["id"])
    their_batch = ok(their_api.post(f"/templates/{their_template['id']}/generate",
                                    json={"record_ids": their_deals[1:]}), 202)
    run_jobs()
    our_template = new_template(our_api)
    # Ids are per company: only those the other company lacks can show a leak.
    assert their_template["id"] not in [t["id"] for t in ok(our_api.get("/templates"))]
    foreign_deals = [deal_id for deal_id in their_deals if deal_id != our_deal]

    template = f"/templates/{their_template['id']}"
    error(our_api.get(template), 404)
    error(our_api.get(f"{template}/versions"), 404)
    error(our_api.patch(template, json={"name": "Taken"}), 404)
    error(our_api.delete(template), 404)
    error(our_api.post(f"{template}/preview", json={"record_id": our_deal}), 404)
    error(our_api.post(f"{template}/generate", json={"record_ids": [our_deal]}), 404)
    error(our_api.post(f"/deals/{our_deal}/generate", json={"template_id": their_template["id"]}), 404)
    error(our_api.post(f"/deals/{foreign_deals[-1]}/generate", json={"template_id": our_template["id"]}), 404)
    error(our_api.post(f"/templates/{our_template['id']}/preview", json={"record_id": foreign_deals[-1]}), 404)
    skipped = ok(our_api.post(f"/templates/{our_template['id']}/generate", json={"record_ids": foreign_deals}), 202)
    assert skipped["documents"] == [] and set(skipped["skipped"]) == {str(deal_id) for deal_id in foreign_deals}
    error(our_api.get(f"/generation/batches/{their_batch['batch_id']}"), 404)
    error(our_api.get(f"/documents/{their_document['id']}"), 404)
    error(our_api.post(f"/documents/{their_document['id']}/retry"), 404)
    error(our_api.get(f"/documents/{their_document['id']}/content?format=html"), 404)
    # Their token is not ours, on our host.
    error(client_for(app, ours).get("/api/v1/templates", headers=their_api.headers), 401)

    theirs_now = ok(their_api.get(template))
    assert (theirs_now["name"], theirs_now["version"]) == ("Supply contract", 1)
    assert len(documents_of(app, theirs)) == 3 and documents_of(app, ours) == []


# --- the OpenAPI description ---------------------------------------------------------------

GENERATION_OPERATIONS = [
    ("/api/v1/templates", "get"), ("/api/v1/templates", "post"), ("/api/v1/templates/{template_id}", "get"),
    ("/api/v1/templates/{template_id}", "patch"), ("/api/v1/templates/{template_id}", "delete"),
    ("/api/v1/templates/{template_id}/versions", "get"), ("/api/v1/templates/{template_id}/preview", "post"),
    ("/api/v1/templates/{template_id}/generate", "post"), ("/api/v1/generation/batches/{batch_id}", "get"),
    ("/api/v1/documents/{document_id}/retry", "post"),
    *((f"/api/v1/{plural}/{{record_id}}/generate", "post") for plural in ("deals", "companies", "contacts")),
]


def test_openapi_document_describes_templates_and_generation(app, company):
    from openapi_spec_validator import validate

    document = ok(client_for(app, company).get("/api/v1/openapi.json"))
    validate(document)
    paths = document["paths"]
    for path, method in GENERATION_OPERATIONS:
        assert method in paths.get(path, {}), (path, method)
        assert paths[path][method]["security"] == [{"bearer": []}]
    assert "text/html" in paths["/api/v1/templates/{template_id}/preview"]["post"]["responses"]["200"]["content"]
    assert {"202", "413"} <= set(paths["/api/v1/deals/{record_id}/generate"]["post"]["responses"])
    schemas = document["components"]["schemas"]
    assert {"generation_status", "error", "template_id", "template_version"} <= set(schemas["DocumentOut"]["properties"])
    assert {"error", "message", "fields", "part", "line"} <= set(schemas["TemplateErrorOut"]["properties"])
    assert set(schemas["TemplateIn"]["required"]) == {"name", "document_type", "applies_to", "body_html"}
    assert "required" not in schemas["TemplateChangeIn"]
