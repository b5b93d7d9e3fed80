"""The documents REST API (/api/v1): uploads (multipart and raw bodies) to cards, the document
card, versions, bytes through presigned URLs and streamed, quota and duplicate refusals,
hostile filenames, spoofed content types, access rules, tenant isolation and the OpenAPI
description.

Every call goes through the Flask test client to a company's real host with a real API token;
blobs land in the real SeaweedFS S3 server and presigned URLs are fetched from it.
"""
import io
from urllib.parse import parse_qs, quote, urlparse
from urllib.request import urlopen

import pytest
from sqlalchemy import select

from billing.plans import MB
from saas.blobs import blob_store
from saas.documents.models import Version
from saas.documents.services import safe_filename
from storage import ledger
from tenants.db import db
from tenants.registry import lookup_tenant

from .conftest import SERVER_NAME, api_token, client_for
from .crm_helpers import acting_as, set_rule
from .test_crm_api import Api, created, error, ok, owner_api, person_api

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
DRAWING = b"AC1032" + b"\x00" * 200  # a DWG file's first bytes


@pytest.fixture
def company(make_tenant):
    return make_tenant(name="Acme")


@pytest.fixture
def api(app, company):
    return owner_api(app, company)


@pytest.fixture
def deal(api):
    return created(api, "deals", title="Supply")


def multipart(api: Api, path: str, content: bytes, filename: str = "contract.pdf",
              content_type: str = "application/pdf", **fields):
    return api.post(path, data={"file": (io.BytesIO(content), filename, content_type), **fields},
                    content_type="multipart/form-data")


def raw(api: Api, path: str, content: bytes, filename: str = "contract.pdf", **query):
    params = "&".join(f"{name}={quote(str(value))}" for name, value in {"filename": filename, **query}.items())
    return api.post(f"{path}?{params}", data=content, content_type="application/octet-stream")


def fetch(url: str) -> tuple[bytes, dict]:
    with urlopen(url, timeout=10) as response:
        return response.read(), dict(response.headers)


def presigned(api: Api, document_id: int, query: str = "") -> str:
    response = api.get(f"/documents/{document_id}/content{query}")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    url = response.headers["Location"]
    assert 0 < int(parse_qs(urlparse(url).query)["X-Amz-Expires"][0]) <= 300  # minutes, not days
    return url


def blob_keys(app, company) -> list[str]:
    with acting_as(app, company):
        return list(db.session.scalars(select(Version.blob_key).order_by(Version.id)))


def stored(app, company) -> list[str]:
    """Every blob under the company's prefix in the bucket."""
    with app.app_context():
        return [key for key, _size in blob_store().keys(lookup_tenant(tenant_id=company.id).blob_prefix)]


# --- round trips ---------------------------------------------------------------------------

def test_multipart_upload_with_its_card_then_read_list_and_download(app, company, api, deal):
    body = ok(multipart(api, f"/deals/{deal['id']}/documents", PDF, "Договор №7.pdf", title="Supply contract",
                        number="7/2024", signed_on="2024-03-01", counterparty="Romashka LLC", our_entity="Acme Ltd",
                        status="signed", notes="Original in the safe"), 201)
    assert {"id", "title", "type", "type_id", "number", "filename", "content_type", "size", "sha256", "version",
            "status", "created_at", "entity", "record_id", "signed_on", "counterparty", "our_entity",
            "responsible_id", "parent_id", "notes", "versions"} <= set(body)
    assert (body["entity"], body["record_id"], body["title"], body["number"]) == \
           ("deal", deal["id"], "Supply contract", "7/2024")
    assert (body["filename"], body["content_type"], body["size"], body["version"], body["versions"]) == \
           ("Договор №7.pdf", "application/pdf", len(PDF), 1, 1)
    assert (body["signed_on"], body["status"], body["counterparty"], body["our_entity"]) == \
           ("2024-03-01", "signed", "Romashka LLC", "Acme Ltd")
    assert body["type"] == "Other" and isinstance(body["type_id"], int)
    assert len(body["sha256"]) == 64 and body["responsible_id"] == company.owner_id

    assert ok(api.get(f"/documents/{body['id']}")) == body
    assert [d["id"] for d in ok(api.get(f"/deals/{deal['id']}/documents"))] == [body["id"]]

    content, headers = fetch(presigned(api, body["id"]))
    assert content == PDF and headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment;") and "%D0%94%D0%BE%D0%B3" in \
           headers["Content-Disposition"]
    content, headers = fetch(presigned(api, body["id"], "?inline=1"))
    assert content == PDF and headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"].startswith("inline;")

    streamed = api.get(f"/documents/{body['id']}/content?stream=1&inline=1")
    assert streamed.status_code == 200 and streamed.data == PDF
    assert streamed.headers["Content-Type"] == "application/pdf" and streamed.headers["Content-Length"] == str(len(PDF))
    assert streamed.headers["X-Content-Type-Options"] == "nosniff"
    assert streamed.headers["Content-Disposition"].startswith('inline; filename="')


