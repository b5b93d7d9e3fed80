"""CRM settings pages (owner and administrators) and the recycle bin, through the real pages.

Changes are posted through the forms as a browser would (with the CSRF token) and their effect is
checked through the services, inside the company's schema, as the people concerned.
"""
import pytest
from flask import Response
from sqlalchemy import select, update

from saas.auth.models import Membership
from saas.crm import access, admin, audit, services
from saas.crm.models import Company, Pipeline
from saas.errors import NotFound
from tenants.db import db

from .conftest import csrf_token, sign_in
from .crm_helpers import acting_as, add_person, set_rule
from .test_auth import field_errors, messages, page_text

FORBIDDEN_REASON = "Only the owner and administrators change these settings."


def post(client, path: str, data: dict | None = None, **kwargs):
    """A form post carrying the CSRF token of this browser session."""
    token = csrf_token(client.get("/recycle-bin").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)


def sign_in_as(app, company, person):
    return sign_in(app, company, email=person.email, password=person.password)


def pipeline_ids(app, company) -> tuple[int, int]:
    """(the first deal pipeline, the lead stage bar), made on first look."""
    with acting_as(app, company):
        return services.pipelines()[0].id, services.lead_pipeline().id


def stages_of(app, company, pipeline_id: int) -> list[tuple]:
    with acting_as(app, company):
        found = db.session.get(Pipeline, pipeline_id)
        return [(stage.id, stage.name, stage.kind) for stage in found.stages]


def stage_form(rows, *, pipeline_name: str | None = None, remove=()) -> dict:
    """The stage editor's form: rows of (id or None, name, kind, order); `remove`: row indexes."""
    data = {"stage_id": [str(row[0] or "") for row in rows], "name": [row[1] for row in rows],
            "kind": [row[2] for row in rows], "color": ["#4f7cac"] * len(rows),
            "order": [str(row[3]) for row in rows], "remove": [str(index) for index in remove]}
    if pipeline_name is not None:
        data["pipeline_name"] = pipeline_name
    return data


def new_field_errors(response, name: str) -> list[str]:
    """The errors beside `name` in the new-field form (each existing field has a form of its own)."""
    body = response.get_data(as_text=True)
    return field_errors(Response(body[body.index('id="new-field"'):]), name)


def access_form(**cells) -> dict:
    """Every cell of the access grid at "all", except `cells` (member_company=("own", "own"))."""
    data = {}
    for role in access.RULED_ROLES:
        for entity in ("lead", "contact", "company", "deal"):
            see, edit = cells.get(f"{role}_{entity}", ("all", "all"))
            data[f"see.{role}.{entity}"], data[f"edit.{role}.{entity}"] = see, edit
    return data


def new_company(app, company, name: str, responsible_id: int | None = None, **data) -> int:
    with acting_as(app, company) as owner:
        return services.create("company", {"name": name, "responsible_id": responsible_id, **data}, owner).id


def settings_pages(app, company) -> list[str]:
    deal_pipeline, lead_bar = pipeline_ids(app, company)
    return ["/settings/crm", "/settings/pipelines", f"/settings/pipelines/{deal_pipeline}",
            f"/settings/pipelines/{lead_bar}", "/settings/fields", "/settings/fields?entity=company",
            "/settings/lists", "/settings/access", "/settings/departments", "/settings/reassign"]


# --- who may open the pages ----------------------------------------------------------------

def test_every_settings_page_renders_for_the_owner_and_an_administrator(app, make_tenant):
    company = make_tenant()
    owner = sign_in(app, company)
    for path in settings_pages(app, company):
        response = owner.get(path)
        assert response.status_code == 200, path
        assert 'href="/recycle-bin"' in response.get_data(as_text=True), path
    home = page_text(owner.get("/settings/crm"))
    for section in ("/settings/pipelines", "/settings/fields", "/settings/lists", "/settings/access",
                    "/settings/departments", "/settings/reassign", "/recycle-bin"):
        assert f'href="{section}"' in home

    administrator = sign_in_as(app, company, add_person(app, company, "admin"))
    assert administrator.get("/settings/access").status_code == 200


