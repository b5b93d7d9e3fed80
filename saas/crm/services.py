"""CRM records: create, read, change, move along stages, delete and restore, list and board.

Everything that changes a record goes through here, in the current tenant's schema, checked
against the actor's access rules and written to the audit log; pages, the API and import
only call these functions. `data` arguments are plain dicts of field name → value as a form
or JSON carries it (`"custom": {key: value}` for custom fields); values are coerced here.
"""
from dataclasses import dataclass, field as dataclass_field
from functools import wraps
from datetime import timedelta
from decimal import Decimal

from flask_babel import gettext as _, lazy_gettext as _l
from sqlalchemy import Numeric, cast, delete, func, literal, or_, select, text
from sqlalchemy.orm import selectinload

from saas.auth.models import Membership, User
from saas.errors import Conflict, Invalid, NotFound
from saas.settings.services import get_setting, transaction_cache
from tenants.db import db
from tenants.models import utcnow
from tenants.scope import current_tenant

from . import access, audit
from .fields import STANDARD, BadValue, Field, Kind, coerce, many, to_decimal, to_json
from .models import (RECORD_MODELS, Company, Contact, ContactCompany, CustomField, Deal, DealContact, DealItem,
                     Entity, Lead, LeadStatus, ListItem, Pipeline, Stage, StageKind)

RECYCLE_DAYS = 30
MAX_AMOUNT = Decimal(10) ** 13  # amounts are numeric(16, 2)
MAX_QUANTITY = Decimal(10) ** 9
COUNT_CAP = 10_000  # lists say "10,000+" rather than count every row


class FieldErrors(Invalid):
    """Several fields are wrong at once: `fields` maps each to its messages (nested per target)."""

    def __init__(self, fields: dict):
        super().__init__(_l("Some fields are missing or invalid."))
        self._fields = fields

    @property
    def fields(self) -> dict:
        return self._fields


# --- tenant settings the records depend on -------------------------------------------------

def phone_region() -> str:
    return get_setting("crm.phone_region", "RU")


def default_currency() -> str:
    return get_setting("crm.currency", "RUB")


def required_fields(entity: str) -> set[str]:
    """Standard fields this tenant made required for `entity` (e.g. a company's TIN)."""
    return set(get_setting("crm.required", {}).get(entity, []))


def custom_fields(entity: str) -> list[CustomField]:
    """The entity's custom fields in order (read once per transaction: every record needs them)."""
    cache = transaction_cache("custom_fields")
    if entity not in cache:
        cache[entity] = list(db.session.scalars(
            select(CustomField).where(CustomField.entity == entity).order_by(CustomField.position, CustomField.id)))
    return cache[entity]


# --- people --------------------------------------------------------------------------------

def staff() -> list[tuple[int, str]]:
    """(user id, name) of the active members of the current company, for "responsible" choices."""
    rows = db.session.execute(
        select(User.id, User.name).join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == current_tenant().id, Membership.active.is_(True)).order_by(User.name))
    return [(row.id, row.name) for row in rows]


def staff_names() -> dict[int, str]:
    rows = db.session.execute(
        select(User.id, User.name).join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == current_tenant().id))
    return {row.id: row.name for row in rows}


def _is_active_member(user_id: int) -> bool:
    return db.session.scalar(select(Membership.id).where(
        Membership.tenant_id == current_tenant().id, Membership.user_id == user_id,
        Membership.active.is_(True))) is not None


# --- pipelines and stages ------------------------------------------------------------------

def _default_stages(entity: str) -> list[tuple[str, str, str]]:
    if entity == Entity.LEAD:
        return [(_("New"), StageKind.OPEN, "#4f7cac"), (_("In progress"), StageKind.OPEN, "#7a9e3d"),
                (_("Qualified"), StageKind.WON, "#2e8b57"), (_("Junk"), StageKind.LOST, "#b04a4a")]
    return [(_("New"), StageKind.OPEN, "#4f7cac"), (_("Proposal"), StageKind.OPEN, "#6a8fc0"),
            (_("Negotiation"), StageKind.OPEN, "#c09a3e"), (_("Contract"), StageKind.OPEN, "#8e6ac0"),
            (_("Won"), StageKind.WON, "#2e8b57"), (_("Lost"), StageKind.LOST, "#b04a4a")]