def test_documents_on_every_kind_of_card(app, api, deal):
    company_id = created(api, "companies", name="Romashka")["id"]
    contact_id = created(api, "contacts", first_name="Hank", company_ids=[company_id])["id"]
    at_company = created(api, "deals", title="Their deal", company_id=company_id)
    on_company = ok(raw(api, f"/companies/{company_id}/documents", b"company charter\n", "charter.txt"), 201)
    scan = PNG + bytes(range(256)) * 2400  # past werkzeug's 500 KB: spooled to a temporary file
    on_contact = ok(multipart(api, f"/contacts/{contact_id}/documents", scan, "passport.png", "image/png"), 201)
    on_their_deal = ok(raw(api, f"/deals/{at_company['id']}/documents", DRAWING, "plan.dwg"), 201)
    ok(raw(api, f"/deals/{deal['id']}/documents", PDF), 201)  # another deal's: not the company's

    assert (on_company["entity"], on_contact["entity"]) == ("company", "contact")
    assert (on_contact["content_type"], on_contact["size"]) == ("image/png", len(scan))
    assert fetch(presigned(api, on_contact["id"]))[0] == scan and on_company["content_type"] == "text/plain"
    assert on_their_deal["type"] == "Drawing"
    assert [d["id"] for d in ok(api.get(f"/companies/{company_id}/documents"))] == \
           [on_their_deal["id"], on_company["id"]]  # a company shows its deals' documents too
    assert [d["id"] for d in ok(api.get(f"/contacts/{contact_id}/documents"))] == [on_contact["id"]]
    error(api.get("/deals/999999/documents"), 404)
    error(raw(api, "/deals/999999/documents", PDF), 404)


def test_raw_upload_with_card_fields_in_the_query_and_versions(app, company, api, deal):
    response = raw(api, f"/deals/{deal['id']}/documents", PDF, "contract.pdf", title="Contract", number="1")
    contract = ok(response, 201)
    assert response.headers["Location"] == f"/api/v1/documents/{contract['id']}"
    assert (contract["title"], contract["number"], contract["filename"]) == ("Contract", "1", "contract.pdf")
    # curl --data-binary says application/x-www-form-urlencoded: the body is still the file, as sent
    form_like = b"a=b&c=\xff\x00"
    curled = ok(api.post(f"/deals/{deal['id']}/documents?filename=a%3Db.bin", data=form_like,
                         content_type="application/x-www-form-urlencoded"), 201)
    assert (curled["filename"], curled["size"]) == ("a=b.bin", len(form_like))
    assert api.get(f"/documents/{curled['id']}/content?stream=1").data == form_like

    second = ok(raw(api, f"/documents/{contract['id']}/versions", PNG, "contract-scan.png"), 201)
    assert {"number", "filename", "content_type", "size", "sha256", "created_by", "created_at"} <= set(second)
    assert (second["number"], second["filename"], second["content_type"], second["created_by"]) == \
           (2, "contract-scan.png", "image/png", company.owner_id)
    third = ok(multipart(api, f"/documents/{contract['id']}/versions", b"signed at last\n", "contract.txt"), 201)
    assert third["number"] == 3 and third["content_type"] == "text/plain"

    body = ok(api.get(f"/documents/{contract['id']}"))
    assert (body["version"], body["versions"], body["filename"], body["sha256"]) == \
           (3, 3, "contract.txt", third["sha256"])
    assert [v["number"] for v in ok(api.get(f"/documents/{contract['id']}/versions"))] == [1, 2, 3]
    assert fetch(presigned(api, contract["id"], "?version=1"))[0] == PDF  # the old ones stay downloadable
    assert api.get(f"/documents/{contract['id']}/content?version=2&stream=1").data == PNG
    error(api.get(f"/documents/{contract['id']}/content?version=9"), 404)
    error(api.get(f"/documents/{contract['id']}/content?version=first"), 422)

    assert api.delete(f"/documents/{contract['id']}/versions/2").status_code == 204
    assert [v["number"] for v in ok(api.get(f"/documents/{contract['id']}/versions"))] == [1, 3]
    error(api.get(f"/documents/{contract['id']}/content?version=2"), 404)
    assert ok(api.get(f"/documents/{contract['id']}"))["versions"] == 2
    with app.app_context():
        # the deleted version 2 still counts: it is in the recycle bin
        assert ledger.usage(company.id) == (len(PDF) + len(PNG) + len(b"signed at last\n") + len(form_like), 0)


