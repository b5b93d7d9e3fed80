"""The CRM REST API (/api/v1): records, conversion, stages, pipelines, custom fields, access rules,
tenant isolation and the OpenAPI description.

Every call goes through the Flask test client to a company's real host with a real API token,
against the real PostgreSQL; settings an API client cannot change are made through the services
(`acting_as`), as the settings pages would.
"""
import pytest

from saas.crm import admin

from .conftest import SERVER_NAME, api_token, client_for
from .crm_helpers import acting_as, add_person, set_rule

PHONE_IN, PHONE_OUT = "8 (912) 345-67-89", "+79123456789"
TIN = "7707083893"


class Api:
    """One person's API client on one company's host: api.get("/deals") → /api/v1/deals with their token."""

    def __init__(self, app, company, token: str):
        self.client, self.headers = client_for(app, company), {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method):
        call = getattr(self.client, method)
        return lambda path, **kwargs: call(f"/api/v1{path}", headers=self.headers, **kwargs)


def owner_api(app, company) -> Api:
    return Api(app, company, api_token(app, company))


def person_api(app, company, role: str = "member") -> tuple[Api, int]:
    person = add_person(app, company, role)
    return Api(app, company, api_token(app, company, email=person.email, password=person.password)), person.user_id


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    return response.get_json()


def error(response, status: int) -> dict:
    body = ok(response, status)
    assert body["error"] and body["message"], body
    return body


def created(api: Api, plural: str, **data) -> dict:
    return ok(api.post(f"/{plural}", json=data), 201)


def listed(api: Api, plural: str, query: str = "") -> list[int]:
    return [item["id"] for item in ok(api.get(f"/{plural}?{query}"))["items"]]


@pytest.fixture
def company(make_tenant):
    return make_tenant(name="Acme")


@pytest.fixture
def api(app, company):
    return owner_api(app, company)


# --- records, field by field ---------------------------------------------------------------

def test_company_round_trip(api):
    body = created(api, "companies", name="Romashka", tin="77 0708 3893", phones=[PHONE_IN, "+7 495 123-45-67"],
                   emails=["Info@Romashka.RU"], address="Moscow, Tverskaya 1", website="romashka.ru", notes="VIP")
    assert {"id", "name", "tin", "phones", "emails", "address", "custom", "website", "responsible_id",
            "activity_type_id", "region_id", "group_id", "category_id", "source_id", "notes", "created_at",
            "updated_at"} <= set(body)
    assert body["tin"] == TIN and body["phones"] == [PHONE_OUT, "+74951234567"]
    assert body["emails"] == ["info@romashka.ru"] and body["website"] == "https://romashka.ru"
    assert body["custom"] == {} and isinstance(body["responsible_id"], int)
    assert ok(api.get(f"/companies/{body['id']}")) == body

    changed = ok(api.patch(f"/companies/{body['id']}", json={"address": "Kazan", "id": 999, "created_at": "x"}))
    assert changed["address"] == "Kazan" and changed["id"] == body["id"]
    assert {k: v for k, v in changed.items() if k not in ("address", "updated_at")} == \
           {k: v for k, v in body.items() if k not in ("address", "updated_at")}  # the rest is kept

    page = ok(api.get("/companies"))
    assert set(page) >= {"items", "total", "total_capped", "page", "per_page"}
    assert [c["id"] for c in page["items"]] == [body["id"]] and page["total"] == 1 and not page["total_capped"]
    assert listed(api, "companies", "q=romash") == [body["id"]] and listed(api, "companies", "q=globex") == []

    assert api.delete(f"/companies/{body['id']}").status_code == 204
    error(api.get(f"/companies/{body['id']}"), 404)
    error(api.patch(f"/companies/{body['id']}", json={"name": "Back"}), 404)
    assert ok(api.get("/companies"))["total"] == 0