def ensure_default_pipeline(entity: str) -> bool:
    """A new company gets one deal pipeline and the lead stage bar, named in the language of
    whoever looks first. True when they were created now (the caller commits to keep them)."""
    checked = transaction_cache("default_pipelines")
    if entity in checked:
        return False
    checked[entity] = True
    exists = select(Pipeline.id).where(Pipeline.entity == entity).limit(1)
    if db.session.scalar(exists) is not None:
        return False
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('crm-default-pipelines'))"))
    if db.session.scalar(exists) is not None:
        return False
    name = _("Leads") if entity == Entity.LEAD else _("Sales")
    pipeline = Pipeline(entity=entity, name=name, position=0,
                        stages=[Stage(name=n, kind=k, color=c, position=i)
                                for i, (n, k, c) in enumerate(_default_stages(entity))])
    db.session.add(pipeline)
    db.session.flush()
    return True


def pipelines(entity: str = Entity.DEAL) -> list[Pipeline]:
    ensure_default_pipeline(entity)
    return list(db.session.scalars(
        select(Pipeline).where(Pipeline.entity == entity).order_by(Pipeline.position, Pipeline.id)
        .options(selectinload(Pipeline.stages))))


def pipeline(pipeline_id: int, entity: str = Entity.DEAL) -> Pipeline:
    found = db.session.get(Pipeline, pipeline_id)
    if found is None or found.entity != entity:
        raise NotFound(_l("No such pipeline."))
    return found


def lead_pipeline() -> Pipeline:
    return pipelines(Entity.LEAD)[0]


def first_stage(pipeline_: Pipeline) -> Stage:
    return next(stage for stage in pipeline_.stages if stage.kind == StageKind.OPEN)


def final_stage(pipeline_: Pipeline, kind: str) -> Stage:
    return next(stage for stage in pipeline_.stages if stage.kind == kind)


# --- reading records -----------------------------------------------------------------------

def model_of(entity: str):
    try:
        return RECORD_MODELS[entity]
    except KeyError:
        raise NotFound(_l("No such kind of record."))


def get(entity: str, record_id: int, actor: Membership):
    """A live record the actor may see (NotFound otherwise: the same for others' and missing)."""
    return access.require_visible(db.session.get(model_of(entity), record_id), entity, actor)


def get_for_edit(entity: str, record_id: int, actor: Membership, *, lock: bool = False):
    record = db.session.get(model_of(entity), record_id, with_for_update=lock or None)
    return access.require_edit(record, entity, actor)


def company_ids_of(contact_id: int) -> list[int]:
    return list(db.session.scalars(
        select(ContactCompany.company_id).where(ContactCompany.contact_id == contact_id)
        .order_by(ContactCompany.company_id)))


def contact_ids_of(deal_id: int) -> list[int]:
    return list(db.session.scalars(
        select(DealContact.contact_id).where(DealContact.deal_id == deal_id).order_by(DealContact.contact_id)))


def values(entity: str, record) -> dict:
    """Every field's stored value (links as id lists), the shape the audit log and exports read."""
    result = {}
    for spec in STANDARD[entity]:
        if spec.kind == Kind.COMPANIES:
            result[spec.name] = company_ids_of(record.id) if record.id else []
        elif spec.kind == Kind.CONTACTS:
            result[spec.name] = contact_ids_of(record.id) if record.id else []
        else:
            result[spec.name] = getattr(record, spec.name)
    if entity == Entity.DEAL:
        result["line_items"] = [item_values(item) for item in record.items]
    for key, value in (record.custom or {}).items():
        result[f"custom.{key}"] = value
    return result


def item_values(item: DealItem) -> dict:
    return {"name": item.name, "quantity": item.quantity, "unit": item.unit, "price": item.price,
            "discount": item.discount, "vat_rate": item.vat_rate}


def item_totals(item) -> dict:
    """Net = quantity × price less the discount; VAT is added on top of net."""
    net = (Decimal(item.quantity) * Decimal(item.price) * (100 - Decimal(item.discount)) / 100).quantize(Decimal("0.01"))
    vat = (net * Decimal(item.vat_rate) / 100).quantize(Decimal("0.01"))
    return {"net": net, "vat": vat, "total": net + vat}


def deal_totals(items) -> dict:
    totals = [item_totals(item) for item in items]
    return {key: sum((t[key] for t in totals), Decimal("0.00")) for key in ("net", "vat", "total")}


def title_of(entity: str, record) -> str:
    return record.name if entity in (Entity.COMPANY, Entity.CONTACT) else record.title


def related_refs(entity: str, record) -> tuple[str, ...]:
    """The other cards an event on this record also shows on."""
    if entity == Entity.DEAL:
        refs = [audit.ref(Entity.CONTACT, cid) for cid in contact_ids_of(record.id)]
        if record.company_id:
            refs.append(audit.ref(Entity.COMPANY, record.company_id))
        if record.lead_id:
            refs.append(audit.ref(Entity.LEAD, record.lead_id))
        return tuple(refs)
    if entity == Entity.CONTACT:
        return tuple(audit.ref(Entity.COMPANY, cid) for cid in company_ids_of(record.id))
    return ()