def test_patch_the_card_then_delete(app, api, deal):
    contract = ok(raw(api, f"/deals/{deal['id']}/documents", PDF), 201)
    annex = ok(raw(api, f"/deals/{deal['id']}/documents", PNG, "annex.png"), 201)
    other_deal = created(api, "deals", title="Other")
    elsewhere = ok(raw(api, f"/deals/{other_deal['id']}/documents", b"elsewhere\n", "x.txt"), 201)

    changed = ok(api.patch(f"/documents/{annex['id']}", json={
        "title": "Annex 1", "parent_id": contract["id"], "number": "1-A", "signed_on": "2024-04-02",
        "status": "draft", "type_id": contract["type_id"], "id": 12345, "size": 1}))
    assert (changed["id"], changed["title"], changed["parent_id"], changed["number"], changed["signed_on"],
            changed["status"], changed["size"]) == (annex["id"], "Annex 1", contract["id"], "1-A", "2024-04-02",
                                                    "draft", len(PNG))
    fields = error(api.patch(f"/documents/{annex['id']}", json={
        "title": "", "status": "lost", "signed_on": "soon", "notes": "a\x00b"}), 422)["fields"]
    assert set(fields) == {"title", "status", "signed_on", "notes"}
    assert set(error(api.patch(f"/documents/{annex['id']}", json={"parent_id": elsewhere["id"]}), 422)["fields"]) \
           == {"parent_id"}  # an annex belongs to a document of its own card
    assert set(error(api.patch(f"/documents/{annex['id']}", json={"type_id": 999999}), 422)["fields"]) == {"type_id"}
    error(api.patch(f"/documents/{annex['id']}", data="title=x"), 400)
    assert ok(api.get(f"/documents/{annex['id']}"))["title"] == "Annex 1"

    assert api.delete(f"/documents/{annex['id']}").status_code == 204
    for response in (api.get(f"/documents/{annex['id']}"), api.get(f"/documents/{annex['id']}/content"),
                     api.get(f"/documents/{annex['id']}/versions"), api.delete(f"/documents/{annex['id']}"),
                     api.patch(f"/documents/{annex['id']}", json={"title": "Back"}),
                     raw(api, f"/documents/{annex['id']}/versions", b"new\n")):
        error(response, 404)
    assert [d["id"] for d in ok(api.get(f"/deals/{deal['id']}/documents"))] == [contract["id"]]
    error(api.delete(f"/documents/{contract['id']}/versions/1"), 409)  # its only version


# --- what the bytes and names say ----------------------------------------------------------

def test_the_content_type_comes_from_the_bytes(api, deal):
    spoofed = ok(multipart(api, f"/deals/{deal['id']}/documents", PNG, "x.pdf", "application/pdf"), 201)
    assert (spoofed["filename"], spoofed["content_type"]) == ("x.pdf", "image/png")
    page = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
    html = ok(raw(api, f"/deals/{deal['id']}/documents", page, "invoice.pdf"), 201)
    assert html["content_type"] != "application/pdf"

    streamed = api.get(f"/documents/{html['id']}/content?stream=1&inline=1")  # never inline: not a PDF or image
    assert streamed.data == page and streamed.headers["Content-Type"] == "application/octet-stream"
    assert streamed.headers["Content-Disposition"].startswith("attachment;")
    assert streamed.headers["X-Content-Type-Options"] == "nosniff"
    content, headers = fetch(presigned(api, html["id"], "?inline=1"))
    assert content == page and headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment;")