def test_contact_round_trip_with_companies(api):
    first, second = created(api, "companies", name="Alpha"), created(api, "companies", name="Beta")
    body = created(api, "contacts", first_name="Ivan", last_name="Petrov", position="CEO", phones=PHONE_IN,
                   emails="ivan@alpha.ru; ivan@beta.ru", birthday="24.11.1980", company_ids=[second["id"], first["id"]])
    assert {"id", "first_name", "last_name", "phones", "emails", "company_ids", "custom", "position", "birthday",
            "responsible_id"} <= set(body)
    assert body["phones"] == [PHONE_OUT] and body["emails"] == ["ivan@alpha.ru", "ivan@beta.ru"]
    assert body["birthday"] == "1980-11-24" and body["company_ids"] == sorted([first["id"], second["id"]])

    changed = ok(api.patch(f"/contacts/{body['id']}", json={"company_ids": [first["id"]], "phones": []}))
    assert changed["company_ids"] == [first["id"]] and changed["phones"] == [] and changed["last_name"] == "Petrov"
    assert listed(api, "contacts", f"company_id={first['id']}") == [body["id"]]
    assert listed(api, "contacts", f"company_id={second['id']}") == []
    assert api.delete(f"/contacts/{body['id']}").status_code == 204
    error(api.get(f"/contacts/{body['id']}"), 404)


def test_deal_amount_is_a_decimal_string_and_line_items_make_it(api):
    client_company = created(api, "companies", name="Buyer")
    contact = created(api, "contacts", first_name="Anna")
    plain = created(api, "deals", title="Consulting", amount=1500, currency="usd", close_date="2026-03-31")
    assert plain["amount"] == "1500.00" and plain["currency"] == "USD" and plain["close_date"] == "2026-03-31"
    assert plain["line_items"] == [] and plain["company_id"] is None and plain["contact_ids"] == []
    pipelines = ok(api.get("/pipelines"))
    assert plain["pipeline_id"] == pipelines[0]["id"] and plain["stage_id"] == pipelines[0]["stages"][0]["id"]

    deal = created(api, "deals", title="Drills", company_id=client_company["id"], contact_ids=[contact["id"]],
                   line_items=[{"name": "Drill", "quantity": 2, "unit": "pcs", "price": "1000", "discount": 10,
                                "vat_rate": 20},
                               {"name": "Delivery", "price": "99.99"}])
    assert {"id", "title", "amount", "currency", "pipeline_id", "stage_id", "company_id", "contact_ids",
            "line_items", "custom", "close_date", "responsible_id"} <= set(deal)
    drill, delivery = deal["line_items"]
    assert drill == {"name": "Drill", "quantity": "2.000", "unit": "pcs", "price": "1000.00", "discount": "10.00",
                     "vat_rate": "20.00", "net": "1800.00", "vat": "360.00", "total": "2160.00"}
    assert delivery["net"] == delivery["total"] == "99.99" and delivery["vat"] == "0.00"
    assert deal["amount"] == "2259.99" and deal["totals"] == {"net": "1899.99", "vat": "360.00", "total": "2259.99"}
    assert deal["company_id"] == client_company["id"] and deal["contact_ids"] == [contact["id"]]

    changed = ok(api.patch(f"/deals/{deal['id']}", json={"line_items": [{"name": "Drill", "quantity": 1,
                                                                            "price": "500.50"}]}))
    assert changed["amount"] == "500.50" and len(changed["line_items"]) == 1
    assert listed(api, "deals", f"company_id={client_company['id']}") == [deal["id"]]
    assert listed(api, "deals", "sort=amount&per_page=1") == [changed["id"]]
    assert listed(api, "deals", "sort=amount&per_page=1&page=2") == [plain["id"]]


def test_lead_round_trip(api):
    lead = created(api, "leads", title="Website request", contact_name="Oleg Sidorov", company_name="Vector LLC",
                   email="Oleg@Vector.ru", phone=PHONE_IN, source="website", amount="250000")
    assert {"id", "title", "contact_name", "company_name", "email", "phone", "status", "custom", "converted",
            "stage_id", "amount"} <= set(lead)
    assert lead["phone"] == PHONE_OUT and lead["email"] == "oleg@vector.ru" and lead["amount"] == "250000.00"
    assert lead["status"] == "open" and lead["converted"] is None
    lead_bar = ok(api.get("/pipelines?entity=lead"))[0]
    assert lead_bar["entity"] == "lead" and lead["stage_id"] == lead_bar["stages"][0]["id"]
    assert ok(api.patch(f"/leads/{lead['id']}", json={"title": "Website: drills"}))["title"] == "Website: drills"
    assert listed(api, "leads", "status=open") == [lead["id"]] and listed(api, "leads", "status=junk") == []
    assert api.delete(f"/leads/{lead['id']}").status_code == 204
    assert listed(api, "leads") == []