# --- writing records -----------------------------------------------------------------------

def atomic(operation):
    """Run in a savepoint: a refused change leaves nothing half-applied in the session, so a
    caller that goes on (an import's next row) never commits part of it."""
    @wraps(operation)
    def wrapper(*args, **kwargs):
        with db.session.begin_nested():
            return operation(*args, **kwargs)
    return wrapper


class _Values:
    """Coerces a data dict field by field, collecting every problem rather than stopping at one."""

    def __init__(self, entity: str, record, actor: Membership):
        self.entity, self.record, self.actor, self.errors = entity, record, actor, {}
        self.region = phone_region()

    def fail(self, name: str, message) -> None:
        self.errors.setdefault(name, []).append(str(message))

    def standard(self, spec: Field, raw):
        try:
            value = coerce(spec.kind, raw, region=self.region)
            _check_length(model_of(self.entity), spec.name, value)
            return self._check_reference(spec, value)
        except BadValue as problem:
            self.fail(spec.name, problem)
            return _INVALID

    def _check_reference(self, spec: Field, value):
        """References must point at something this tenant has and the actor may see."""
        if value is None or value == []:
            return value
        if spec.kind == Kind.USER and not _is_active_member(value):
            raise BadValue(_l("Choose an active employee."))
        if spec.kind == Kind.CLASSIFIER:
            item = db.session.get(ListItem, value)
            if item is None or item.list_key != spec.list_key:
                raise BadValue(_l("Choose from the list."))
        if spec.kind in (Kind.COMPANY, Kind.COMPANIES, Kind.CONTACTS):
            target = Entity.CONTACT if spec.kind == Kind.CONTACTS else Entity.COMPANY
            _require_visible_ids(target, self._new_links(spec.name, value), self.actor)
        return value

    def _new_links(self, name: str, value) -> list[int]:
        """Ids not linked already: a link someone else made to a record one cannot see may stay."""
        wanted = value if isinstance(value, list) else [value]
        if self.record.id is None:
            return wanted
        linked = values(self.entity, self.record)[name]
        linked = set(linked if isinstance(linked, list) else [linked])
        return [i for i in wanted if i not in linked]

    def custom(self, definition: CustomField, raw):
        try:
            value = coerce(definition.type, raw, region=self.region, options=definition.options)
            already = (self.record.custom or {}).get(definition.key)
            if definition.type == Kind.LINK and value is not None and value != already:
                _require_visible_ids(definition.options.get("target", ""), [value], self.actor)
            return to_json(value)
        except BadValue as problem:
            self.fail(f"custom.{definition.key}", problem)
            return _INVALID


_INVALID = object()


def _check_length(model, name: str, value) -> None:
    """Text must fit its column (a 500 from the database is no answer for a person)."""
    column = model.__table__.columns.get(name)
    limit = getattr(column.type, "length", None) if column is not None else None
    if isinstance(value, str) and limit and len(value) > limit:
        raise BadValue(_l("Too long: %(n)d characters at most.", n=limit))


def _require_visible_ids(entity: str, ids: list[int], actor: Membership) -> None:
    model = RECORD_MODELS.get(entity)
    if model is None:
        raise BadValue(_l("Choose a record."))
    found = set(db.session.scalars(select(model.id).where(model.id.in_(ids), access.visible(model, entity, actor))))
    if missing := [i for i in ids if i not in found]:
        raise BadValue(_l("No such record: %(ids)s.", ids=", ".join(f"#{i}" for i in missing)))


def _is_empty(value) -> bool:
    return value is None or value == [] or value == "" or value is _INVALID


def _apply(entity: str, record, data: dict, actor: Membership, *, creating: bool) -> dict:
    """Set `data` on `record`; returns the link lists to store after flush. Raises FieldErrors."""
    checker = _Values(entity, record, actor)
    links = {}
    for spec in STANDARD[entity]:
        if spec.name not in data or spec.kind in (Kind.PIPELINE, Kind.STAGE):  # deals place themselves
            continue
        value = checker.standard(spec, data[spec.name])
        if value is _INVALID:
            continue
        if spec.required and _is_empty(value):  # refused now: set on the record, a later autoflush breaks NOT NULL
            checker.fail(spec.name, _l("Required."))
            continue
        if spec.kind in (Kind.COMPANIES, Kind.CONTACTS):
            links[spec.name] = value
        else:
            setattr(record, spec.name, value)
    custom = dict(record.custom or {})
    definitions = {d.key: d for d in custom_fields(entity)}
    for key, raw in (data.get("custom") or {}).items():
        if key not in definitions:
            checker.fail(f"custom.{key}", _l("There is no such field."))
            continue
        value = checker.custom(definitions[key], raw)
        if value is _INVALID:
            continue
        if _is_empty(value):
            custom.pop(key, None)
        else:
            custom[key] = value
    record.custom = custom
    if entity == Entity.DEAL:
        _apply_deal(record, data, checker, creating=creating)
    if entity == Entity.LEAD and creating:
        record.stage_id = first_stage(lead_pipeline()).id
    if creating and record.responsible_id is None:
        record.responsible_id = actor.user_id
    if creating and not access.may_create_for(record.responsible_id, entity, actor):
        checker.fail("responsible_id", _l("You may only create records for yourself."))
    if entity in (Entity.DEAL, Entity.LEAD) and not getattr(record, "currency", None):
        record.currency = default_currency()
    _check_required(entity, record, links, definitions, checker)
    if checker.errors:
        raise FieldErrors(checker.errors)
    return links