HOSTILE = ["../../x", "..\\..\\windows\\system32\\evil.dll", "C:\\Users\\me\\Desktop\\Договор.pdf",
           "nul\x00byte.pdf", "a" * 1000 + ".pdf", "invoice\u202efdp.exe", "/etc/passwd", "..", "",
           'quote" ; name.pdf']


@pytest.mark.parametrize("send", [raw, multipart], ids=["raw", "multipart"])
def test_hostile_filenames_are_for_display_only(app, company, api, deal, send):
    sent = []
    for n, name in enumerate(HOSTILE):
        content = PDF + str(n).encode()
        if send is multipart and ("\x00" in name or '"' in name):
            continue  # the test client cannot put these in a multipart header (a browser sends %22); a query can
        body = ok(send(api, f"/deals/{deal['id']}/documents", content, name), 201)
        assert body["filename"] == body["title"], name
        # A multipart header unescapes "\\" (RFC 7578), so a raw Windows path arrives as "C:UsersmeDesktop…"
        assert body["filename"].endswith(safe_filename(name)) if "\\" in name and send is multipart else \
            body["filename"] == safe_filename(name), (name, body["filename"])
        assert "/" not in body["filename"] and "\\" not in body["filename"] and "\x00" not in body["filename"]
        assert "\u202e" not in body["filename"] and len(body["filename"]) <= 200 and body["filename"]
        streamed = api.get(f"/documents/{body['id']}/content?stream=1")
        assert streamed.data == content
        assert "\n" not in streamed.headers["Content-Disposition"]
        assert fetch(presigned(api, body["id"]))[0] == content
        sent.append(name)

    with app.app_context():
        prefix = lookup_tenant(tenant_id=company.id).blob_prefix
    keys = blob_keys(app, company)
    assert len(keys) == len(sent) and sorted(keys) == sorted(stored(app, company))
    for key in keys:  # t/<tenant-uuid>/<blob-uuid>: ours, whatever the name was
        assert key.startswith(prefix) and len(key) == len(prefix) + 36
        assert ".." not in key and "\\" not in key and key.count("/") == 2


# --- refusals ------------------------------------------------------------------------------

def test_a_free_company_near_its_limit_is_refused_with_the_figures(app, company, api, deal):
    limit = 200 * MB
    with acting_as(app, company):
        ledger.set_used(company.id, limit - 10)
    for send in (raw, multipart):
        response = send(api, f"/deals/{deal['id']}/documents", PDF)
        body = ok(response, 413)
        assert set(body) == {"error", "message", "plan", "limit_bytes", "used_bytes"}
        assert (body["error"], body["plan"], body["limit_bytes"], body["used_bytes"]) == \
               ("quota_exceeded", "free", limit, limit - 10)
        assert "Free" in body["message"]
    first = ok(raw(api, f"/deals/{deal['id']}/documents", b"tiny\n", "tiny.txt"), 201)  # 5 bytes still fit
    assert ok(raw(api, f"/documents/{first['id']}/versions", PDF), 413)["used_bytes"] == limit - 5

    with app.app_context():
        assert ledger.usage(company.id) == (limit - 5, 0)  # refusals hold nothing back
    assert stored(app, company) == blob_keys(app, company)  # …and leave no blob behind
    usage = ok(api.get("/usage"))
    assert (usage["plan"], usage["limit_bytes"], usage["used_bytes"], usage["reserved_bytes"]) == \
           ("free", limit, limit - 5, 0)


def test_the_same_bytes_on_the_same_card_are_a_409(app, company, api, deal):
    first = ok(multipart(api, f"/deals/{deal['id']}/documents", PDF), 201)
    for send in (raw, multipart):
        body = ok(send(api, f"/deals/{deal['id']}/documents", PDF, "copy.pdf"), 409)
        assert (body["error"], body["document_id"]) == ("duplicate", first["id"]) and body["message"]
    other = created(api, "deals", title="Other")
    ok(raw(api, f"/deals/{other['id']}/documents", PDF), 201)  # another card may have it
    with app.app_context():
        assert ledger.usage(company.id) == (2 * len(PDF), 0)
    assert len(stored(app, company)) == 2


