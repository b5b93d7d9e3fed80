"""Moving records along in the pages: stage moves (form and JSON), the deal board, and lead
conversion, with access rules and another company's ids."""
import re

from sqlalchemy import func, select

from saas.crm import admin, services
from saas.crm.models import AuditEntry, Company as CompanyRecord, Contact, Deal, Entity, Lead, StageKind
from tenants.db import db

from .conftest import csrf_token, sign_in
from .crm_helpers import acting_as, add_person, set_rule


# --- small factories (through the services, as the pages do) ------------------------------

def stage_ids(app, company, entity: str = Entity.DEAL) -> dict:
    """{stage name or kind: id} of the first pipeline of `entity`."""
    with acting_as(app, company):
        stages = services.pipelines(entity)[0].stages
        return {**{s.name: s.id for s in stages}, **{s.kind: s.id for s in reversed(stages)}}


def make_deal(app, company, user_id=None, **data) -> int:
    with acting_as(app, company, user_id) as actor:
        return services.create(Entity.DEAL, {"title": "Boiler delivery", "amount": "1500", **data}, actor).id


def make_lead(app, company, user_id=None, **data) -> int:
    with acting_as(app, company, user_id) as actor:
        return services.create(Entity.LEAD, {
            "title": "Website enquiry", "contact_name": "Ivan Petrov", "company_name": "Romashka LLC",
            "email": "ivan@romashka.example", "phone": "+7 912 345-67-89", "amount": "25000", **data}, actor).id


def deal_stage(app, company, deal_id: int) -> int:
    with acting_as(app, company):
        return db.session.get(Deal, deal_id).stage_id


def lead_row(app, company, lead_id: int) -> dict:
    with acting_as(app, company):
        lead = db.session.get(Lead, lead_id)
        return {"status": lead.status, "stage_id": lead.stage_id, "junk_reason": lead.junk_reason,
                "contact_id": lead.contact_id, "company_id": lead.company_id, "deal_id": lead.deal_id}


def counts(app, company) -> dict:
    with acting_as(app, company):
        return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
                for model in (Contact, CompanyRecord, Deal)}


def page_token(client, path: str = "/deals/board") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def form_token(client, path: str) -> str:
    return csrf_token(client.get(path).get_data(as_text=True))


def move_json(client, deal_id: int, stage_id, token: str):
    return client.post(f"/deals/{deal_id}/move", json={"stage_id": stage_id}, headers={"X-CSRFToken": token})


# --- moving deals --------------------------------------------------------------------------

