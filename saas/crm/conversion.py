"""Lead conversion, as Bitrix24 does it: a qualified lead becomes any combination of a
contact, a company and a deal, or is linked to an existing contact or company.

Data is carried from the lead; the user's `values` fill what the lead lacks. Every target is
checked before any is kept: if one is missing a required field, nothing is created and the
error names each missing field per target.
"""
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from saas.auth.models import Membership
from saas.errors import Conflict, Invalid, NotFound
from tenants.db import db
from tenants.models import utcnow

from . import access, audit, services
from .admin import add_list_item
from .fields import Kind
from .models import Contact, ContactCompany, CustomField, Entity, Lead, LeadStatus, StageKind
from .services import FieldErrors

TARGETS = (Entity.CONTACT, Entity.COMPANY, Entity.DEAL)


def split_name(full: str | None) -> tuple[str, str]:
    parts = (full or "").split()
    return (parts[0], " ".join(parts[1:])) if parts else ("", "")


def carried_data(lead: Lead, target: str, *, pipeline_id: int | None = None) -> dict:
    """What the lead gives each target before the user adds anything."""
    common = {"responsible_id": lead.responsible_id}
    if target == Entity.CONTACT:
        first, last = split_name(lead.contact_name)
        return {**common, "first_name": first, "last_name": last, "position": lead.position,
                "phones": [lead.phone] if lead.phone else [], "emails": [lead.email] if lead.email else []}
    if target == Entity.COMPANY:
        return {**common, "name": lead.company_name, "tin": lead.tin, "address": lead.address,
                "phones": [lead.phone] if lead.phone else [], "emails": [lead.email] if lead.email else []}
    data = {**common, "title": lead.title, "currency": lead.currency}
    if lead.amount is not None:
        data["amount"] = lead.amount
    if pipeline_id:
        data["pipeline_id"] = pipeline_id
    return data


def carried_custom(lead: Lead, target: str) -> dict:
    """Lead custom values for the target's field with the same key or label and type.

    List values travel by their item's label: the target's list gains the item if it lacks it.
    """
    lead_fields = {f.key: f for f in services.custom_fields(Entity.LEAD)}
    target_fields = services.custom_fields(target)
    carried = {}
    for key, value in (lead.custom or {}).items():
        source = lead_fields.get(key)
        match = source and _matching_field(source, target_fields)
        if match is None:
            continue
        if source.type in (Kind.LIST, Kind.MULTILIST):
            labels = {item["id"]: item["label"] for item in source.options.get("items", [])}
            chosen = value if isinstance(value, list) else [value]
            value = [add_list_item(match, labels[item]) for item in chosen if item in labels]
            value = value[0] if source.type == Kind.LIST and value else value
        carried[match.key] = value
    return carried


def _matching_field(source: CustomField, candidates: list[CustomField]) -> CustomField | None:
    for candidate in candidates:
        same_name = candidate.key == source.key or candidate.label.casefold() == source.label.casefold()
        same_link = source.type != Kind.LINK or candidate.options.get("target") == source.options.get("target")
        if same_name and candidate.type == source.type and same_link:
            return candidate
    return None


@dataclass
class Plan:
    """What the conversion page shows: the carried data, duplicates found, what is missing."""

    lead: Lead
    data: dict = field(default_factory=dict)  # target → carried data
    matches: dict = field(default_factory=dict)  # target → existing records that look the same


def plan(lead_id: int, actor: Membership) -> Plan:
    lead = _open_lead(lead_id, actor, lock=False)
    result = Plan(lead)
    for target in TARGETS:
        result.data[target] = carried_data(lead, target)
    phones, emails = [lead.phone] if lead.phone else [], [lead.email] if lead.email else []
    result.matches[Entity.CONTACT] = services.find_matches(Entity.CONTACT, actor, emails=emails, phones=phones)
    result.matches[Entity.COMPANY] = services.find_matches(Entity.COMPANY, actor, emails=emails, phones=phones,
                                                           tin=lead.tin)
    return result


def _open_lead(lead_id: int, actor: Membership, *, lock: bool) -> Lead:
    lead = services.get_for_edit(Entity.LEAD, lead_id, actor, lock=lock)
    if lead.status == LeadStatus.QUALIFIED:
        raise Conflict(_l("This lead has already been converted."))
    if lead.status == LeadStatus.JUNK:
        raise Conflict(_l("This lead was marked as junk; it cannot be converted."))
    return lead