# --- validation ----------------------------------------------------------------------------

def test_validation_errors_are_422_naming_every_failing_field(api):
    missing_title = error(api.post("/deals", json={"amount": "10"}), 422)
    assert set(missing_title["fields"]) == {"title"}

    bad_phone = error(api.post("/contacts", json={"first_name": "Ivan", "phones": ["12", PHONE_IN]}), 422)
    assert set(bad_phone["fields"]) == {"phones"} and "12" in bad_phone["fields"]["phones"][0]

    unknown_key = error(api.post("/companies", json={"name": "X", "custom": {"nope": 1}}), 422)
    assert set(unknown_key["fields"]) == {"custom.nope"}

    everything = error(api.post("/leads", json={"phone": "12", "email": "not mail", "amount": "lots",
                                                "custom": {"nope": "x"}}), 422)
    assert set(everything["fields"]) == {"title", "phone", "email", "amount", "custom.nope"}
    assert error(api.post("/deals", json={"title": "X", "line_items": [{"price": "-1"}]}), 422)["fields"].keys() \
        == {"line_items.0"}
    assert set(error(api.post("/deals", json={"title": "X", "custom": "not an object"}), 422)["fields"]) == {"custom"}
    assert listed(api, "deals") == [] and listed(api, "leads") == [] and listed(api, "contacts") == []

    deal = created(api, "deals", title="Kept")
    assert set(error(api.patch(f"/deals/{deal['id']}", json={"title": "", "amount": "x"}), 422)["fields"]) == \
           {"title", "amount"}
    assert ok(api.get(f"/deals/{deal['id']}"))["title"] == "Kept"

    assert set(error(api.get("/deals?custom.nope=1"), 422)["fields"]) == {"custom.nope"}
    assert set(error(api.get("/deals?sort=password"), 422)["fields"]) == {"sort"}
    assert set(error(api.get("/deals?page=0&per_page=x"), 422)["fields"]) == {"page", "per_page"}
    assert set(error(api.get("/deals?created_from=yesterday"), 422)["fields"]) == {"created_from"}
    error(api.post("/deals", data="title=x"), 400)
    error(api.post("/deals", json=["a list"]), 400)


# --- custom fields -------------------------------------------------------------------------

def test_custom_fields_defined_set_and_filtered_through_the_api(app, company, api):
    payment = created(api, "fields", entity="deal", label="Payment type", type="list", items=["Cash", "Card"])
    assert payment["key"] == "payment_type" and payment["required"] is False
    cash, card = ((item["id"], item["label"]) for item in payment["items"])
    area = created(api, "fields", entity="deal", label="Area", type="number", key="area_m2")
    signed = created(api, "fields", entity="deal", label="Signed on", type="date")
    assert [f["key"] for f in ok(api.get("/fields?entity=deal"))] == ["payment_type", "area_m2", "signed_on"]
    assert ok(api.get("/fields?entity=lead")) == [] and len(ok(api.get("/fields"))) == 3
    assert ok(api.get(f"/fields/{area['id']}"))["type"] == "number"

    by_card = created(api, "deals", title="By card", custom={"payment_type": "card", "area_m2": "120,5",
                                                             "signed_on": "01.02.2026"})
    by_cash = created(api, "deals", title="In cash", custom={"payment_type": cash[0], "area_m2": 40})
    assert by_card["custom"] == {"payment_type": card[0], "area_m2": 120.5, "signed_on": "2026-02-01"}
    assert by_cash["custom"] == {"payment_type": cash[0], "area_m2": 40}

    assert listed(api, "deals", "custom.payment_type=Card") == [by_card["id"]]
    assert listed(api, "deals", f"custom.payment_type={cash[0]}") == [by_cash["id"]]
    assert listed(api, "deals", "custom.area_m2.from=100") == [by_card["id"]]
    assert listed(api, "deals", "custom.signed_on.to=2026-12-31") == [by_card["id"]]
    assert set(error(api.post("/deals", json={"title": "X", "custom": {"payment_type": "Barter"}}), 422)["fields"]) \
        == {"custom.payment_type"}

    changed = ok(api.patch(f"/fields/{payment['id']}", json={"label": "Payment", "required": True,
                                                             "items": ["Cash", "Card", "Invoice"]}))
    assert changed["label"] == "Payment" and changed["key"] == "payment_type" and changed["required"] is True
    assert [i["label"] for i in changed["items"]] == ["Cash", "Card", "Invoice"]
    assert changed["items"][1]["id"] == card[0]  # item ids stay: stored values point at them
    assert set(error(api.post("/deals", json={"title": "No payment"}), 422)["fields"]) == {"custom.payment_type"}
    cleared = ok(api.patch(f"/deals/{by_cash['id']}", json={"custom": {"area_m2": None}}))
    assert cleared["custom"] == {"payment_type": cash[0]}

    assert api.delete(f"/fields/{payment['id']}").status_code == 204
    assert "payment_type" not in ok(api.get(f"/deals/{by_card['id']}"))["custom"]
    error(api.get(f"/fields/{payment['id']}"), 404)
    error(api.get("/fields?entity=invoice"), 422)
    assert set(error(api.post("/fields", json={"entity": "deal", "label": "Area", "type": "number",
                                               "key": "area_m2"}), 409)["fields"]) == {"key"}

    member, _ = person_api(app, company)
    error(member.post("/fields", json={"entity": "deal", "label": "Mine", "type": "text"}), 403)
    error(member.patch(f"/fields/{area['id']}", json={"label": "Mine"}), 403)
    error(member.delete(f"/fields/{area['id']}"), 403)
    assert [f["key"] for f in ok(member.get("/fields?entity=deal"))] == ["area_m2", "signed_on"]