def _apply_deal(deal: Deal, data: dict, checker: _Values, *, creating: bool) -> None:
    """Pipeline and stage go together; line items, when given, make the amount."""
    if creating or not _is_empty(data.get("stage_id")) or not _is_empty(data.get("pipeline_id")):
        _place_deal(deal, data, checker)
    if "line_items" in data:
        items = _line_items(data["line_items"], checker)
        if items and deal_totals(items)["total"] >= MAX_AMOUNT:
            checker.fail("line_items", _l("The deal's total is too large."))
        elif items is not None:
            deal.items = items
            if items:
                deal.amount = deal_totals(items)["total"]
    if deal.amount is None:
        deal.amount = Decimal("0.00")


def _place_deal(deal: Deal, data: dict, checker: _Values) -> None:
    """A stage decides its pipeline; a pipeline alone means its first stage; neither, the first pipeline."""
    stage = chosen = None
    try:
        if not _is_empty(data.get("stage_id")):
            stage = db.session.get(Stage, coerce(Kind.STAGE, data["stage_id"]))
            if stage is None or stage.pipeline.entity != Entity.DEAL:
                raise BadValue(_l("Choose a stage of a deal pipeline."))
    except BadValue as problem:
        return checker.fail("stage_id", problem)
    try:
        if not _is_empty(data.get("pipeline_id")):
            chosen = db.session.get(Pipeline, coerce(Kind.PIPELINE, data["pipeline_id"]))
            if chosen is None or chosen.entity != Entity.DEAL:
                raise BadValue(_l("No such pipeline."))
    except BadValue as problem:
        return checker.fail("pipeline_id", problem)
    if stage is not None and chosen is not None and chosen.id != stage.pipeline_id:
        return checker.fail("stage_id", _l("This stage belongs to another pipeline."))
    if stage is None and chosen is not None and chosen.id == deal.pipeline_id:
        return  # the same pipeline again: the deal stays on its stage
    if stage is None:
        chosen = chosen or pipelines(Entity.DEAL)[0]
        stage = first_stage(chosen)
    deal.pipeline_id, deal.stage_id = stage.pipeline_id, stage.id


def _line_items(raw, checker: _Values) -> list[DealItem] | None:
    if not isinstance(raw, list):
        checker.fail("line_items", _l("Give line items as a list."))
        return None
    items, ok = [], True
    for index, line in enumerate(raw):
        if not isinstance(line, dict):
            checker.fail(f"line_items.{index}", _l("Give each line as an object."))
            ok = False
            continue
        try:
            name = coerce(Kind.TEXT, line.get("name"))
            if not name:
                raise BadValue(_l("Name the product or service."))
            unit = coerce(Kind.TEXT, line.get("unit")) or ""
            _check_length(DealItem, "unit", unit)
            item = DealItem(position=index, name=name, unit=unit,
                            quantity=to_decimal(line.get("quantity", 1), places=3),
                            price=to_decimal(line.get("price", 0)),
                            discount=to_decimal(line.get("discount") or 0), vat_rate=to_decimal(line.get("vat_rate") or 0))
            if not (0 < item.quantity < MAX_QUANTITY) or item.price < 0 or not (0 <= item.discount <= 100) \
                    or not (0 <= item.vat_rate <= 100):
                raise BadValue(_l("Quantity must be positive, price not negative, discount and VAT 0–100 %."))
            if item_totals(item)["total"] >= MAX_AMOUNT:
                raise BadValue(_l("This line's total is too large."))
            items.append(item)
        except BadValue as problem:
            checker.fail(f"line_items.{index}", problem)
            ok = False
    return items if ok else None