def test_odd_uploads_are_clear_refusals(api, deal):
    path = f"/deals/{deal['id']}/documents"
    assert set(error(api.post(path, data={"title": "No file"}, content_type="multipart/form-data"), 422)
               ["fields"]) == {"file"}
    assert set(error(multipart(api, path, PDF, status="lost", type_id="x", signed_on="tomorrow"), 422)
               ["fields"]) == {"status", "type_id", "signed_on"}
    assert set(error(multipart(api, path, PDF, responsible_id="999999"), 422)["fields"]) == {"responsible_id"}
    no_length = api.client.post(f"/api/v1{path}?filename=x.pdf", input_stream=io.BytesIO(PDF),
                                content_type="application/octet-stream",
                                headers={**api.headers, "Transfer-Encoding": "chunked"})  # no Content-Length
    assert set(error(no_length, 422)["fields"]) == {"file"}
    assert ok(api.get(path)) == []


# --- who sees what -------------------------------------------------------------------------

def document_routes(document_id: int) -> list:
    """Every route that reaches a document by its id: (method, path, keyword arguments)."""
    return [("get", f"/documents/{document_id}", {}), ("patch", f"/documents/{document_id}", {"json": {"title": "X"}}),
            ("delete", f"/documents/{document_id}", {}), ("get", f"/documents/{document_id}/content", {}),
            ("get", f"/documents/{document_id}/content?stream=1", {}),
            ("get", f"/documents/{document_id}/content?version=1&inline=1", {}),
            ("get", f"/documents/{document_id}/versions", {}),
            ("post", f"/documents/{document_id}/versions?filename=x.pdf",
             {"data": b"new bytes", "content_type": "application/octet-stream"}),
            ("delete", f"/documents/{document_id}/versions/1", {})]


def card_routes(plural: str, record_id: int) -> list:
    return [("get", f"/{plural}/{record_id}/documents", {}),
            ("post", f"/{plural}/{record_id}/documents?filename=x.pdf",
             {"data": b"new bytes", "content_type": "application/octet-stream"})]


def call(api: Api, route):
    method, path, kwargs = route
    return getattr(api, method)(path, **kwargs)


def test_a_member_who_sees_only_their_own_deals_reaches_none_of_the_others_documents(app, company, api, deal):
    set_rule(app, company, "member", "deal", "own")
    member, member_id = person_api(app, company)
    theirs = ok(raw(api, f"/deals/{deal['id']}/documents", PDF), 201)
    mine = created(member, "deals", title="Member's deal")
    own = ok(raw(member, f"/deals/{mine['id']}/documents", PNG, "mine.png"), 201)

    for route in (*document_routes(theirs["id"]), *card_routes("deals", deal["id"])):
        assert "Location" not in error(call(member, route), 404)
    assert ok(member.get(f"/documents/{own['id']}"))["responsible_id"] == member_id
    assert fetch(presigned(member, own["id"]))[0] == PNG
    error(member.get("/usage"), 403)  # the storage figures are for the owner and administrators
    assert ok(api.get(f"/documents/{theirs['id']}"))["versions"] == 1  # nothing changed
    assert [d["id"] for d in ok(api.get(f"/deals/{mine['id']}/documents"))] == [own["id"]]  # the owner sees all