# --- conversion ----------------------------------------------------------------------------

def make_lead(api: Api, **overrides) -> dict:
    return created(api, "leads", **{"title": "Drills for Vector", "contact_name": "Oleg Sidorov",
                                    "company_name": "Vector LLC", "email": "oleg@vector.ru", "phone": PHONE_IN,
                                    "amount": "5000", **overrides})


def test_conversion_asks_for_the_missing_tin_and_creates_nothing_until_given(app, company, api):
    with acting_as(app, company) as owner:
        admin.set_required_fields(owner, "company", ["tin"])
    lead = make_lead(api)
    second = created(api, "pipelines", name="Wholesale")
    body = {"create": ["contact", "company", "deal"], "pipeline_id": second["id"]}

    refused = error(api.post(f"/leads/{lead['id']}/convert", json=body), 422)
    assert refused["fields"] == {"company": {"tin": refused["fields"]["company"]["tin"]}}
    assert refused["fields"]["company"]["tin"]
    assert listed(api, "contacts") == listed(api, "companies") == listed(api, "deals") == []
    assert ok(api.get(f"/leads/{lead['id']}"))["status"] == "open"

    bad = error(api.post(f"/leads/{lead['id']}/convert", json={**body, "values": {"company": {"tin": "123"}}}), 422)
    assert set(bad["fields"]) == {"company"} and set(bad["fields"]["company"]) == {"tin"}

    ids = ok(api.post(f"/leads/{lead['id']}/convert", json={**body, "values": {"company": {"tin": TIN}}}), 201)
    assert set(ids) == {"contact_id", "company_id", "deal_id"} and all(ids.values())
    converted = ok(api.get(f"/leads/{lead['id']}"))
    assert converted["status"] == "qualified" and converted["converted"] == ids
    company_ = ok(api.get(f"/companies/{ids['company_id']}"))
    assert company_["name"] == "Vector LLC" and company_["tin"] == TIN and company_["phones"] == [PHONE_OUT]
    contact = ok(api.get(f"/contacts/{ids['contact_id']}"))
    assert (contact["first_name"], contact["last_name"]) == ("Oleg", "Sidorov")
    assert contact["company_ids"] == [ids["company_id"]]
    deal = ok(api.get(f"/deals/{ids['deal_id']}"))
    assert deal["pipeline_id"] == second["id"] and deal["stage_id"] == second["stages"][0]["id"]
    assert deal["company_id"] == ids["company_id"] and deal["contact_ids"] == [ids["contact_id"]]
    assert deal["amount"] == "5000.00" and deal["lead_id"] == lead["id"]

    error(api.post(f"/leads/{lead['id']}/convert", json=body), 409)
    error(api.patch(f"/leads/{lead['id']}", json={"title": "Again"}), 409)