def _check_required(entity: str, record, links: dict, definitions: dict, checker: _Values) -> None:
    tenant_required = required_fields(entity)
    for spec in STANDARD[entity]:
        if not (spec.required or spec.name in tenant_required) or spec.name in checker.errors:
            continue
        if spec.kind in (Kind.COMPANIES, Kind.CONTACTS):
            value = links.get(spec.name, values(entity, record)[spec.name] if record.id else [])
        else:
            value = getattr(record, spec.name)
        if _is_empty(value):
            checker.fail(spec.name, _l("Required."))
    for definition in definitions.values():
        key = f"custom.{definition.key}"
        if definition.required and key not in checker.errors and _is_empty(record.custom.get(definition.key)):
            checker.fail(key, _l("Required."))


def _store_links(entity: str, record, links: dict) -> None:
    if "company_ids" in links:
        db.session.execute(delete(ContactCompany).where(ContactCompany.contact_id == record.id))
        db.session.add_all(ContactCompany(contact_id=record.id, company_id=cid) for cid in links["company_ids"])
    if "contact_ids" in links:
        db.session.execute(delete(DealContact).where(DealContact.deal_id == record.id))
        db.session.add_all(DealContact(deal_id=record.id, contact_id=cid) for cid in links["contact_ids"])
    if links:
        db.session.flush()


@atomic
def create(entity: str, data: dict, actor: Membership, *, note: dict | None = None):
    """A new record from `data`; FieldErrors names every field that is wrong or missing."""
    record = model_of(entity)()
    links = _apply(entity, record, data, actor, creating=True)
    record.created_by = actor.user_id
    db.session.add(record)
    db.session.flush()
    _store_links(entity, record, links)
    audit.write(entity, record, "create", actor.user_id, title=title_of(entity, record),
                changes={**audit.diff({}, values(entity, record)), **(note or {})},
                related=related_refs(entity, record))
    return record


@atomic
def update(entity: str, record_id: int, data: dict, actor: Membership):
    """Change the fields in `data` (others stay); a stage change is logged as a move."""
    record = get_for_edit(entity, record_id, actor, lock=True)
    if entity == Entity.LEAD and record.status != LeadStatus.OPEN:
        raise Conflict(_l("This lead is closed; it can no longer be changed."))
    if entity == Entity.LEAD and "stage_id" in data:
        raise Invalid(_l("Move a lead along its stage bar with the stage buttons."), field="stage_id")
    before = values(entity, record)
    old_stage = getattr(record, "stage_id", None)
    links = _apply(entity, record, data, actor, creating=False)
    if not access.can_edit(record, entity, actor):  # e.g. handed to someone outside one's scope
        raise FieldErrors({"responsible_id": [str(_l("You may only give records to people within your scope."))]})
    _store_links(entity, record, links)
    db.session.flush()
    changes = audit.diff(before, values(entity, record))
    if entity == Entity.DEAL and record.stage_id != old_stage:
        record.stage_changed_at = utcnow()
    if changes:
        action = "stage" if set(changes) <= {"stage_id", "pipeline_id"} else "update"
        audit.write(entity, record, action, actor.user_id, title=title_of(entity, record), changes=changes,
                    related=related_refs(entity, record))
    return record


def move_deal(deal_id: int, stage_id: int, actor: Membership) -> Deal:
    """One click on the stage bar or a drop on the board: the stage may be in another pipeline."""
    return update(Entity.DEAL, deal_id, {"stage_id": stage_id}, actor)


@atomic
def move_lead(lead_id: int, stage_id: int, actor: Membership, *, junk_reason: str | None = None) -> Lead:
    """Along the lead's stage bar; the junk stage needs a reason, the qualified one a conversion."""
    lead = get_for_edit(Entity.LEAD, lead_id, actor, lock=True)
    if lead.status != LeadStatus.OPEN:
        raise Conflict(_l("This lead is closed; it can no longer be moved."))
    stage = db.session.get(Stage, stage_id)
    if stage is None or stage.pipeline.entity != Entity.LEAD:
        raise Invalid(_l("Choose a stage of the lead bar."), field="stage_id")
    if stage.kind == StageKind.WON:
        raise Invalid(_l("Convert the lead to qualify it."), field="stage_id")
    changes = {"stage_id": [lead.stage_id, stage.id]}
    if stage.kind == StageKind.LOST:
        reason = (junk_reason or "").strip()
        if not reason:
            raise FieldErrors({"junk_reason": [str(_l("Say why the lead is junk."))]})
        lead.status, lead.junk_reason = LeadStatus.JUNK, reason[:2000]
        changes.update(status=[LeadStatus.OPEN, LeadStatus.JUNK], junk_reason=[None, lead.junk_reason])
    lead.stage_id = stage.id
    audit.write(Entity.LEAD, lead, "stage", actor.user_id, title=lead.title, changes=changes)
    return lead


PHOTO_LIMIT = 1024 * 1024
PHOTO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}