def test_a_member_is_refused_every_settings_page_and_change_with_the_reason(app, make_tenant):
    company = make_tenant()
    deal_pipeline, _lead_bar = pipeline_ids(app, company)
    with acting_as(app, company) as owner:
        field_id = admin.create_custom_field(owner, "deal", label="Budget", type="money").id
        item_id = admin.add_classifier_item(owner, "region", "North").id
        department_id = admin.create_department(owner, "Sales").id
    member = add_person(app, company, "member")
    client = sign_in_as(app, company, member)

    for path in settings_pages(app, company):
        response = client.get(path)
        assert response.status_code == 403, path
        assert FORBIDDEN_REASON in page_text(response), path

    changes = {
        "/settings/crm": {"phone_region": "UA", "currency": "USD", "required.company": "tin"},
        "/settings/pipelines": {"name": "Sneaky"},
        f"/settings/pipelines/{deal_pipeline}": stage_form([(None, "Only", "open", 1)], pipeline_name="X"),
        f"/settings/pipelines/{deal_pipeline}/delete": {},
        "/settings/fields": {"entity": "deal", "label": "Sneaky", "type": "text"},
        f"/settings/fields/{field_id}": {"label": "Renamed"},
        f"/settings/fields/{field_id}/delete": {},
        "/settings/lists/region": {"label": "South"},
        f"/settings/lists/items/{item_id}/delete": {},
        "/settings/access": access_form(),
        "/settings/departments": {"name": "Sneaky"},
        f"/settings/departments/{department_id}/delete": {},
        "/settings/departments/staff": {f"department.{member.user_id}": str(department_id)},
        "/settings/reassign": {"from_user_id": str(company.owner_id), "to_user_id": str(member.user_id)},
    }
    for path, data in changes.items():
        response = post(client, path, data)
        assert response.status_code == 403, path
        assert FORBIDDEN_REASON in page_text(response), path

    with acting_as(app, company):  # nothing changed
        assert services.phone_region() == "RU" and services.required_fields("company") == set()
        assert [f.label for f in services.custom_fields("deal")] == ["Budget"]
        assert [p.name for p in services.pipelines()] == ["Sales"]
        assert [i.label for i in admin.list_items("region")] == ["North"]
        assert [d.name for d in admin.departments()] == ["Sales"] and admin.department_of() == {}


# --- company-wide settings -----------------------------------------------------------------

def test_making_the_company_tin_required_stops_companies_without_one(app, make_tenant):
    company, other = make_tenant(), make_tenant()
    client = sign_in(app, company)

    response = post(client, "/settings/crm", {"phone_region": "KZ", "currency": "USD", "required.company": "tin"},
                    follow_redirects=True)
    assert "Settings saved." in messages(response)
    html = response.get_data(as_text=True)
    assert 'name="required.company" value="tin" checked' in html
    assert '<option value="KZ" selected>' in html

    with acting_as(app, company) as owner:
        assert services.phone_region() == "KZ" and services.default_currency() == "USD"
        with pytest.raises(services.FieldErrors) as refused:
            services.create("company", {"name": "Romashka"}, owner)
        assert refused.value.fields["tin"] == ["Required."]
        assert services.create("company", {"name": "Romashka", "tin": "7707083893"}, owner).id
    with acting_as(app, other) as owner:  # another company's settings are its own
        assert services.required_fields("company") == set() and services.phone_region() == "RU"
        assert services.create("company", {"name": "Romashka"}, owner).id