def test_conversion_links_an_existing_contact_and_names_bad_choices(api):
    contact = created(api, "contacts", first_name="Oleg", emails=["oleg@vector.ru"])
    lead = make_lead(api)
    assert set(error(api.post(f"/leads/{lead['id']}/convert", json={}), 422)["fields"]) == {"create"}
    assert set(error(api.post(f"/leads/{lead['id']}/convert", json={"create": ["invoice"]}), 422)["fields"]) == \
           {"create"}
    missing = error(api.post(f"/leads/{lead['id']}/convert", json={"create": ["deal"],
                                                                    "existing": {"contact": 999999}}), 422)
    assert set(missing["fields"]) == {"contact"}

    ids = ok(api.post(f"/leads/{lead['id']}/convert", json={"create": ["deal"],
                                                             "existing": {"contact": contact["id"]}}), 201)
    assert ids == {"contact_id": contact["id"], "company_id": None, "deal_id": ids["deal_id"]}
    assert ok(api.get(f"/deals/{ids['deal_id']}"))["contact_ids"] == [contact["id"]]
    assert listed(api, "contacts") == [contact["id"]]


# --- stages and pipelines ------------------------------------------------------------------

def test_moving_deals_and_leads_along_their_stages(api):
    sales = ok(api.get("/pipelines"))[0]
    other = created(api, "pipelines", name="Service")
    deal = created(api, "deals", title="Move me")

    moved = ok(api.post(f"/deals/{deal['id']}/move", json={"stage_id": sales["stages"][2]["id"]}))
    assert moved["stage_id"] == sales["stages"][2]["id"] and moved["pipeline_id"] == sales["id"]
    across = ok(api.post(f"/deals/{deal['id']}/move", json={"stage_id": other["stages"][1]["id"]}))
    assert across["pipeline_id"] == other["id"] and across["stage_id"] == other["stages"][1]["id"]
    assert listed(api, "deals", f"stage_id={other['stages'][1]['id']}") == [deal["id"]]
    assert listed(api, "deals", f"pipeline_id={sales['id']}") == []

    lead_bar = ok(api.get("/pipelines?entity=lead"))[0]
    assert set(error(api.post(f"/deals/{deal['id']}/move", json={"stage_id": lead_bar["stages"][0]["id"]}), 422)
               ["fields"]) == {"stage_id"}
    assert set(error(api.post(f"/deals/{deal['id']}/move", json={"stage_id": 999999}), 422)["fields"]) == {"stage_id"}
    assert set(error(api.post(f"/deals/{deal['id']}/move", json={}), 422)["fields"]) == {"stage_id"}
    assert ok(api.get(f"/deals/{deal['id']}"))["stage_id"] == other["stages"][1]["id"]

    lead = make_lead(api)
    kinds = {stage["kind"]: stage["id"] for stage in reversed(lead_bar["stages"])}
    assert ok(api.post(f"/leads/{lead['id']}/move", json={"stage_id": lead_bar["stages"][1]["id"]}))["stage_id"] == \
           lead_bar["stages"][1]["id"]
    error(api.post(f"/leads/{lead['id']}/move", json={"stage_id": kinds["won"]}), 422)
    assert set(error(api.post(f"/leads/{lead['id']}/move", json={"stage_id": kinds["lost"]}), 422)["fields"]) == \
           {"junk_reason"}
    junk = ok(api.post(f"/leads/{lead['id']}/move", json={"stage_id": kinds["lost"], "junk_reason": "Spam"}))
    assert junk["status"] == "junk" and junk["junk_reason"] == "Spam" and junk["converted"] is None
    error(api.post(f"/leads/{lead['id']}/move", json={"stage_id": kinds["open"]}), 409)