def convert(lead_id: int, actor: Membership, *, create: list[str], pipeline_id: int | None = None,
            values: dict | None = None, existing: dict | None = None) -> dict:
    """Create the chosen targets, link them, close the lead as qualified; returns their ids.

    `existing` = {"contact": id, "company": id} links records that already exist instead.
    """
    lead = _open_lead(lead_id, actor, lock=True)
    create, values, existing = list(dict.fromkeys(create or [])), values or {}, existing or {}
    _check_choice(create, existing)
    ids = {f"{target}_id": None for target in TARGETS}
    errors = {}
    with db.session.begin_nested() as savepoint:  # all targets or none
        for target in (Entity.COMPANY, Entity.CONTACT):
            if target in existing:
                ids[f"{target}_id"] = _existing(target, existing[target], actor, errors)
        for target in (Entity.COMPANY, Entity.CONTACT, Entity.DEAL):
            if target not in create:
                continue
            data = _target_data(lead, target, pipeline_id, values.get(target) or {}, ids)
            try:
                record = services.create(target, data, actor, note={"lead_id": [None, lead.id]})
                ids[f"{target}_id"] = record.id
            except FieldErrors as problem:
                errors[target] = problem.fields
        if errors:
            savepoint.rollback()
            raise FieldErrors(errors)
        _close_as_qualified(lead, ids, actor)
    return ids


def _check_choice(create: list[str], existing: dict) -> None:
    if unknown := [t for t in create if t not in TARGETS] + [t for t in existing if t not in (Entity.CONTACT, Entity.COMPANY)]:
        raise Invalid(_l("Convert into a contact, a company and/or a deal (not “%(what)s”).", what=unknown[0]),
                      field="create")
    if not create and not existing:
        raise Invalid(_l("Choose at least one: contact, company or deal."), field="create")
    if both := set(create) & set(existing):
        raise Invalid(_l("Either create a %(what)s or choose an existing one, not both.", what=sorted(both)[0]),
                      field="create")


def _existing(target: str, record_id, actor: Membership, errors: dict) -> int | None:
    try:
        return services.get(target, int(record_id), actor).id
    except (ValueError, TypeError, NotFound):
        errors[target] = {"id": [str(_l("No such record, or it is not yours to see."))]}
        return None


def _target_data(lead: Lead, target: str, pipeline_id, given: dict, ids: dict) -> dict:
    data = carried_data(lead, target, pipeline_id=pipeline_id)
    data["custom"] = {**carried_custom(lead, target), **(given.get("custom") or {})}
    data.update({key: value for key, value in given.items() if key != "custom"})
    if target == Entity.CONTACT and ids["company_id"]:
        data.setdefault("company_ids", [ids["company_id"]])
    if target == Entity.DEAL:
        if ids["company_id"]:
            data.setdefault("company_id", ids["company_id"])
        if ids["contact_id"]:
            data.setdefault("contact_ids", [ids["contact_id"]])
    return data


def _close_as_qualified(lead: Lead, ids: dict, actor: Membership) -> None:
    if ids["deal_id"]:
        deal = db.session.get(services.Deal, ids["deal_id"])
        deal.lead_id = lead.id
    if ids["contact_id"] and ids["company_id"]:
        _link_contact(ids["contact_id"], ids["company_id"], actor)
    qualified = services.final_stage(services.lead_pipeline(), StageKind.WON)
    before = {"status": lead.status, "stage_id": lead.stage_id}
    lead.status, lead.stage_id, lead.converted_at = LeadStatus.QUALIFIED, qualified.id, utcnow()
    lead.contact_id, lead.company_id, lead.deal_id = ids["contact_id"], ids["company_id"], ids["deal_id"]
    related = tuple(audit.ref(target, ids[f"{target}_id"]) for target in TARGETS if ids[f"{target}_id"])
    audit.write(Entity.LEAD, lead, "convert", actor.user_id, title=lead.title, related=related,
                changes={**audit.diff(before, {"status": lead.status, "stage_id": lead.stage_id}),
                         **{key: [None, value] for key, value in ids.items() if value}})


def _link_contact(contact_id: int, company_id: int, actor: Membership) -> None:
    """The contact joins the company, if the user may change the contact (the deal links both anyway)."""
    contact = db.session.get(Contact, contact_id)
    if not access.can_edit(contact, Entity.CONTACT, actor) or db.session.get(ContactCompany, (contact_id, company_id)):
        return
    before = services.company_ids_of(contact_id)
    db.session.add(ContactCompany(contact_id=contact_id, company_id=company_id))
    audit.write(Entity.CONTACT, contact, "update", actor.user_id, title=contact.name,
                changes={"company_ids": [before, [*before, company_id]]},
                related=(audit.ref(Entity.COMPANY, company_id),))