@atomic
def set_contact_photo(contact_id: int, content: bytes | None, actor: Membership) -> Contact:
    """A contact's photo: PNG, JPEG or WebP up to 1 MB, recognised by its bytes, not its name."""
    contact = get_for_edit(Entity.CONTACT, contact_id, actor, lock=True)
    if content:
        if len(content) > PHOTO_LIMIT:
            raise Invalid(_l("The photo is larger than 1 MB. Send a smaller one."), field="photo")
        kind = next((kind for magic, kind in PHOTO_TYPES.items() if content.startswith(magic)), None)
        if kind is None or (kind == "image/webp" and content[8:12] != b"WEBP"):
            raise Invalid(_l("Send a PNG, JPEG or WebP picture."), field="photo")
    contact.photo, contact.photo_type = (content, kind) if content else (None, None)
    audit.write(Entity.CONTACT, contact, "update", actor.user_id, title=contact.name,
                changes={"photo": [None, "new"] if content else ["removed", None]})
    return contact


# --- recycle bin ---------------------------------------------------------------------------

@atomic
def delete_record(entity: str, record_id: int, actor: Membership) -> None:
    """To the recycle bin: hidden everywhere, restorable for RECYCLE_DAYS days."""
    record = get_for_edit(entity, record_id, actor, lock=True)
    record.deleted_at, record.deleted_by = utcnow(), actor.user_id
    audit.write(entity, record, "delete", actor.user_id, title=title_of(entity, record),
                related=related_refs(entity, record))


@dataclass
class BinEntry:
    entity: str
    record: object
    purge_on: object


def recycle_bin(actor: Membership) -> list[BinEntry]:
    """Deleted records the actor may restore (those they could edit), newest first."""
    entries = []
    for entity, model in RECORD_MODELS.items():
        edit_scope = access.rule(actor.role, entity).edit
        scope = access._scope_clause(model, edit_scope, actor)
        for record in db.session.scalars(select(model).where(model.deleted_at.is_not(None), scope)
                                         .order_by(model.deleted_at.desc()).limit(500)):
            entries.append(BinEntry(entity, record, record.deleted_at + timedelta(days=RECYCLE_DAYS)))
    return sorted(entries, key=lambda e: e.record.deleted_at, reverse=True)


@atomic
def restore_record(entity: str, record_id: int, actor: Membership):
    model = model_of(entity)
    record = db.session.get(model, record_id, with_for_update=True)
    if record is None or record.deleted_at is None:
        raise NotFound(_l("This record is not in the recycle bin."))
    if not access._within(record, access.rule(actor.role, entity).edit, actor):
        raise NotFound(_l("This record is not in the recycle bin."))
    record.deleted_at = record.deleted_by = None
    audit.write(entity, record, "restore", actor.user_id, title=title_of(entity, record),
                related=related_refs(entity, record))
    return record


def purge_expired(now=None) -> int:
    """Remove for good what has been in the recycle bin longer than RECYCLE_DAYS; returns how many."""
    cutoff = (now or utcnow()) - timedelta(days=RECYCLE_DAYS)
    purged = 0
    for entity in (Entity.LEAD, Entity.DEAL, Entity.CONTACT, Entity.COMPANY):  # deals before their companies
        model = RECORD_MODELS[entity]
        rows = db.session.execute(delete(model).where(model.deleted_at < cutoff).returning(model.id))
        purged += len(rows.all())
    return purged


# --- duplicates and merging ----------------------------------------------------------------

def find_matches(entity: str, actor: Membership, *, emails=(), phones=(), tin=None, limit: int = 5) -> list:
    """Live records the actor may see sharing an email, a phone or the TIN (duplicate candidates)."""
    model = model_of(entity)
    region = phone_region()
    emails = [e for e in (_try(Kind.EMAIL, e, region) for e in emails) if e]
    phones = [p for p in (_try(Kind.PHONE, p, region) for p in phones) if p]
    conditions = []
    if emails and hasattr(model, "emails"):
        conditions.append(model.emails.overlap(emails))
    if phones and hasattr(model, "phones"):
        conditions.append(model.phones.overlap(phones))
    tin = _try(Kind.TIN, tin, region) if tin else None  # an invalid TIN must not match every "tin IS NULL"
    if tin and hasattr(model, "tin"):
        conditions.append(model.tin == tin)
    if not conditions:
        return []
    return list(db.session.scalars(select(model).where(or_(*conditions), access.visible(model, entity, actor))
                                   .order_by(model.id).limit(limit)))


def _try(kind: str, raw, region: str):
    try:
        return coerce(kind, raw, region=region)
    except BadValue:
        return None