def test_pipelines_and_their_stages_are_edited_through_the_api(app, company, api):
    pipelines = ok(api.get("/pipelines"))
    assert len(pipelines) == 1 and [s["kind"] for s in pipelines[0]["stages"]][-2:] == ["won", "lost"]
    assert set(pipelines[0]["stages"][0]) >= {"id", "name", "kind", "position", "color"}

    wholesale = created(api, "pipelines", name="Wholesale", stages=[
        {"name": "Request", "kind": "open"}, {"name": "Shipped", "kind": "open", "color": "#123456"},
        {"name": "Paid", "kind": "won"}, {"name": "Refused", "kind": "lost"}])
    assert [s["name"] for s in wholesale["stages"]] == ["Request", "Shipped", "Paid", "Refused"]
    assert wholesale["stages"][1]["color"] == "#123456"
    request, shipped, paid, refused = wholesale["stages"]

    edited = ok(api.patch(f"/pipelines/{wholesale['id']}", json={"name": "Wholesale (B2B)", "stages": [
        {"id": shipped["id"], "name": "Sent", "kind": "open"}, {"id": request["id"], "name": "Request", "kind": "open"},
        {"name": "Invoiced", "kind": "open"}, {"id": paid["id"], "name": "Paid", "kind": "won"},
        {"id": refused["id"], "name": "Refused", "kind": "lost"}]}))
    assert edited["name"] == "Wholesale (B2B)"
    assert [(s["name"], s["position"]) for s in edited["stages"]] == [
        ("Sent", 0), ("Request", 1), ("Invoiced", 2), ("Paid", 3), ("Refused", 4)]
    assert edited["stages"][0]["id"] == shipped["id"] and ok(api.get(f"/pipelines/{wholesale['id']}")) == edited

    no_won = error(api.patch(f"/pipelines/{wholesale['id']}", json={"stages": [{"name": "Only", "kind": "open"}]}),
                   422)
    assert set(no_won["fields"]) == {"stages"}
    error(api.post("/pipelines", json={"stages": []}), 422)

    deal = created(api, "deals", title="Holds a stage", pipeline_id=wholesale["id"])
    assert deal["stage_id"] == shipped["id"]
    without_its_stage = edited["stages"][1:]
    error(api.patch(f"/pipelines/{wholesale['id']}", json={"stages": without_its_stage}), 409)
    error(api.delete(f"/pipelines/{wholesale['id']}"), 409)
    assert api.delete(f"/deals/{deal['id']}").status_code == 204
    error(api.delete(f"/pipelines/{wholesale['id']}"), 409)  # in the recycle bin, the deal still holds it

    empty = created(api, "pipelines", name="Empty")
    member, _ = person_api(app, company)
    assert [p["id"] for p in ok(member.get("/pipelines"))] == [pipelines[0]["id"], wholesale["id"], empty["id"]]
    error(member.post("/pipelines", json={"name": "Mine"}), 403)
    error(member.patch(f"/pipelines/{empty['id']}", json={"name": "Mine"}), 403)
    error(member.delete(f"/pipelines/{empty['id']}"), 403)
    assert api.delete(f"/pipelines/{empty['id']}").status_code == 204
    error(api.get(f"/pipelines/{empty['id']}"), 404)
    error(api.get("/pipelines?entity=company"), 422)


# --- access rules --------------------------------------------------------------------------

def test_a_member_with_the_own_rule_sees_and_changes_only_their_records(app, company, api):
    member, member_id = person_api(app, company)
    theirs = created(member, "deals", title="Member's deal")
    mine = created(api, "deals", title="Owner's deal")
    my_lead = make_lead(api)
    assert theirs["responsible_id"] == member_id
    assert sorted(listed(member, "deals")) == sorted([theirs["id"], mine["id"]])  # "all" by default

    for entity in ("deal", "lead", "contact", "company"):
        set_rule(app, company, "member", entity, "own")
    assert listed(member, "deals") == [theirs["id"]]
    assert ok(member.get("/deals"))["total"] == 1
    assert listed(member, "deals", f"responsible_id={company.owner_id}") == []
    assert listed(member, "leads") == []
    error(member.get(f"/deals/{mine['id']}"), 404)
    error(member.patch(f"/deals/{mine['id']}", json={"title": "Taken"}), 404)
    error(member.delete(f"/deals/{mine['id']}"), 404)
    stage = ok(member.get("/pipelines"))[0]["stages"][1]["id"]
    error(member.post(f"/deals/{mine['id']}/move", json={"stage_id": stage}), 404)
    error(member.post(f"/leads/{my_lead['id']}/convert", json={"create": ["contact"]}), 404)
    assert set(error(member.post("/deals", json={"title": "For the boss", "responsible_id": company.owner_id}), 422)
               ["fields"]) == {"responsible_id"}
    assert set(error(member.post("/deals", json={"title": "Linked", "contact_ids": [999999]}), 422)["fields"]) == \
           {"contact_ids"}

    assert ok(member.patch(f"/deals/{theirs['id']}", json={"amount": "10"}))["amount"] == "10.00"
    assert ok(api.get(f"/deals/{mine['id']}"))["title"] == "Owner's deal"
    assert sorted(listed(api, "deals")) == sorted([theirs["id"], mine["id"]])  # the owner sees everything
    assert ok(api.get(f"/leads/{my_lead['id']}"))["status"] == "open"