def test_a_deal_moves_by_form_and_by_json(app, make_tenant):
    acme = make_tenant()
    stages = stage_ids(app, acme)
    deal_id = make_deal(app, acme)
    other_id = make_deal(app, acme, title="Second", amount="500")
    client = sign_in(app, acme)

    # The no-JS form on the board: back to where it came from, with a message.
    token = form_token(client, "/deals/board")
    response = client.post(f"/deals/{deal_id}/move", data={
        "csrf_token": token, "stage_id": stages["Negotiation"], "next": "/deals/board"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/deals/board")
    assert deal_stage(app, acme, deal_id) == stages["Negotiation"]
    assert "moved to “Negotiation”" in client.get("/deals/board").get_data(as_text=True)

    # Without `next`, the deal's card.
    response = client.post(f"/deals/{deal_id}/move", data={"csrf_token": token, "stage_id": stages["Contract"]})
    assert response.headers["Location"].endswith(f"/deals/{deal_id}")

    # A drop on the board: JSON in, the new column totals out.
    response = move_json(client, other_id, stages[StageKind.WON], page_token(client))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["ok"] is True and body["stage_id"] == stages[StageKind.WON]
    assert body["columns"][str(stages[StageKind.WON])]["count"] == 1
    assert body["columns"][str(stages[StageKind.WON])]["amount"] == "500.00"
    assert body["columns"][str(stages["New"])]["count"] == 0
    assert body["columns"][str(stages["Contract"])]["count"] == 1

    with acting_as(app, acme):
        moves = db.session.scalars(select(AuditEntry).where(AuditEntry.record_id == deal_id,
                                                            AuditEntry.entity == Entity.DEAL,
                                                            AuditEntry.action == "stage")).all()
        assert [m.changes["stage_id"][1] for m in moves] == [stages["Negotiation"], stages["Contract"]]

    # Without the CSRF token nothing moves.
    assert client.post(f"/deals/{deal_id}/move", json={"stage_id": stages["New"]}).status_code == 400
    assert deal_stage(app, acme, deal_id) == stages["Contract"]


def test_a_deal_cannot_move_to_a_stage_it_cannot_have(app, make_tenant):
    acme = make_tenant()
    stages, lead_stages = stage_ids(app, acme), stage_ids(app, acme, Entity.LEAD)
    deal_id = make_deal(app, acme)
    client = sign_in(app, acme)
    token = page_token(client)

    for wrong in (lead_stages["New"], 999999, "soon"):
        response = move_json(client, deal_id, wrong, token)
        assert response.status_code == 422, (wrong, response.get_json())
        assert response.get_json()["ok"] is False and response.get_json()["error"]
    assert "stage of a deal pipeline" in move_json(client, deal_id, lead_stages["New"], token).get_json()["error"]

    response = client.post(f"/deals/{deal_id}/move", follow_redirects=True, data={
        "csrf_token": token, "stage_id": lead_stages["New"], "next": "/deals/board"})
    assert "Choose a stage of a deal pipeline." in response.get_data(as_text=True)
    assert deal_stage(app, acme, deal_id) == stages["New"]

    # Another pipeline's stage is fine: the deal changes pipeline with it.
    with acting_as(app, acme) as owner:
        second = admin.create_pipeline(owner, "Service contracts")
        second_id, target = second.id, second.stages[1].id
    assert move_json(client, deal_id, target, token).get_json()["pipeline_id"] == second_id


# --- moving leads --------------------------------------------------------------------------

def test_a_lead_needs_a_reason_to_be_junk_and_a_conversion_to_be_qualified(app, make_tenant):
    acme = make_tenant()
    stages = stage_ids(app, acme, Entity.LEAD)
    lead_id = make_lead(app, acme)
    client = sign_in(app, acme)
    token = form_token(client, "/deals/board")

    response = client.post(f"/leads/{lead_id}/move", data={"csrf_token": token, "stage_id": stages["In progress"]})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/leads/{lead_id}")
    assert lead_row(app, acme, lead_id)["stage_id"] == stages["In progress"]

    # Junk without a reason: refused, the message shown.
    response = client.post(f"/leads/{lead_id}/move", data={"csrf_token": token, "stage_id": stages[StageKind.LOST],
                                                           "next": "/deals/board"}, follow_redirects=True)
    assert "Say why the lead is junk." in response.get_data(as_text=True)
    assert lead_row(app, acme, lead_id)["status"] == "open"
    response = client.post(f"/leads/{lead_id}/move", json={"stage_id": stages[StageKind.LOST]},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"junk_reason": ["Say why the lead is junk."]}

    # Qualified is not a move: the form opens the conversion, JSON is refused; the lead stays open.
    response = client.post(f"/leads/{lead_id}/move", data={"csrf_token": token, "stage_id": stages[StageKind.WON]})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/leads/{lead_id}/convert")
    response = client.post(f"/leads/{lead_id}/move", json={"stage_id": stages[StageKind.WON]},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 422 and "Convert the lead" in response.get_json()["error"]
    assert lead_row(app, acme, lead_id)["status"] == "open"

    response = client.post(f"/leads/{lead_id}/move", data={"csrf_token": token, "stage_id": stages[StageKind.LOST],
                                                           "junk_reason": "Student project, no budget"})
    assert response.status_code == 302
    row = lead_row(app, acme, lead_id)
    assert row["status"] == "junk" and row["junk_reason"] == "Student project, no budget"

    # A junk lead cannot be converted; the page says so.
    response = client.get(f"/leads/{lead_id}/convert")
    assert response.status_code == 409 and "cannot be converted" in response.get_data(as_text=True)


# --- the board -----------------------------------------------------------------------------

def test_the_board_shows_columns_cards_and_filters(app, make_tenant):
    acme = make_tenant()
    stages = stage_ids(app, acme)
    colleague = add_person(app, acme, "member", name="Olga Sales")
    with acting_as(app, acme) as owner:
        firm = services.create(Entity.COMPANY, {"name": "Romashka LLC"}, owner)
        services.create(Entity.DEAL, {"title": "Boiler delivery", "amount": "1500", "company_id": firm.id}, owner)
        services.create(Entity.DEAL, {"title": "Pump repair", "amount": "700", "stage_id": stages[StageKind.WON]},
                        owner)
        services.create(Entity.DEAL, {"title": "Olga's deal", "responsible_id": colleague.user_id}, owner)
        second_id = admin.create_pipeline(owner, "Service contracts").id
    client = sign_in(app, acme)

    html = client.get("/deals/board").get_data(as_text=True)
    for text in ("Boiler delivery", "Romashka LLC", "Pump repair", "Olga Sales", "Service contracts",
                 "board-column-won", "board-column-lost", "1,500.00", "No deals here"):
        assert text in html, text
    assert html.count('class="board-card"') == 3

    filtered = client.get(f"/deals/board?responsible_id={colleague.user_id}").get_data(as_text=True)
    assert "Olga&#39;s deal" in filtered and "Boiler delivery" not in filtered
    searched = client.get("/deals/board?q=pump").get_data(as_text=True)
    assert "Pump repair" in searched and "Boiler delivery" not in searched
    assert "Choose" in client.get("/deals/board?responsible_id=nobody").get_data(as_text=True)  # told, not a 500

    other = client.get(f"/deals/board/{second_id}").get_data(as_text=True)
    assert "Boiler delivery" not in other and other.count("No deals here") == 4
    assert client.get("/deals/board/999999").status_code == 404


# --- lead conversion -----------------------------------------------------------------------

def conversion_form(client, lead_id: int, **overrides) -> dict:
    """The conversion page's form as the browser would post it, with `overrides` applied."""
    html = client.get(f"/leads/{lead_id}/convert").get_data(as_text=True)
    data = {"csrf_token": csrf_token(html), "targets": ["contact", "company", "deal"]}
    for name, value in re.findall(r'<input name="([a-z_]+\.[a-z_.]+)" value="([^"]*)"', html):
        data[name] = value
    for name, body in re.findall(r'<select name="([a-z_]+\.[a-z_.]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        data[name] = chosen.group(1) if chosen else ""
    for name, value in re.findall(r'<input type="radio" name="([a-z]+\.use)" value="([^"]+)"[^>]*checked', html):
        data[name] = value
    data.update(overrides)
    return data


def test_a_lead_converts_into_a_contact_a_company_and_a_deal(app, make_tenant):
    acme = make_tenant()
    lead_id = make_lead(app, acme, tin="7707083893")
    client = sign_in(app, acme)

    html = client.get(f"/leads/{lead_id}/convert").get_data(as_text=True)
    for carried in ('value="Ivan"', 'value="Petrov"', 'value="Romashka LLC"', 'value="7707083893"',
                    'value="ivan@romashka.example"', 'value="+7 912 345-67-89"', 'value="25000.00"'):
        assert carried in html, carried

    form = conversion_form(client, lead_id, **{"deal.title": "Romashka: boilers"})
    response = client.post(f"/leads/{lead_id}/convert", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].endswith(f"/leads/{lead_id}")

    row = lead_row(app, acme, lead_id)
    assert row["status"] == "qualified" and row["stage_id"] == stage_ids(app, acme, Entity.LEAD)[StageKind.WON]
    with acting_as(app, acme):
        deal = db.session.get(Deal, row["deal_id"])
        contact = db.session.get(Contact, row["contact_id"])
        firm = db.session.get(CompanyRecord, row["company_id"])
        assert (deal.title, deal.amount, deal.company_id) == ("Romashka: boilers", 25000, firm.id)
        assert deal.lead_id == lead_id
        assert services.contact_ids_of(deal.id) == [contact.id]
        assert services.company_ids_of(contact.id) == [firm.id]
        assert (contact.first_name, contact.last_name) == ("Ivan", "Petrov")
        assert contact.emails == ["ivan@romashka.example"]
        assert (firm.name, firm.tin) == ("Romashka LLC", "7707083893")

    # Converted once: the page now says so and links what it became.
    response = client.get(f"/leads/{lead_id}/convert")
    assert response.status_code == 409 and f"/deals/{row['deal_id']}" in response.get_data(as_text=True)
    assert client.post(f"/leads/{lead_id}/convert", data=form).status_code == 409
    assert counts(app, acme) == {"contacts": 1, "companies": 1, "deals": 1}


def test_a_required_tin_missing_stops_the_conversion_until_it_is_given(app, make_tenant):
    acme = make_tenant()
    with acting_as(app, acme) as owner:
        admin.set_required_fields(owner, Entity.COMPANY, ["tin"])
    lead_id = make_lead(app, acme)
    client = sign_in(app, acme)

    form = conversion_form(client, lead_id, **{"contact.first_name": "Ivan (edited)"})
    response = client.post(f"/leads/{lead_id}/convert", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'has-error">\s*<span>TIN', html), "the TIN field is marked"
    assert "Required." in html and "Nothing was created" in html
    assert 'value="Ivan (edited)"' in html  # what was typed is kept
    assert counts(app, acme) == {"contacts": 0, "companies": 0, "deals": 0}
    assert lead_row(app, acme, lead_id)["status"] == "open"

    form["company.tin"] = "7707083893"
    response = client.post(f"/leads/{lead_id}/convert", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert counts(app, acme) == {"contacts": 1, "companies": 1, "deals": 1}
    row = lead_row(app, acme, lead_id)
    assert row["status"] == "qualified"
    with acting_as(app, acme):
        assert db.session.get(CompanyRecord, row["company_id"]).tin == "7707083893"
        assert db.session.get(Contact, row["contact_id"]).first_name == "Ivan (edited)"


def test_a_required_custom_field_of_a_target_is_asked_for(app, make_tenant):
    acme = make_tenant()
    with acting_as(app, acme) as owner:
        terms = admin.create_custom_field(owner, Entity.DEAL, label="Payment terms", type="list", required=True,
                                          items=["Prepaid", "On delivery"])
        on_delivery = terms.options["items"][1]["id"]
    lead_id = make_lead(app, acme)
    client = sign_in(app, acme)

    form = conversion_form(client, lead_id)
    assert form["deal.custom.payment_terms"] == ""
    response = client.post(f"/leads/{lead_id}/convert", data=form)
    assert response.status_code == 422
    assert re.search(r'has-error">\s*<span>Payment terms', response.get_data(as_text=True))
    assert counts(app, acme) == {"contacts": 0, "companies": 0, "deals": 0}

    form["deal.custom.payment_terms"] = str(on_delivery)
    assert client.post(f"/leads/{lead_id}/convert", data=form).status_code == 302
    deal_id = lead_row(app, acme, lead_id)["deal_id"]
    with acting_as(app, acme):
        assert db.session.get(Deal, deal_id).custom == {"payment_terms": on_delivery}


def test_an_existing_contact_found_by_email_is_used_instead_of_a_new_one(app, make_tenant):
    acme = make_tenant()
    with acting_as(app, acme) as owner:
        existing = services.create(Entity.CONTACT, {"first_name": "Ivan", "last_name": "Petrov",
                                                    "emails": ["IVAN@romashka.example"]}, owner).id
    lead_id = make_lead(app, acme, company_name="")
    client = sign_in(app, acme)

    html = client.get(f"/leads/{lead_id}/convert").get_data(as_text=True)
    assert f"Use the existing contact #{existing} Ivan Petrov" in html
    form = conversion_form(client, lead_id, targets=["contact", "deal"])
    assert form["contact.use"] == str(existing)  # offered first, to avoid a duplicate
    response = client.post(f"/leads/{lead_id}/convert", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)

    row = lead_row(app, acme, lead_id)
    assert row["contact_id"] == existing and row["company_id"] is None
    assert counts(app, acme) == {"contacts": 1, "companies": 0, "deals": 1}
    with acting_as(app, acme):
        assert services.contact_ids_of(row["deal_id"]) == [existing]


def test_nothing_chosen_is_refused_with_a_message(app, make_tenant):
    acme = make_tenant()
    lead_id = make_lead(app, acme)
    client = sign_in(app, acme)
    response = client.post(f"/leads/{lead_id}/convert", data=conversion_form(client, lead_id, targets=[]))
    assert response.status_code == 422 and "Choose at least one" in response.get_data(as_text=True)
    assert lead_row(app, acme, lead_id)["status"] == "open"


# --- who may move and convert what ---------------------------------------------------------

def test_a_member_with_own_records_cannot_move_or_convert_others(app, make_tenant):
    acme = make_tenant()
    member = add_person(app, acme, "member")
    for entity in (Entity.DEAL, Entity.LEAD):
        set_rule(app, acme, "member", entity, "own")
    stages, lead_stages = stage_ids(app, acme), stage_ids(app, acme, Entity.LEAD)
    owners_deal, owners_lead = make_deal(app, acme), make_lead(app, acme)
    own_deal = make_deal(app, acme, title="Mine", responsible_id=member.user_id)
    client = sign_in(app, acme, member.email, member.password)
    token = page_token(client)

    html = client.get("/deals/board").get_data(as_text=True)
    assert "Mine" in html and "Boiler delivery" not in html
    assert move_json(client, owners_deal, stages["Contract"], token).status_code == 404
    assert client.post(f"/deals/{owners_deal}/move", data={"csrf_token": token,
                                                           "stage_id": stages["Contract"]}).status_code == 404
    assert client.post(f"/leads/{owners_lead}/move", data={"csrf_token": token,
                                                           "stage_id": lead_stages["In progress"]}).status_code == 404
    assert client.get(f"/leads/{owners_lead}/convert").status_code == 404
    assert client.post(f"/leads/{owners_lead}/convert", data={"csrf_token": token, "targets": ["deal"],
                                                              "deal.title": "Taken"}).status_code == 404
    assert deal_stage(app, acme, owners_deal) == stages["New"]
    assert lead_row(app, acme, owners_lead)["status"] == "open"
    assert counts(app, acme)["deals"] == 2

    assert move_json(client, own_deal, stages["Contract"], token).status_code == 200


def test_another_companys_records_cannot_be_moved_or_converted(app, make_tenant):
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    theirs_deal, theirs_lead = make_deal(app, globex), make_lead(app, globex)
    their_stages, their_lead_stages = stage_ids(app, globex), stage_ids(app, globex, Entity.LEAD)
    client = sign_in(app, acme)  # Acme has no records: Globex's ids mean nothing here
    token = page_token(client)

    assert move_json(client, theirs_deal, their_stages["Contract"], token).status_code == 404
    assert client.post(f"/leads/{theirs_lead}/move", data={
        "csrf_token": token, "stage_id": their_lead_stages[StageKind.LOST], "junk_reason": "x"}).status_code == 404
    assert client.get(f"/leads/{theirs_lead}/convert").status_code == 404
    assert client.post(f"/leads/{theirs_lead}/convert", data={"csrf_token": token, "targets": ["deal"],
                                                              "deal.title": "Stolen"}).status_code == 404

    assert deal_stage(app, globex, theirs_deal) == their_stages["New"]
    assert lead_row(app, globex, theirs_lead)["status"] == "open"
    assert counts(app, globex) == {"contacts": 0, "companies": 0, "deals": 1}
    assert counts(app, acme)["deals"] == 0