@atomic
def merge_into(entity: str, record_id: int, data: dict, actor: Membership):
    """Fill the existing record's empty fields from `data`; phones and emails are added to its own."""
    record = get_for_edit(entity, record_id, actor, lock=True)
    current = values(entity, record)
    fill = {}
    for spec in STANDARD[entity]:
        if spec.name not in data or spec.kind == Kind.USER:
            continue
        if spec.kind in (Kind.PHONES, Kind.EMAILS):
            fill[spec.name] = [*current[spec.name], *many(data[spec.name])]
        elif _is_empty(current[spec.name]):
            fill[spec.name] = data[spec.name]
    custom = {key: value for key, value in (data.get("custom") or {}).items()
              if _is_empty((record.custom or {}).get(key))}
    if custom:
        fill["custom"] = custom
    before = current
    links = _apply(entity, record, fill, actor, creating=False)
    _store_links(entity, record, links)
    db.session.flush()
    audit.write(entity, record, "merge", actor.user_id, title=title_of(entity, record),
                changes=audit.diff(before, values(entity, record)), related=related_refs(entity, record))
    return record


# --- lists and the board -------------------------------------------------------------------

SORTS = {
    Entity.COMPANY: ("name", "created_at", "updated_at"),
    Entity.CONTACT: ("last_name", "created_at", "updated_at", "birthday"),
    Entity.DEAL: ("title", "amount", "close_date", "created_at", "updated_at"),
    Entity.LEAD: ("title", "created_at", "updated_at"),
}
DEFAULT_SORT = "-updated_at"


@dataclass
class Page:
    items: list
    total: int
    total_capped: bool
    page: int
    per_page: int
    sort: str
    filters: dict = dataclass_field(default_factory=dict)

    @property
    def has_next(self) -> bool:
        return self.page * self.per_page < self.total

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


FILTER_KEYS = ("q", "stage_id", "pipeline_id", "responsible_id", "company_id", "status",
               "created_from", "created_to", "updated_from", "updated_to", "close_from", "close_to")


def filters_from(args) -> dict:
    """The list filters in a query string (pages, the API and export read them alike)."""
    return {key: value for key, value in args.items()
            if (key in FILTER_KEYS or key.startswith("custom.")) and value not in (None, "")}


def filter_clauses(entity: str, filters: dict) -> list:
    """WHERE clauses for the list filters: standard ones and `custom.<key>` (with `.from`/`.to` ranges).

    Filters that cannot be read are reported as FieldErrors, never silently ignored.
    """
    model, clauses, errors = model_of(entity), [], {}
    definitions = {d.key: d for d in custom_fields(entity)}
    for name, raw in filters.items():
        if raw is None or raw == "" or raw == []:
            continue
        try:
            if "\x00" in str(raw):
                raise BadValue(_l("Enter text."))
            clauses.append(_filter_clause(entity, model, name, raw, definitions))
        except BadValue as problem:
            errors[name] = [str(problem)]
    if errors:
        raise FieldErrors(errors)
    return clauses


def _filter_clause(entity: str, model, name: str, raw, definitions: dict):
    if name == "q":
        pattern = f"%{_escape_like(str(raw).strip())}%"
        columns = {Entity.COMPANY: [Company.name, Company.tin], Entity.CONTACT: [Contact.first_name, Contact.last_name],
                   Entity.DEAL: [Deal.title], Entity.LEAD: [Lead.title, Lead.contact_name, Lead.company_name]}[entity]
        return or_(*(column.ilike(pattern) for column in columns))
    if name in ("created_from", "created_to", "updated_from", "updated_to", "close_from", "close_to"):
        column_name, bound = name.rsplit("_", 1)
        column = {"created": model.created_at, "updated": model.updated_at,
                  "close": getattr(model, "close_date", None)}[column_name]
        if column is None:
            raise BadValue(_l("There is no such filter."))
        day = coerce(Kind.DATE, raw)
        if column_name == "close":
            return column >= day if bound == "from" else column <= day
        # Day bounds rather than date(column): the index on the timestamp serves them.
        return column >= day if bound == "from" else column < day + timedelta(days=1)
    if name in ("stage_id", "pipeline_id", "responsible_id", "company_id"):
        contacts_of_companies = name == "company_id" and entity == Entity.CONTACT  # through contact_companies
        if not hasattr(model, name) and not contacts_of_companies:
            raise BadValue(_l("There is no such filter."))
        ids = coerce(Kind.COMPANIES, raw)
        if contacts_of_companies:
            return model.id.in_(select(ContactCompany.contact_id).where(ContactCompany.company_id.in_(ids)))
        return getattr(model, name).in_(ids)
    if name == "status" and entity == Entity.LEAD:
        return model.status == str(raw)
    if name.startswith("custom."):
        return _custom_filter(model, name.removeprefix("custom."), raw, definitions)
    raise BadValue(_l("There is no such filter."))