def test_a_refused_setting_is_shown_beside_its_field_and_nothing_is_saved(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    response = post(client, "/settings/crm", {"phone_region": "XX", "currency": "USD", "required.deal": "amount"})
    assert response.status_code == 422
    assert field_errors(response, "phone_region") == ["Use a two-letter country code such as RU, UA, KZ or TH."]
    assert 'name="required.deal" value="amount" checked' in response.get_data(as_text=True)  # kept
    with acting_as(app, company):
        assert services.default_currency() == "RUB" and services.required_fields("deal") == set()


# --- pipelines and stages ------------------------------------------------------------------

def test_create_a_pipeline_and_edit_its_stages(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    assert "Sales" in page_text(client.get("/settings/pipelines"))  # the default pipeline

    response = post(client, "/settings/pipelines", {"name": "Wholesale"}, follow_redirects=True)
    assert "Pipeline created." in " ".join(messages(response))
    with acting_as(app, company):
        pipeline_id = next(p.id for p in services.pipelines() if p.name == "Wholesale")
    (new, new_name, _), (progress, _, _), (won, _, _), (lost, _, _) = stages_of(app, company, pipeline_id)
    assert new_name == "New"
    assert "In progress" in page_text(client.get(f"/settings/pipelines/{pipeline_id}"))

    # Rename "New", add "Proposal" before it, rename the pipeline.
    response = post(client, f"/settings/pipelines/{pipeline_id}", stage_form(
        [(new, "Incoming", "open", 2), (progress, "In progress", "open", 3), (won, "Won", "won", 4),
         (lost, "Lost", "lost", 5), (None, "Proposal", "open", 1), (None, "", "open", 7)],
        pipeline_name="Wholesale trade"), follow_redirects=True)
    assert "Stages saved." in messages(response)
    stages = stages_of(app, company, pipeline_id)
    assert [(name, kind) for _id, name, kind in stages] == [
        ("Proposal", "open"), ("Incoming", "open"), ("In progress", "open"), ("Won", "won"), ("Lost", "lost")]
    proposal = stages[0][0]

    # Reorder: "In progress" first; a stage added at the bottom as open lands before the final ones.
    response = post(client, f"/settings/pipelines/{pipeline_id}", stage_form(
        [(proposal, "Proposal", "open", 2), (new, "Incoming", "open", 3), (progress, "In progress", "open", 1),
         (won, "Won", "won", 4), (lost, "Lost", "lost", 5), (None, "Cancelled", "lost", 6),
         (None, "Contract", "open", 7)], pipeline_name="Wholesale trade"))
    assert response.status_code == 302
    assert [name for _id, name, _kind in stages_of(app, company, pipeline_id)] == [
        "In progress", "Proposal", "Incoming", "Contract", "Won", "Lost", "Cancelled"]
    with acting_as(app, company) as owner:
        assert services.pipeline(pipeline_id).name == "Wholesale trade"
        services.create("deal", {"title": "Big order", "pipeline_id": pipeline_id, "stage_id": new}, owner)
    current = stages_of(app, company, pipeline_id)
    rows = [(stage_id, name, kind, position) for position, (stage_id, name, kind) in enumerate(current, 1)]

    # Removing an unused stage works; removing the one holding the deal is refused, and nothing changes.
    response = post(client, f"/settings/pipelines/{pipeline_id}", stage_form(
        rows, pipeline_name="Wholesale trade", remove=[1]))
    assert response.status_code == 302
    assert "Proposal" not in [name for _id, name, _kind in stages_of(app, company, pipeline_id)]
    rows = [row for row in rows if row[1] != "Proposal"]
    response = post(client, f"/settings/pipelines/{pipeline_id}", stage_form(
        rows, pipeline_name="Wholesale trade", remove=[1, 2]))  # Incoming (holds the deal) and Contract
    assert response.status_code == 422
    assert "“Incoming” still holds records. Move them to another stage first." in messages(response)
    assert 'name="remove" value="1" aria-label="Remove" checked' in response.get_data(as_text=True)  # kept
    assert [name for _id, name, _kind in stages_of(app, company, pipeline_id)] == [
        "In progress", "Incoming", "Contract", "Won", "Lost", "Cancelled"]

    # A stage list the rules refuse is explained.
    response = post(client, f"/settings/pipelines/{pipeline_id}", stage_form(
        [(progress, "In progress", "open", 1), (new, "", "open", 2), (won, "Won", "won", 3)],
        pipeline_name="Wholesale trade"))
    assert response.status_code == 422
    assert any("exactly one won" in message for message in messages(response))

    # A pipeline with deals is not deleted; an empty one is.
    response = post(client, f"/settings/pipelines/{pipeline_id}/delete", follow_redirects=True)
    assert "Deals are in this pipeline (some maybe in the recycle bin). Move them first." in messages(response)
    post(client, "/settings/pipelines", {"name": "Short-lived"})
    with acting_as(app, company):
        short_lived = next(p.id for p in services.pipelines() if p.name == "Short-lived")
    response = post(client, f"/settings/pipelines/{short_lived}/delete", follow_redirects=True)
    assert "Pipeline deleted." in messages(response)
    with acting_as(app, company):
        assert [p.name for p in services.pipelines()] == ["Sales", "Wholesale trade"]


def test_the_lead_stage_bar_is_edited_the_same_way(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    _deal_pipeline, lead_bar = pipeline_ids(app, company)
    page = page_text(client.get(f"/settings/pipelines/{lead_bar}"))
    assert "Qualified" in page and "Junk" in page and 'name="pipeline_name"' not in page
    rows = [(stage_id, name, kind, position) for position, (stage_id, name, kind) in
            enumerate(stages_of(app, company, lead_bar), 1)]
    rows = [(stage_id, name, kind, order + 1 if order > 1 else order) for stage_id, name, kind, order in rows]
    rows.append((None, "Called back", "open", 2))
    assert post(client, f"/settings/pipelines/{lead_bar}", stage_form(rows)).status_code == 302
    assert [name for _id, name, _kind in stages_of(app, company, lead_bar)] == [
        "New", "Called back", "In progress", "Qualified", "Junk"]
    response = post(client, f"/settings/pipelines/{lead_bar}/delete", follow_redirects=True)
    assert "The lead stage bar cannot be deleted." in messages(response)


# --- custom fields and lists ---------------------------------------------------------------

def test_custom_fields_are_created_changed_and_deleted(app, make_tenant):
    company, other = make_tenant(), make_tenant()
    client = sign_in(app, company)

    response = post(client, "/settings/fields", {"entity": "deal", "label": "Payment terms", "type": "list",
                                                 "items": "Prepaid\r\nOn delivery\r\n\r\n", "required": "on"},
                    follow_redirects=True)
    assert "Field added." in messages(response)
    assert "payment_terms" in page_text(response) and "Prepaid, On delivery" in page_text(response)
    with acting_as(app, company):
        (field,) = services.custom_fields("deal")
        assert (field.key, field.type, field.required) == ("payment_terms", "list", True)
        assert [item["label"] for item in field.options["items"]] == ["Prepaid", "On delivery"]
        field_id = field.id

    with acting_as(app, company) as owner:
        prepaid = services.create("deal", {"title": "Paid first", "custom": {"payment_terms": "Prepaid"}}, owner).id
        on_delivery = services.create("deal", {"title": "Paid later", "custom": {"payment_terms": "On delivery"}},
                                      owner).id
    # Renaming keeps the records' values; clearing an item removes it from the records that had it.
    response = post(client, f"/settings/fields/{field_id}",
                    {"label": "Terms", "item-1": "Prepaid 100%", "item-2": "", "new_items": "30 days"})
    assert response.status_code == 302
    response = post(client, "/settings/fields", {"entity": "company", "label": "Parent", "type": "link",
                                                 "target": "company"})
    assert response.status_code == 302
    with acting_as(app, company) as owner:
        (field,) = services.custom_fields("deal")
        assert field.label == "Terms" and not field.required
        assert field.options["items"] == [{"id": 1, "label": "Prepaid 100%"}, {"id": 3, "label": "30 days"}]
        assert services.get("deal", prepaid, owner).custom == {"payment_terms": 1}
        assert services.get("deal", on_delivery, owner).custom == {}
        assert services.custom_fields("company")[0].options == {"target": "company"}

    # Refusals are shown beside the form, with what was typed kept.
    response = post(client, "/settings/fields", {"entity": "deal", "label": "Delivery", "type": "list", "items": ""})
    assert response.status_code == 422
    assert new_field_errors(response, "items") == ["Add at least one list item."]
    assert 'value="Delivery"' in response.get_data(as_text=True)
    response = post(client, "/settings/fields", {"entity": "deal", "label": "Terms", "type": "text",
                                                 "key": "payment_terms"})
    assert new_field_errors(response, "key") == ["A field with the key “payment_terms” exists. Choose another."]

    with acting_as(app, other):  # another company never sees these fields
        assert services.custom_fields("deal") == [] and services.custom_fields("company") == []

    response = post(client, f"/settings/fields/{field_id}/delete", follow_redirects=True)
    assert "Field deleted." in messages(response)
    with acting_as(app, company):
        assert services.custom_fields("deal") == []


def test_company_classification_lists(app, make_tenant):
    company = make_tenant()
    client = sign_in(app, company)
    for label in ("Retail", "Wholesale"):
        assert post(client, "/settings/lists/activity_type", {"label": label}).status_code == 302
    response = post(client, "/settings/lists/activity_type", {"label": "Retail"})
    assert response.status_code == 422 and "“Retail” is already in the list." in messages(response)
    with acting_as(app, company):
        items = [(item.id, item.label) for item in admin.list_items("activity_type")]
        assert [label for _id, label in items] == ["Retail", "Wholesale"]
    page = page_text(client.get("/settings/lists"))
    for heading in ("Activity type", "Region", "Group", "Category", "Advertising source"):
        assert heading in page
    response = post(client, f"/settings/lists/items/{items[0][0]}/delete", follow_redirects=True)
    assert "Item removed." in messages(response)
    with acting_as(app, company):
        assert [item.label for item in admin.list_items("activity_type")] == ["Wholesale"]


# --- access rights and departments ---------------------------------------------------------

def test_an_access_rule_changed_on_the_page_applies(app, make_tenant):
    company = make_tenant()
    seller, colleague = add_person(app, company), add_person(app, company)
    theirs = new_company(app, company, "Theirs", colleague.user_id)
    with acting_as(app, company, seller.user_id) as actor:
        assert services.get("company", theirs, actor).name == "Theirs"

    client = sign_in(app, company)
    response = post(client, "/settings/access", access_form(member_company=("own", "all")))
    assert response.status_code == 422  # one cannot change more than one sees
    assert "One cannot edit more than one sees." in messages(response)

    response = post(client, "/settings/access", access_form(member_company=("own", "own")), follow_redirects=True)
    assert response.status_code == 200
    assert '<option value="own" selected>' in response.get_data(as_text=True)
    with acting_as(app, company, seller.user_id) as actor:
        assert access.rule("member", "company") == access.Rule("own", "own")
        with pytest.raises(NotFound):
            services.get("company", theirs, actor)


def test_the_department_scope_shows_colleagues_records_but_not_outsiders(app, make_tenant):
    company = make_tenant()
    seller, colleague, outsider = (add_person(app, company) for _ in range(3))
    client = sign_in(app, company)
    for name in ("Sales", "Support"):
        assert post(client, "/settings/departments", {"name": name}).status_code == 302
    with acting_as(app, company):
        sales, support = (d.id for d in sorted(admin.departments(), key=lambda d: d.name != "Sales"))
    response = post(client, "/settings/departments/staff", {
        f"department.{seller.user_id}": str(sales), f"department.{colleague.user_id}": str(sales),
        f"department.{outsider.user_id}": str(support)}, follow_redirects=True)
    assert "Departments saved." in messages(response)
    set_rule(app, company, "member", "company", "department")
    colleagues_company = new_company(app, company, "Colleague's", colleague.user_id)
    outsiders_company = new_company(app, company, "Outsider's", outsider.user_id)

    with acting_as(app, company, seller.user_id) as actor:
        assert admin.department_of()[seller.user_id] == sales
        assert services.get("company", colleagues_company, actor).name == "Colleague's"
        with pytest.raises(NotFound):
            services.get("company", outsiders_company, actor)

    response = post(client, f"/settings/departments/{support}/delete", follow_redirects=True)
    assert "Department deleted." in " ".join(messages(response))
    with acting_as(app, company):
        assert outsider.user_id not in admin.department_of()


# --- an employee leaves --------------------------------------------------------------------

def test_a_leaving_employees_records_go_to_someone_else_with_their_history(app, make_tenant):
    company = make_tenant()
    leaver, successor = add_person(app, company, name="Leaving Lena"), add_person(app, company, name="Staying Sam")
    companies = [new_company(app, company, name, leaver.user_id) for name in ("Alpha", "Beta")]
    with acting_as(app, company) as owner:
        deal = services.create("deal", {"title": "Alpha order", "responsible_id": leaver.user_id}, owner).id
        db.session.execute(update(Membership).where(Membership.id == leaver.membership_id).values(active=False))

    client = sign_in(app, company)
    page = page_text(client.get(f"/settings/reassign?from_user_id={leaver.user_id}"))
    assert "Leaving Lena" in page and "deactivated" in page
    assert "<td>2</td>" in page and "<td>1</td>" in page  # companies, deal
    response = post(client, "/settings/reassign", {"from_user_id": str(leaver.user_id),
                                                   "to_user_id": str(leaver.user_id)})
    assert response.status_code == 422

    response = post(client, "/settings/reassign", {"from_user_id": str(leaver.user_id),
                                                   "to_user_id": str(successor.user_id)}, follow_redirects=True)
    assert ("Records handed over. Leads: 0, contacts: 0, companies: 2, deals: 1." in messages(response))
    with acting_as(app, company) as owner:
        for company_id in companies:
            assert services.get("company", company_id, owner).responsible_id == successor.user_id
            (entry, *_older) = audit.timeline("company", company_id)
            assert entry.changes == {"responsible_id": [leaver.user_id, successor.user_id]}
            assert entry.user_id == company.owner_id
        assert services.get("deal", deal, owner).responsible_id == successor.user_id
        assert admin.records_held_by(leaver.user_id) == {"company": 0, "contact": 0, "deal": 0, "lead": 0}


# --- the recycle bin -----------------------------------------------------------------------

def test_a_deleted_record_is_restored_from_the_recycle_bin(app, make_tenant):
    company = make_tenant()
    member = add_person(app, company, name="Maria Member")
    member_client = sign_in_as(app, company, member)
    assert "The recycle bin is empty." in page_text(member_client.get("/recycle-bin"))

    mine = new_company(app, company, "Romashka", member.user_id)
    with acting_as(app, company, member.user_id) as actor:
        services.delete_record("company", mine, actor)
    page = page_text(member_client.get("/recycle-bin"))
    assert "Romashka" in page and "Maria Member" in page and "Company" in page
    assert f'action="/recycle-bin/company/{mine}/restore"' in page

    response = post(member_client, f"/recycle-bin/company/{mine}/restore", follow_redirects=True)
    assert "“Romashka” is restored." in messages(response)
    assert "The recycle bin is empty." in page_text(response)
    with acting_as(app, company, member.user_id) as actor:
        assert services.get("company", mine, actor).name == "Romashka"
        assert audit.timeline("company", mine)[0].action == "restore"

    # With "own records" rights a member neither sees nor restores a colleague's deleted record.
    set_rule(app, company, "member", "company", "own")
    colleagues = new_company(app, company, "Colleague's client")
    with acting_as(app, company) as owner:
        services.delete_record("company", colleagues, owner)
    assert "Colleague's client" not in page_text(member_client.get("/recycle-bin"))
    assert post(member_client, f"/recycle-bin/company/{colleagues}/restore").status_code == 404
    assert "Colleague's client" in page_text(sign_in(app, company).get("/recycle-bin"))


# --- one company's settings never reach another --------------------------------------------

def test_one_company_cannot_restore_or_change_anothers_records_and_settings(app, make_tenant):
    company_a, company_b = make_tenant(name="A"), make_tenant(name="B")
    client_a = sign_in(app, company_a)

    theirs = new_company(app, company_b, "B's secret client")
    with acting_as(app, company_b) as owner_b:
        services.delete_record("company", theirs, owner_b)
        field_b = admin.create_custom_field(owner_b, "company", label="B only", type="text").id
        item_b = admin.add_classifier_item(owner_b, "region", "B's region").id
        department_b = admin.create_department(owner_b, "B's department").id
        pipeline_b = admin.create_pipeline(owner_b, "B's pipeline").id

    # B's ids posted on A's host find nothing there (A has no records, fields, items or departments).
    assert post(client_a, f"/recycle-bin/company/{theirs}/restore").status_code == 404
    assert post(client_a, f"/settings/fields/{field_b}", {"label": "Taken"}).status_code == 404
    assert post(client_a, f"/settings/fields/{field_b}/delete").status_code == 404
    assert post(client_a, f"/settings/lists/items/{item_b}/delete").status_code == 404
    assert post(client_a, f"/settings/departments/{department_b}/delete").status_code == 404
    assert client_a.get(f"/settings/pipelines/{pipeline_b}").status_code == 404
    for path in ("/recycle-bin", "/settings/fields?entity=company", "/settings/lists", "/settings/departments",
                 "/settings/pipelines"):
        assert "B's" not in page_text(client_a.get(path)) and "B only" not in page_text(client_a.get(path)), path

    # A's changes stay in A.
    post(client_a, "/settings/fields", {"entity": "company", "label": "A only", "type": "text"})
    post(client_a, "/settings/crm", {"phone_region": "TH", "currency": "THB", "required.company": "tin"})
    post(client_a, "/settings/access", access_form(member_deal=("own", "own")))
    with acting_as(app, company_a):
        assert [f.label for f in services.custom_fields("company")] == ["A only"]
    with acting_as(app, company_b):
        assert db.session.scalar(select(Company.deleted_at).where(Company.id == theirs))
        assert [f.label for f in services.custom_fields("company")] == ["B only"]
        assert services.required_fields("company") == set() and services.phone_region() == "RU"
        assert access.rule("member", "deal") == access.Rule()
