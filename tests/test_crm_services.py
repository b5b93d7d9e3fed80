"""The CRM service layer: values, pipelines, conversion, access rules, history, the recycle bin.

Pages and the API are thin over these services; their own tests go through HTTP. Here each
rule is pinned once, in the tenant's real schema, including every cross-tenant attempt.
"""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from saas.crm import access, admin, audit, conversion, services
from saas.crm.models import AuditEntry, Company, Contact, Deal, Entity, LeadStatus, StageKind
from saas.crm.services import FieldErrors
from saas.errors import Conflict, Forbidden, Invalid, NotFound
from tenants.db import db
from tenants.models import utcnow

from .crm_helpers import acting_as, add_person, set_rule


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- values --------------------------------------------------------------------------------

def test_phones_in_every_local_form_are_stored_as_e164_and_the_region_is_the_tenants(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        made = services.create(Entity.COMPANY, {
            "name": "Romashka", "phones": "+7 912 345-67-89\n8 (912) 345-67-89\n912 345 67 80"}, owner)
        assert made.phones == ["+79123456789", "+79123456780"]  # the same number once
        with pytest.raises(FieldErrors) as refused:
            services.create(Entity.CONTACT, {"first_name": "Ivan", "phones": ["12"]}, owner)
        assert "not a phone number" in refused.value.fields["phones"][0]
        admin.set_phone_region(owner, "UA")
        contact = services.create(Entity.CONTACT, {"first_name": "Oksana", "phones": ["067 123 4567"]}, owner)
        assert contact.phones == ["+380671234567"]
        with pytest.raises(Invalid):
            admin.set_phone_region(owner, "XX")


def test_every_bad_field_is_named_at_once_and_nothing_is_saved(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        admin.create_custom_field(owner, Entity.COMPANY, label="Contract number", type="text", required=True)
        with pytest.raises(FieldErrors) as refused:
            services.create(Entity.COMPANY, {"name": "", "tin": "123", "emails": "not-an-email",
                                             "custom": {"no_such": 1}}, owner)
        assert set(refused.value.fields) == {"name", "tin", "emails", "custom.no_such", "custom.contract_number"}
        db.session.rollback()
        assert count(Company) == 0


def test_classification_items_must_come_from_their_own_list(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        region = admin.add_classifier_item(owner, "region", "Ural")
        source = admin.add_classifier_item(owner, "source", "Exhibition")
        made = services.create(Entity.COMPANY, {"name": "A", "region_id": region.id}, owner)
        assert made.region_id == region.id
        with pytest.raises(FieldErrors) as refused:
            services.update(Entity.COMPANY, made.id, {"region_id": source.id}, owner)
        assert "region_id" in refused.value.fields


def test_line_items_make_the_deal_amount_with_discount_and_vat_on_top(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        deal = services.create(Entity.DEAL, {"title": "Windows", "line_items": [
            {"name": "Window", "quantity": "3", "unit": "pcs", "price": "1000", "discount": "10", "vat_rate": "20"},
            {"name": "Delivery", "quantity": 1, "price": "500"}]}, owner)
        assert deal.amount == Decimal("3740.00")  # 2700 + 540 VAT + 500
        assert services.deal_totals(deal.items) == {"net": Decimal("3200.00"), "vat": Decimal("540.00"),
                                                    "total": Decimal("3740.00")}
        with pytest.raises(FieldErrors) as refused:
            services.update(Entity.DEAL, deal.id, {"line_items": [{"name": "X", "quantity": 0, "price": 1},
                                                                  {"name": "", "price": 1}]}, owner)
        assert set(refused.value.fields) == {"line_items.0", "line_items.1"}


def test_custom_fields_filter_by_equality_range_list_and_text(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        admin.create_custom_field(owner, Entity.DEAL, label="Payment", type="list", items=["Cash", "Card"])
        admin.create_custom_field(owner, Entity.DEAL, label="Area", type="number")
        admin.create_custom_field(owner, Entity.DEAL, label="Signed", type="date")
        admin.create_custom_field(owner, Entity.DEAL, label="Tags", type="multilist", items=["VIP", "Gov", "New"])
        admin.create_custom_field(owner, Entity.DEAL, label="Urgent", type="bool")
        admin.create_custom_field(owner, Entity.DEAL, label="Object", type="text")
        one = services.create(Entity.DEAL, {"title": "One", "custom": {
            "payment": "Card", "area": "120.5", "signed": "01.03.2026", "tags": ["VIP", "Gov"], "urgent": "yes",
            "object": "Warehouse on Lenina"}}, owner)
        two = services.create(Entity.DEAL, {"title": "Two", "custom": {
            "payment": "cash", "area": 80, "signed": "2026-05-10", "tags": "New", "urgent": False}}, owner)

        def found(**filters):
            return [d.id for d in services.list_records(Entity.DEAL, owner, filters, sort="title").items]

        assert found(**{"custom.payment": "Card"}) == [one.id]
        assert found(**{"custom.area.from": "100"}) == [one.id]
        assert found(**{"custom.area.to": "100"}) == [two.id]
        assert found(**{"custom.signed.from": "2026-04-01"}) == [two.id]
        assert found(**{"custom.tags": "Gov"}) == [one.id]
        assert found(**{"custom.urgent": "no"}) == [two.id]
        assert found(**{"custom.object": "lenina"}) == [one.id]
        with pytest.raises(FieldErrors) as refused:
            found(**{"custom.payment": "Barter", "custom.object.from": "1"})
        assert set(refused.value.fields) == {"custom.payment", "custom.object.from"}
        with pytest.raises(FieldErrors):
            services.list_records(Entity.DEAL, owner, {}, sort="password")


def test_lists_page_and_cap_their_count(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        for n in range(7):
            services.create(Entity.COMPANY, {"name": f"Company {n}"}, owner)
        page = services.list_records(Entity.COMPANY, owner, {}, sort="name", page=2, per_page=3)
        assert [c.name for c in page.items] == ["Company 3", "Company 4", "Company 5"]
        assert (page.total, page.pages, page.has_next, page.total_capped) == (7, 3, True, False)


# --- pipelines, stages, moves --------------------------------------------------------------

def test_a_new_company_gets_a_pipeline_and_a_lead_bar_and_stages_keep_their_order_rules(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        sales = services.pipelines()[0]
        assert [s.kind for s in sales.stages][-2:] == [StageKind.WON, StageKind.LOST]
        assert [s.kind for s in services.lead_pipeline().stages][-2:] == [StageKind.WON, StageKind.LOST]
        with pytest.raises(FieldErrors):
            admin.save_stages(owner, sales.id, [{"name": "Only", "kind": "open"}])
        with pytest.raises(FieldErrors):
            admin.save_stages(owner, sales.id, [{"name": "Won", "kind": "won"}, {"name": "A", "kind": "open"},
                                                {"name": "Lost", "kind": "lost"}])
        deal = services.create(Entity.DEAL, {"title": "Busy"}, owner)
        kept = [{"id": s.id, "name": s.name, "kind": s.kind} for s in sales.stages if s.id != deal.stage_id]
        with pytest.raises(Conflict):
            admin.save_stages(owner, sales.id, kept)


def test_moving_a_deal_to_another_pipelines_stage_moves_it_to_that_pipeline(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        sales = services.pipelines()[0]
        service = admin.create_pipeline(owner, "Service")
        deal = services.create(Entity.DEAL, {"title": "Repair", "pipeline_id": service.id}, owner)
        assert deal.stage_id == services.first_stage(service).id
        services.move_deal(deal.id, sales.stages[2].id, owner)
        assert (deal.pipeline_id, deal.stage_id) == (sales.id, sales.stages[2].id)
        with pytest.raises(FieldErrors):
            services.update(Entity.DEAL, deal.id, {"pipeline_id": service.id, "stage_id": sales.stages[1].id}, owner)
        with pytest.raises(FieldErrors):
            services.move_deal(deal.id, services.lead_pipeline().stages[0].id, owner)
        moves = [e for e in audit.timeline(Entity.DEAL, deal.id) if e.action == "stage"]
        assert moves[0].changes["stage_id"] == [service.stages[0].id, sales.stages[2].id]


def test_a_lead_goes_to_junk_only_with_a_reason_and_is_qualified_only_by_conversion(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        bar = services.lead_pipeline()
        lead = services.create(Entity.LEAD, {"title": "Call from site"}, owner)
        with pytest.raises(Invalid):
            services.move_lead(lead.id, services.final_stage(bar, StageKind.WON).id, owner)
        junk = services.final_stage(bar, StageKind.LOST).id
        with pytest.raises(FieldErrors) as refused:
            services.move_lead(lead.id, junk, owner)
        assert "junk_reason" in refused.value.fields
        services.move_lead(lead.id, junk, owner, junk_reason="Wrong number")
        assert (lead.status, lead.junk_reason) == (LeadStatus.JUNK, "Wrong number")
        with pytest.raises(Conflict):
            services.update(Entity.LEAD, lead.id, {"title": "Again"}, owner)
        with pytest.raises(Conflict):
            conversion.convert(lead.id, owner, create=["contact"])


# --- conversion ----------------------------------------------------------------------------

def new_lead(owner, **data):
    return services.create(Entity.LEAD, {"title": "Website request", "contact_name": "Petr Sidorov",
                                         "company_name": "Vector LLC", "email": "petr@vector.example",
                                         "phone": "8 912 555 11 22", "amount": "90000", **data}, owner)


def test_conversion_creates_linked_records_and_the_lead_shows_what_it_became(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        service = admin.create_pipeline(owner, "Service")
        lead = new_lead(owner)
        ids = conversion.convert(lead.id, owner, create=["contact", "company", "deal"], pipeline_id=service.id)
        deal, contact = db.session.get(Deal, ids["deal_id"]), db.session.get(Contact, ids["contact_id"])
        firm = db.session.get(Company, ids["company_id"])
        assert (deal.company_id, services.contact_ids_of(deal.id), deal.pipeline_id) == (firm.id, [contact.id], service.id)
        assert (deal.amount, deal.lead_id) == (Decimal("90000.00"), lead.id)
        assert services.company_ids_of(contact.id) == [firm.id]
        assert (contact.first_name, contact.last_name, contact.phones) == ("Petr", "Sidorov", ["+79125551122"])
        assert firm.name == "Vector LLC" and firm.emails == ["petr@vector.example"]
        assert lead.status == LeadStatus.QUALIFIED
        assert (lead.contact_id, lead.company_id, lead.deal_id) == (contact.id, firm.id, deal.id)
        converted = audit.timeline(Entity.LEAD, lead.id)[0]
        assert converted.action == "convert" and converted.changes["deal_id"] == [None, deal.id]
        assert any(e.action == "create" for e in audit.timeline(Entity.COMPANY, firm.id))
        with pytest.raises(Conflict):
            conversion.convert(lead.id, owner, create=["deal"])


def test_a_missing_required_field_stops_the_whole_conversion_and_names_each_field(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        admin.set_required_fields(owner, Entity.COMPANY, ["tin"])
        admin.create_custom_field(owner, Entity.DEAL, label="Object address", type="text", required=True)
        lead = new_lead(owner)
        with pytest.raises(FieldErrors) as refused:
            conversion.convert(lead.id, owner, create=["contact", "company", "deal"])
        assert refused.value.fields == {"company": {"tin": ["Required."]},
                                        "deal": {"custom.object_address": ["Required."]}}
        assert (count(Contact), count(Company), count(Deal)) == (0, 0, 0)
        assert lead.status == LeadStatus.OPEN
        ids = conversion.convert(lead.id, owner, create=["contact", "company", "deal"], values={
            "company": {"tin": "7707083893"}, "deal": {"custom": {"object_address": "Lenina 1"}}})
        assert db.session.get(Company, ids["company_id"]).tin == "7707083893"
        assert (count(Contact), count(Company), count(Deal)) == (1, 1, 1)


def test_an_existing_contact_and_company_are_offered_and_linked_instead_of_duplicated(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        known = services.create(Entity.CONTACT, {"first_name": "Petr", "phones": "+79125551122"}, owner)
        firm = services.create(Entity.COMPANY, {"name": "Vector", "tin": "7707083893"}, owner)
        lead = new_lead(owner, tin="7707083893")
        plan = conversion.plan(lead.id, owner)
        assert [c.id for c in plan.matches[Entity.CONTACT]] == [known.id]
        assert [c.id for c in plan.matches[Entity.COMPANY]] == [firm.id]
        ids = conversion.convert(lead.id, owner, create=["deal"],
                                 existing={"contact": known.id, "company": firm.id})
        deal = db.session.get(Deal, ids["deal_id"])
        assert (deal.company_id, services.contact_ids_of(deal.id)) == (firm.id, [known.id])
        assert services.company_ids_of(known.id) == [firm.id]
        assert count(Contact) == 1 and count(Company) == 1
        with pytest.raises(Invalid):
            conversion.convert(new_lead(owner).id, owner, create=["contact"], existing={"contact": known.id})
        with pytest.raises(Invalid):
            conversion.convert(new_lead(owner).id, owner, create=[])


def test_lead_custom_values_travel_to_matching_fields_and_lists_keep_their_items(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        admin.create_custom_field(owner, Entity.LEAD, label="Payment", type="list", items=["Cash", "Leasing"])
        admin.create_custom_field(owner, Entity.LEAD, label="Budget note", type="text")
        deal_field = admin.create_custom_field(owner, Entity.DEAL, label="Payment", type="list", items=["Card"])
        admin.create_custom_field(owner, Entity.DEAL, label="Budget note", type="number")  # another type: not carried
        lead = new_lead(owner, custom={"payment": "Leasing", "budget_note": "about 90k"})
        ids = conversion.convert(lead.id, owner, create=["deal"])
        deal = db.session.get(Deal, ids["deal_id"])
        labels = {item["id"]: item["label"] for item in deal_field.options["items"]}
        assert labels[deal.custom["payment"]] == "Leasing"
        assert "budget_note" not in deal.custom


# --- access rules --------------------------------------------------------------------------

def test_own_records_rule_hides_others_everywhere_and_forbids_creating_for_others(app, make_tenant):
    company = make_tenant()
    anna, boris = add_person(app, company), add_person(app, company)
    set_rule(app, company, "member", Entity.DEAL, "own")
    with acting_as(app, company) as owner:
        pipeline_id = services.pipelines()[0].id
        annas = services.create(Entity.DEAL, {"title": "Anna's", "responsible_id": anna.user_id}, owner).id
        boris_deal = services.create(Entity.DEAL, {"title": "Boris's", "responsible_id": boris.user_id}, owner).id
    with acting_as(app, company, anna.user_id) as member:
        assert [d.id for d in services.list_records(Entity.DEAL, member).items] == [annas]
        assert sum(c.count for c in services.board(pipeline_id, member)) == 1
        for attempt in (lambda: services.get(Entity.DEAL, boris_deal, member),
                        lambda: services.update(Entity.DEAL, boris_deal, {"title": "Mine"}, member),
                        lambda: services.move_deal(boris_deal, services.pipelines()[0].stages[1].id, member),
                        lambda: services.delete_record(Entity.DEAL, boris_deal, member)):
            with pytest.raises(NotFound):
                attempt()
        with pytest.raises(FieldErrors) as refused:
            services.create(Entity.DEAL, {"title": "For Boris", "responsible_id": boris.user_id}, member)
        assert "responsible_id" in refused.value.fields
        with pytest.raises(FieldErrors):  # handing one's own deal away leaves one's scope
            services.update(Entity.DEAL, annas, {"responsible_id": boris.user_id}, member)
        assert services.list_records(Entity.COMPANY, member).total == 0  # other types keep "all"


def test_see_all_but_edit_own_gives_a_read_only_card(app, make_tenant):
    company = make_tenant()
    anna = add_person(app, company)
    set_rule(app, company, "member", Entity.COMPANY, "all", "own")
    with acting_as(app, company) as owner:
        theirs = services.create(Entity.COMPANY, {"name": "Owner's"}, owner).id
    with acting_as(app, company, anna.user_id) as member:
        record = services.get(Entity.COMPANY, theirs, member)
        assert not access.can_edit(record, Entity.COMPANY, member)
        with pytest.raises(Forbidden):
            services.update(Entity.COMPANY, theirs, {"name": "Mine"}, member)
    with pytest.raises(Invalid):
        set_rule(app, company, "member", Entity.COMPANY, "own", "all")  # editing more than one sees


def test_department_scope_covers_colleagues_but_not_other_departments(app, make_tenant):
    company = make_tenant()
    anna, boris, clara = (add_person(app, company) for _ in range(3))
    set_rule(app, company, "member", Entity.CONTACT, "department")
    with acting_as(app, company) as owner:
        sales, support = admin.create_department(owner, "Sales"), admin.create_department(owner, "Support")
        admin.assign_department(owner, anna.user_id, sales.id)
        admin.assign_department(owner, boris.user_id, sales.id)
        admin.assign_department(owner, clara.user_id, support.id)
        ids = {person.user_id: services.create(Entity.CONTACT, {"first_name": "Of", "responsible_id": person.user_id},
                                               owner).id for person in (anna, boris, clara)}
    with acting_as(app, company, anna.user_id) as member:
        visible = {c.id for c in services.list_records(Entity.CONTACT, member).items}
        assert visible == {ids[anna.user_id], ids[boris.user_id]}


def test_only_managers_change_settings(app, make_tenant):
    company = make_tenant()
    anna = add_person(app, company)
    with acting_as(app, company, anna.user_id) as member:
        for attempt in (lambda: admin.create_pipeline(member, "Mine"),
                        lambda: admin.create_custom_field(member, Entity.DEAL, label="X", type="text"),
                        lambda: admin.set_access_rule(member, "member", Entity.DEAL, see="all", edit="all"),
                        lambda: admin.reassign_records(member, anna.user_id, company.owner_id)):
            with pytest.raises(Forbidden):
                attempt()


def test_a_leaving_employees_records_go_to_someone_else_with_history(app, make_tenant):
    company = make_tenant()
    leaving, staying = add_person(app, company), add_person(app, company)
    with acting_as(app, company) as owner:
        for n in range(3):
            services.create(Entity.DEAL, {"title": f"D{n}", "responsible_id": leaving.user_id}, owner)
        services.create(Entity.COMPANY, {"name": "C", "responsible_id": leaving.user_id}, owner)
        moved = admin.reassign_records(owner, leaving.user_id, staying.user_id)
        assert moved == {Entity.LEAD: 0, Entity.CONTACT: 0, Entity.COMPANY: 1, Entity.DEAL: 3}
        assert admin.records_held_by(leaving.user_id) == dict.fromkeys(Entity.ALL, 0)
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.changes.has_key("responsible_id"),
                                                              AuditEntry.action == "update")).all()
        assert len(entries) == 4 and all(e.changes["responsible_id"] == [leaving.user_id, staying.user_id]
                                         for e in entries)


# --- history and the recycle bin -----------------------------------------------------------

def test_changes_are_logged_field_by_field_and_show_on_related_cards(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        firm = services.create(Entity.COMPANY, {"name": "Romashka"}, owner)
        deal = services.create(Entity.DEAL, {"title": "Supply", "company_id": firm.id, "amount": "100"}, owner)
        services.update(Entity.DEAL, deal.id, {"title": "Supply of pipes", "amount": "150.5", "notes": ""}, owner)
        change = audit.timeline(Entity.DEAL, deal.id)[0]
        assert (change.action, change.user_id) == ("update", company.owner_id)
        assert change.changes == {"title": ["Supply", "Supply of pipes"], "amount": ["100.00", "150.50"]}
        assert [e.action for e in audit.timeline(Entity.COMPANY, firm.id)] == ["update", "create", "create"]


def test_deleted_records_wait_30_days_in_the_recycle_bin_then_are_purged(app, make_tenant):
    from saas.maintenance import purge_recycle_bins

    company = make_tenant()
    with acting_as(app, company) as owner:
        kept = services.create(Entity.COMPANY, {"name": "Restored"}, owner)
        doomed = services.create(Entity.COMPANY, {"name": "Doomed"}, owner)
        for record in (kept, doomed):
            services.delete_record(Entity.COMPANY, record.id, owner)
        assert services.list_records(Entity.COMPANY, owner).total == 0
        with pytest.raises(NotFound):
            services.get(Entity.COMPANY, kept.id, owner)
        assert {e.record.id for e in services.recycle_bin(owner)} == {kept.id, doomed.id}
        services.restore_record(Entity.COMPANY, kept.id, owner)
        assert services.get(Entity.COMPANY, kept.id, owner).name == "Restored"
        db.session.execute(update(Company).where(Company.id == doomed.id)
                           .values(deleted_at=utcnow() - timedelta(days=31)))
        doomed_id, kept_id = doomed.id, kept.id
    with app.app_context():
        assert purge_recycle_bins(echo=lambda message: None) >= 1
    with acting_as(app, company):
        assert db.session.get(Company, doomed_id) is None
        assert audit.timeline(Entity.COMPANY, kept_id)[0].action == "restore"


def test_merging_fills_empty_fields_and_adds_phones(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        firm = services.create(Entity.COMPANY, {"name": "Vector", "phones": "+79120000001"}, owner)
        services.merge_into(Entity.COMPANY, firm.id, {"name": "VECTOR LLC", "tin": "7707083893",
                                                      "phones": "8 912 000 00 02"}, owner)
        assert (firm.name, firm.tin, firm.phones) == ("Vector", "7707083893", ["+79120000001", "+79120000002"])
        assert audit.timeline(Entity.COMPANY, firm.id)[0].action == "merge"


# --- tenant isolation ----------------------------------------------------------------------

def test_one_company_can_never_reach_anothers_records_fields_or_settings(app, make_tenant):
    a, b = make_tenant(name="A"), make_tenant(name="B")
    with acting_as(app, b) as owner_b:
        admin.create_custom_field(owner_b, Entity.DEAL, label="Secret", type="text")
        b_firm = services.create(Entity.COMPANY, {"name": "B's client", "tin": "7707083893"}, owner_b)
        b_contact = services.create(Entity.CONTACT, {"first_name": "B", "emails": "b@b.example"}, owner_b)
        b_lead = new_lead(owner_b)
        b_deal = services.create(Entity.DEAL, {"title": "B's deal", "company_id": b_firm.id}, owner_b)
        b_ids = (b_firm.id, b_contact.id, b_lead.id, b_deal.id)
        b_lead_id, b_deal_id = b_lead.id, b_deal.id
    with acting_as(app, a) as owner_a:
        own_firm = services.create(Entity.COMPANY, {"name": "A's client"}, owner_a)  # ids now exist in A too
        assert services.custom_fields(Entity.DEAL) == []
        assert services.find_matches(Entity.COMPANY, owner_a, tin="7707083893") == []
        assert services.find_matches(Entity.CONTACT, owner_a, emails=["b@b.example"]) == []
        for entity in Entity.ALL:
            assert all(r.id == own_firm.id for r in services.list_records(entity, owner_a).items)
        with pytest.raises(FieldErrors):  # B's custom field key is unknown here
            services.create(Entity.DEAL, {"title": "x", "custom": {"secret": "1"}}, owner_a)
        db.session.rollback()
    with acting_as(app, a) as owner_a:
        for entity, record_id in zip((Entity.COMPANY, Entity.CONTACT, Entity.LEAD, Entity.DEAL), b_ids):
            if record_id == own_firm.id and entity == Entity.COMPANY:
                continue
            with pytest.raises(NotFound):
                services.get(entity, record_id, owner_a)
        with pytest.raises(NotFound):
            conversion.convert(b_lead_id, owner_a, create=["contact"])
    with acting_as(app, b) as owner_b:
        assert services.get(Entity.DEAL, b_deal_id, owner_b).title == "B's deal"
        assert services.get(Entity.LEAD, b_lead_id, owner_b).status == LeadStatus.OPEN


def test_a_refused_change_leaves_nothing_behind_for_a_later_commit(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        firm = services.create(Entity.COMPANY, {"name": "Kept"}, owner)
        with pytest.raises(FieldErrors):
            services.update(Entity.COMPANY, firm.id, {"name": "Half", "phones": "12"}, owner)
        with pytest.raises(FieldErrors):
            services.merge_into(Entity.COMPANY, firm.id, {"tin": "7707083893", "emails": "bad"}, owner)
        firm_id = firm.id
    with acting_as(app, company):
        kept = db.session.get(Company, firm_id)
        assert (kept.name, kept.tin) == ("Kept", None)
        assert [e.action for e in audit.timeline(Entity.COMPANY, firm_id)] == ["create"]


def test_list_items_keep_their_ids_when_renamed_and_removed_ones_leave_the_records(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        tags = admin.create_custom_field(owner, Entity.DEAL, label="Tags", type="multilist", items=["A", "B", "C"])
        deal = services.create(Entity.DEAL, {"title": "Tagged", "custom": {"tags": ["A", "B"]}}, owner)
        admin.update_custom_field(owner, tags.id, items=[{"id": 1, "label": "Alpha"}, {"id": 3, "label": "C"}, "D"])
        db.session.refresh(deal)
        assert deal.custom == {"tags": [1]}
        assert tags.options["items"] == [{"id": 1, "label": "Alpha"}, {"id": 3, "label": "C"}, {"id": 4, "label": "D"}]
        assert services.list_records(Entity.DEAL, owner, {"custom.tags": "Alpha"}).total == 1