def test_another_companys_documents_cannot_be_reached(app, make_tenant):
    a, b = make_tenant(name="Acme"), make_tenant(name="Globex")
    token_a = api_token(app, a)
    api_a, api_b = Api(app, a, token_a), owner_api(app, b)
    with app.app_context():
        prefix_a, prefix_b = (lookup_tenant(tenant_id=c.id).blob_prefix for c in (a, b))

    b_deal = created(api_b, "deals", title="Globex deal")
    b_documents = [ok(raw(api_b, f"/deals/{b_deal['id']}/documents", PDF + bytes([n]), f"secret-{n}.pdf"), 201)
                   for n in range(3)]
    a_deal = created(api_a, "deals", title="Acme deal")
    a_document = ok(raw(api_a, f"/deals/{a_deal['id']}/documents", PNG, "acme.png"), 201)
    assert a_document["id"] == b_documents[0]["id"]  # the same id in each company's own schema…
    beyond = [d["id"] for d in b_documents[1:]]  # …and B's that A does not have

    for route in (*document_routes(b_documents[0]["id"]), *card_routes("deals", b_deal["id"]), ("get", "/usage", {})):
        error(call(Api(app, b, token_a), route), 401)  # A's token on B's host
        error(call(Api(app, SERVER_NAME, token_a), route), 401)  # …or on the public site
    for route in (*(r for i in beyond for r in document_routes(i)), *card_routes("deals", b_deal["id"] + 1)):
        assert "Location" not in error(call(api_a, route), 404)

    url = presigned(api_a, a_document["id"])  # the shared id opens A's own blob, never B's
    assert urlparse(url).path.endswith(blob_keys(app, a)[0]) and prefix_a in url and prefix_b not in url
    assert fetch(url)[0] == PNG
    assert api_a.get(f"/documents/{a_document['id']}/content?stream=1").data == PNG
    usage = ok(api_a.get("/usage"))
    assert usage["used_bytes"] == len(PNG) and usage["by_record"] == [
        {"entity": "deal", "record_id": a_deal["id"], "bytes": len(PNG)}]

    assert [d["id"] for d in ok(api_b.get(f"/deals/{b_deal['id']}/documents"))] == \
           [d["id"] for d in reversed(b_documents)]
    assert ok(api_b.get(f"/documents/{beyond[-1]}"))["title"] == "secret-2.pdf"  # untouched by A's attempts
    assert all(key.startswith(prefix_b) for key in blob_keys(app, b)) and len(stored(app, b)) == 3
    assert len(stored(app, a)) == 1


def test_usage_by_type_and_by_card(app, company, api, deal):
    other = created(api, "deals", title="Other")
    ok(raw(api, f"/deals/{deal['id']}/documents", PDF), 201)
    ok(raw(api, f"/deals/{other['id']}/documents", DRAWING, "plan.dwg"), 201)
    usage = ok(api.get("/usage"))
    assert (usage["plan"], usage["used_bytes"], usage["reserved_bytes"]) == ("free", len(PDF) + len(DRAWING), 0)
    assert usage["by_record"] == [{"entity": "deal", "record_id": other["id"], "bytes": len(DRAWING)},
                                  {"entity": "deal", "record_id": deal["id"], "bytes": len(PDF)}]
    assert [(t["type"], t["bytes"]) for t in usage["by_type"]] == [("Drawing", len(DRAWING)), ("Other", len(PDF))]


# --- the description -----------------------------------------------------------------------

DOCUMENT_OPERATIONS = [
    *((f"/api/v1/{plural}/{{record_id}}/documents", method) for plural in ("deals", "companies", "contacts")
      for method in ("get", "post")),
    ("/api/v1/documents/{document_id}", "get"), ("/api/v1/documents/{document_id}", "patch"),
    ("/api/v1/documents/{document_id}", "delete"), ("/api/v1/documents/{document_id}/content", "get"),
    ("/api/v1/documents/{document_id}/versions", "get"), ("/api/v1/documents/{document_id}/versions", "post"),
    ("/api/v1/documents/{document_id}/versions/{number}", "delete"), ("/api/v1/usage", "get"),
]


def test_openapi_document_describes_the_documents_api(app, company):
    from openapi_spec_validator import validate

    document = ok(client_for(app, company).get("/api/v1/openapi.json"))
    validate(document)
    paths = document["paths"]
    for path, method in DOCUMENT_OPERATIONS:
        assert method in paths.get(path, {}), (path, method)
        assert paths[path][method]["security"] == [{"bearer": []}] and paths[path][method]["tags"] == ["Documents"]
    upload = paths["/api/v1/deals/{record_id}/documents"]["post"]
    assert set(upload["requestBody"]["content"]) == {"multipart/form-data", "application/octet-stream"}
    assert {"201", "409", "413", "422"} <= set(upload["responses"])
    schemas = document["components"]["schemas"]
    assert {"id", "title", "type", "number", "filename", "content_type", "size", "sha256", "version", "status",
            "created_at", "entity", "record_id"} <= set(schemas["DocumentOut"]["properties"])
    assert {"error", "plan", "limit_bytes", "used_bytes"} <= set(schemas["QuotaErrorOut"]["properties"])
    assert {"file", "title", "type_id", "parent_id"} <= set(schemas["DocumentUpload"]["properties"])

    html = client_for(app, company).get("/api/v1/docs").get_data(as_text=True)
    assert "/api/v1/deals/{record_id}/documents" in html and "/api/v1/documents/{document_id}/content" in html
    assert 'id="schema-DocumentOut"' in html and "multipart/form-data" in html