# --- tenant isolation ----------------------------------------------------------------------

def test_another_companys_records_cannot_be_reached(app, make_tenant):
    a, b = make_tenant(name="Acme"), make_tenant(name="Globex")
    token_a = api_token(app, a)
    api_a, api_b = Api(app, a, token_a), owner_api(app, b)
    error(Api(app, b, token_a).get("/companies"), 401)  # A's token on B's host
    error(Api(app, SERVER_NAME, token_a).get("/companies"), 401)  # …or on the public site

    b_companies = [created(api_b, "companies", name=f"Globex {n}", tin=TIN)["id"] for n in range(3)]
    b_contact = created(api_b, "contacts", first_name="Hank", company_ids=b_companies[-1:])["id"]
    b_deal = created(api_b, "deals", title="Globex deal", company_id=b_companies[-1], contact_ids=[b_contact])
    b_lead = make_lead(api_b, title="Globex lead")
    b_pipeline = created(api_b, "pipelines", name="Globex only")
    b_field = created(api_b, "fields", entity="deal", label="Secret", type="text")
    a_company = created(api_a, "companies", name="Acme itself")["id"]
    assert a_company < b_companies[-1]  # B's ids beyond A's: none of them exists in A

    error(api_a.get(f"/companies/{b_companies[-1]}"), 404)
    error(api_a.patch(f"/companies/{b_companies[-1]}", json={"name": "Hacked"}), 404)
    error(api_a.delete(f"/companies/{b_companies[-1]}"), 404)
    error(api_a.get(f"/deals/{b_deal['id']}"), 404)
    error(api_a.post(f"/deals/{b_deal['id']}/move", json={"stage_id": b_deal["stage_id"]}), 404)
    error(api_a.post(f"/leads/{b_lead['id']}/convert", json={"create": ["contact", "company", "deal"]}), 404)
    error(api_a.post(f"/leads/{b_lead['id']}/move", json={"stage_id": b_lead["stage_id"]}), 404)
    error(api_a.get(f"/pipelines/{b_pipeline['id']}"), 404)
    error(api_a.delete(f"/pipelines/{b_pipeline['id']}"), 404)
    error(api_a.patch(f"/fields/{b_field['id']}", json={"label": "Mine"}), 404)
    error(api_a.delete(f"/fields/{b_field['id']}"), 404)

    assert listed(api_a, "companies", "q=Globex") == []
    assert listed(api_a, "deals", f"company_id={b_companies[-1]}") == []
    assert listed(api_a, "contacts", f"company_id={b_companies[-1]}") == []
    assert listed(api_a, "companies") == [a_company]
    error(api_a.get("/deals?custom.secret=x"), 422)  # B's custom field is not A's
    assert set(error(api_a.post("/deals", json={"title": "Steal", "company_id": b_companies[-1],
                                                "contact_ids": [b_contact]}), 422)["fields"]) == \
           {"company_id", "contact_ids"}
    assert set(error(api_a.post("/contacts", json={"first_name": "X", "company_ids": [b_companies[-1]]}), 422)
               ["fields"]) == {"company_ids"}
    assert set(error(api_a.post(f"/leads/{make_lead(api_a)['id']}/convert",
                                json={"create": ["deal"], "existing": {"company": b_companies[-1]}}), 422)
               ["fields"]) == {"company"}

    assert ok(api_b.get(f"/companies/{b_companies[-1]}"))["name"] == "Globex 2"
    assert ok(api_b.get(f"/leads/{b_lead['id']}"))["status"] == "open"
    assert ok(api_b.get(f"/deals/{b_deal['id']}")) == b_deal
    assert ok(api_b.get(f"/fields/{b_field['id']}"))["label"] == "Secret"
    assert len(ok(api_b.get("/pipelines"))) == 2