def _custom_filter(model, key: str, raw, definitions: dict):
    key, _dot, bound = key.partition(".")
    definition = definitions.get(key)
    if definition is None:
        raise BadValue(_l("There is no such field."))
    kind, options = definition.type, definition.options
    if bound in ("from", "to"):
        if kind not in (Kind.NUMBER, Kind.MONEY, Kind.DATE):
            raise BadValue(_l("Only numbers, money and dates filter by range."))
        if kind == Kind.DATE:
            value = coerce(Kind.DATE, raw).isoformat()
            column = model.custom[key].astext  # ISO dates compare as text
        else:
            value = to_decimal(raw, places=6)
            column = cast(model.custom[key].astext, Numeric())
        return column >= value if bound == "from" else column <= value
    if kind == Kind.TEXT:
        return model.custom[key].astext.ilike(f"%{_escape_like(str(raw).strip())}%")
    if kind == Kind.MULTILIST:
        wanted = coerce(Kind.MULTILIST, raw, options=options)
        return or_(*(model.custom.contains({key: [item]}) for item in wanted))
    # Equality: served by the GIN index on custom (jsonb_path_ops).
    return model.custom.contains({key: to_json(coerce(kind, raw, options=options, region=phone_region()))})


def _escape_like(text_: str) -> str:
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _order(entity: str, model, sort: str):
    column_name = sort.lstrip("-")
    if column_name not in SORTS[entity]:
        raise FieldErrors({"sort": [str(_l("Sort by one of: %(names)s.", names=", ".join(SORTS[entity])))]})
    column = getattr(model, column_name)
    if sort.startswith("-"):
        # Records without the value last; "NULLS LAST" only where nulls can be, so the
        # (column, id) indexes serve the common sorts backwards.
        descending = column.desc().nulls_last() if model.__table__.c[column_name].nullable else column.desc()
        return [descending, model.id.desc()]
    return [column.asc(), model.id.asc()]


def list_query(entity: str, actor: Membership, filters: dict | None = None, sort: str = DEFAULT_SORT):
    """The SELECT of visible records matching `filters` in `sort` order (lists, the API and export)."""
    model = model_of(entity)
    return (select(model).where(access.visible(model, entity, actor), *filter_clauses(entity, filters or {}))
            .order_by(*_order(entity, model, sort or DEFAULT_SORT)))


def list_records(entity: str, actor: Membership, filters: dict | None = None, sort: str = DEFAULT_SORT,
                 page: int = 1, per_page: int = 50) -> Page:
    page, per_page = max(1, int(page)), min(max(1, int(per_page)), 200)
    query = list_query(entity, actor, filters, sort)
    items = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    counted = db.session.scalar(select(func.count()).select_from(
        query.order_by(None).with_only_columns(literal(1)).limit(COUNT_CAP + 1).subquery()))
    return Page(items, min(counted, COUNT_CAP), counted > COUNT_CAP, page, per_page, sort or DEFAULT_SORT,
                dict(filters or {}))


@dataclass
class Column:
    stage: Stage
    count: int
    amount: Decimal
    deals: list


def board(pipeline_id: int, actor: Membership, filters: dict | None = None, per_stage: int = 30) -> list[Column]:
    """The deal board of one pipeline: per stage, its count and sum and the newest deals."""
    chosen = pipeline(pipeline_id)
    conditions = [access.visible(Deal, Entity.DEAL, actor), *filter_clauses(Entity.DEAL, filters or {})]
    totals = {row.stage_id: row for row in db.session.execute(
        select(Deal.stage_id, func.count().label("count"), func.coalesce(func.sum(Deal.amount), 0).label("amount"))
        .where(Deal.pipeline_id == chosen.id, *conditions).group_by(Deal.stage_id))}
    newest = (select(Deal.id).where(Deal.stage_id == Stage.id, *conditions)
              .order_by(Deal.id.desc()).limit(per_stage).lateral())
    ids = db.session.scalars(select(newest.c.id).select_from(Stage).join(newest, literal(True))
                             .where(Stage.pipeline_id == chosen.id))
    deals = {}
    for deal in db.session.scalars(select(Deal).where(Deal.id.in_(list(ids))).order_by(Deal.id.desc())):
        deals.setdefault(deal.stage_id, []).append(deal)
    return [Column(stage, totals[stage.id].count if stage.id in totals else 0,
                   totals[stage.id].amount if stage.id in totals else Decimal("0"), deals.get(stage.id, []))
            for stage in chosen.stages]


def company_names(ids, actor: Membership) -> dict[int, str]:
    """Names of the companies among `ids` the actor may see (others show as their number only)."""
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(Company.id, Company.name).where(
        Company.id.in_(ids), access.visible(Company, Entity.COMPANY, actor))).all())