# --- the description -----------------------------------------------------------------------

CRM_OPERATIONS = [
    *((f"/api/v1/{plural}", method) for plural in ("companies", "contacts", "deals", "leads") for method in ("get", "post")),
    *((f"/api/v1/{plural}/{{record_id}}", method) for plural in ("companies", "contacts", "deals", "leads")
      for method in ("get", "patch", "delete")),
    ("/api/v1/leads/{lead_id}/convert", "post"), ("/api/v1/leads/{lead_id}/move", "post"),
    ("/api/v1/deals/{deal_id}/move", "post"), ("/api/v1/pipelines", "get"), ("/api/v1/pipelines", "post"),
    ("/api/v1/pipelines/{pipeline_id}", "get"), ("/api/v1/pipelines/{pipeline_id}", "patch"),
    ("/api/v1/pipelines/{pipeline_id}", "delete"), ("/api/v1/fields", "get"), ("/api/v1/fields", "post"),
    ("/api/v1/fields/{field_id}", "patch"), ("/api/v1/fields/{field_id}", "delete"),
]


def test_openapi_document_describes_the_crm_api(app, company):
    from openapi_spec_validator import validate

    document = ok(client_for(app, company).get("/api/v1/openapi.json"))
    validate(document)
    paths = document["paths"]
    for path, method in CRM_OPERATIONS:
        assert method in paths.get(path, {}), (path, method)
        assert paths[path][method]["security"] == [{"bearer": []}]
    assert "/api/v1/docs" not in paths
    schemas = document["components"]["schemas"]
    assert {"id", "name", "tin", "phones", "emails", "address", "custom"} <= set(schemas["CompanyOut"]["properties"])
    assert {"id", "first_name", "last_name", "phones", "emails", "company_ids", "custom"} <= \
           set(schemas["ContactOut"]["properties"])
    assert {"id", "title", "amount", "currency", "pipeline_id", "stage_id", "company_id", "contact_ids",
            "line_items", "custom"} <= set(schemas["DealOut"]["properties"])
    assert {"id", "title", "contact_name", "company_name", "email", "phone", "status", "custom", "converted"} <= \
           set(schemas["LeadOut"]["properties"])
    assert schemas["DealOut"]["properties"]["amount"]["type"] == "string"
    assert {"create", "pipeline_id", "values", "existing"} <= set(schemas["ConvertIn"]["properties"])
    deals = paths["/api/v1/deals"]["get"]
    assert {"page", "per_page", "sort", "stage_id", "pipeline_id", "q"} <= {p["name"] for p in deals["parameters"]}
    assert paths["/api/v1/deals/{record_id}"]["parameters"][0] == {
        "in": "path", "name": "record_id", "required": True, "schema": {"type": "integer"}}


def test_the_docs_page_shows_the_description(app, company):
    for client in (client_for(app, company), client_for(app, SERVER_NAME)):
        response = client.get("/api/v1/docs")
        assert response.status_code == 200 and response.mimetype == "text/html"
        html = response.get_data(as_text=True)
        assert "/api/v1/leads/{lead_id}/convert" in html and 'id="schema-DealOut"' in html
        assert "/api/v1/tokens" in html and 'href="#schema-ConvertIn"' in html


def test_odd_input_is_a_clear_refusal_not_a_server_error(api):
    huge = 2 ** 70
    error(api.get(f"/deals/{huge}"), 404)
    # werkzeug answers 405 when a path matches a rule's pattern but not its bounds
    assert api.patch(f"/companies/{huge}", json={"name": "x"}).status_code in (404, 405)
    error(api.get(f"/deals?page={huge}"), 422)
    error(api.get("/companies?q=%00"), 422)
    error(api.get(f"/deals?stage_id={huge}"), 422)
    body = error(api.post("/contacts", json={"first_name": "Я" * 201, "position": "x" * 201}), 422)
    assert set(body["fields"]) == {"first_name", "position"}
    body = error(api.post("/deals", json={"title": "Big", "line_items": [
        {"name": "Bolt", "quantity": "1000000000", "price": "1"}, {"name": "Nut", "unit": "u" * 21, "price": "1"},
        {"name": "Gold", "quantity": "999999", "price": "9999999999999"}]}), 422)
    assert set(body["fields"]) == {"line_items.0", "line_items.1", "line_items.2"}
