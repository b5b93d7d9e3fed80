"""CRM pages: the lists, cards and forms of leads, contacts, companies and deals.

Views parse, call a service and render. Records a person may not see are 404 everywhere
(services raise NotFound for missing and others' records alike); a change they may not make
is a 403 page with the reason.
"""
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from urllib.parse import urlencode

from flask import Blueprint, flash, make_response, redirect, render_template, request
from flask_babel import format_date, format_decimal, format_number, gettext as _, lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select

from saas.auth.session import current_membership, tenant_required
from saas.web.views import service_errors_as_pages
from saas.errors import Conflict, Invalid, NotFound
from tenants.db import db

from . import access, admin, audit, forms, services
from .fields import CLASSIFIERS, ENTITY_LABELS, ENTITY_PLURALS, STANDARD, Kind, display, format_phone, standard_field
from .models import RECORD_MODELS, Deal, DealContact, Entity, LeadStatus, Pipeline, Stage, StageKind

bp = Blueprint("crm", __name__)

PLURALS = {"leads": Entity.LEAD, "contacts": Entity.CONTACT, "companies": Entity.COMPANY, "deals": Entity.DEAL}
PLURAL_OF = {entity: plural for plural, entity in PLURALS.items()}
RECORDS = "<any(leads, contacts, companies, deals):plural>"
RECORD_ID = "<int(max=9223372036854775807):record_id>"  # a bigint, else 404


def record_url(entity: str, record_id: int) -> str:
    return f"/{PLURAL_OF[entity]}/{record_id}"


def url_with(**changes) -> str:
    """This page's address with some query arguments changed (None drops one)."""
    args = request.args.to_dict(flat=False)
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = [str(value)]
    query = urlencode(args, doseq=True)
    return request.path + (f"?{query}" if query else "")


@bp.context_processor
def _template_helpers() -> dict:
    return {"record_url": record_url, "url_with": url_with, "entity_labels": ENTITY_LABELS,
            "entity_plurals": ENTITY_PLURALS, "money": lambda value: display(Kind.MONEY, value),
            "quantity": quantity}


service_errors_as_pages(bp)


def staff_page(view):
    """A page of a company's host for its signed-in people."""
    return tenant_required(login_required(view))


# --- reading ids as names ------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    """A piece of a displayed value: text, linked when it names a record or an address."""
    text: str
    href: str | None = None


EMPTY = "—"
STATUS_LABELS = dict(forms.LEAD_STATUSES)
# Fields the timeline shows that are not form fields: lead moves, conversion, line items.
EXTRA_FIELDS = {
    "stage_id": (_l("Stage"), Kind.STAGE), "status": (_l("Status"), "status"),
    "junk_reason": (_l("Junk reason"), Kind.LONGTEXT), "line_items": (_l("Line items"), "line_items"),
    "lead_id": (_l("From lead"), "ref:lead"), "contact_id": (_l("Contact"), "ref:contact"),
    "company_id": (_l("Company"), "ref:company"), "deal_id": (_l("Deal"), "ref:deal"),
    "photo": (_l("Photo"), "photo"),
    "document": (_l("New document"), Kind.TEXT), "version": (_l("New version of a document"), Kind.TEXT),
}
PHOTO_CHANGES = {"new": _l("a new one"), "removed": _l("removed")}
LINKS = {Kind.COMPANY: Entity.COMPANY, Kind.COMPANIES: Entity.COMPANY, Kind.CONTACTS: Entity.CONTACT,
         **{f"ref:{entity}": entity for entity in Entity.ALL}}


class Names:
    """Readable names for the ids on one page: people, stages, list items, linked records.

    A linked record the viewer may not see shows as its number only, never its name.
    """

    def __init__(self, actor):
        self.actor = actor
        self._records: dict[tuple[str, int], object] = {}
        self._custom: dict[str, dict] = {}

    @cached_property
    def people(self) -> dict[int, str]:
        return services.staff_names()

    @cached_property
    def stages(self) -> dict[int, Stage]:
        """Every stage of every pipeline (a short table), in bar order."""
        return {stage.id: stage for stage in db.session.scalars(select(Stage).order_by(Stage.position, Stage.id))}

    @cached_property
    def pipelines(self) -> dict[int, str]:
        return dict(db.session.execute(select(Pipeline.id, Pipeline.name)).all())

    def stages_of(self, pipeline_id: int) -> list[Stage]:
        return [stage for stage in self.stages.values() if stage.pipeline_id == pipeline_id]

    @cached_property
    def list_items(self) -> dict[int, str]:
        return {item.id: item.label for key in CLASSIFIERS for item in admin.list_items(key)}

    def custom_fields(self, entity: str) -> dict:
        if entity not in self._custom:
            self._custom[entity] = {d.key: d for d in services.custom_fields(entity)}
        return self._custom[entity]

    def load(self, entity: str, ids) -> None:
        """Fetch, in one query, the records of `ids` the viewer may see."""
        wanted = {int(i) for i in ids if i} - {i for (e, i) in self._records if e == entity}
        if not wanted:
            return
        model = RECORD_MODELS[entity]
        for record in db.session.scalars(select(model).where(model.id.in_(wanted),
                                                             access.visible(model, entity, self.actor))):
            self._records[(entity, record.id)] = record
        for missing in wanted:
            self._records.setdefault((entity, missing), None)

    def record(self, entity: str, record_id: int):
        """The record if the viewer may see it, else None."""
        self.load(entity, [record_id])
        return self._records.get((entity, int(record_id)))

    def link(self, entity: str, record_id: int) -> Part:
        record = self.record(entity, record_id)
        if record is None:
            return Part(f"#{record_id}")
        return Part(services.title_of(entity, record), record_url(entity, record.id))

    def typed_links(self, entity: str, typed) -> list[Part]:
        """The records whose numbers were typed into an input, to show whom they name."""
        ids = [int(i) for i in re.findall(r"\d{1,18}", typed if isinstance(typed, str) else "")][:50]
        self.load(entity, ids)
        return [self.link(entity, i) for i in ids]

    def person(self, user_id: int | None) -> str:
        return self.people.get(user_id, f"#{user_id}") if user_id else EMPTY

    def parts(self, kind: str, value, options: dict | None = None) -> list[Part]:
        """How a stored (or logged) value of a field of `kind` reads on a page."""
        if value is None or value == [] or value == "":
            return []
        if kind in LINKS or kind == Kind.LINK:
            entity = LINKS.get(kind) or (options or {}).get("target")
            ids = value if isinstance(value, list) else [value]
            if entity not in RECORD_MODELS:
                return [Part(f"#{i}") for i in ids]
            self.load(entity, ids)
            return [self.link(entity, i) for i in ids]
        if kind == Kind.USER:
            return [Part(self.person(value))]
        if kind == Kind.STAGE:
            stage = self.stages.get(value)
            return [Part(stage.name if stage else f"#{value}")]
        if kind == Kind.PIPELINE:
            return [Part(self.pipelines.get(value, f"#{value}"))]
        if kind == Kind.CLASSIFIER:
            return [Part(self.list_items.get(value, f"#{value}"))]
        if kind == "photo":
            return [Part(str(PHOTO_CHANGES.get(value, value)))]
        if kind == "status":
            return [Part(str(STATUS_LABELS.get(value, value)))]
        if kind in (Kind.PHONE, Kind.PHONES):
            return [Part(format_phone(p), f"tel:{p}") for p in (value if isinstance(value, list) else [value])]
        if kind in (Kind.EMAIL, Kind.EMAILS):
            return [Part(e, f"mailto:{e}") for e in (value if isinstance(value, list) else [value])]
        if kind == Kind.URL:
            safe = str(value).lower().startswith(("http://", "https://"))  # never javascript:// and the like
            return [Part(str(value), str(value) if safe else None)]
        if kind == "dates":
            return [Part(f"{entry.get('label') or ''} {entry.get('date')}".strip()) for entry in value]
        if kind == "line_items":
            return [Part(f"{item.get('name')} × {quantity(item.get('quantity'))}") for item in value]
        return [Part(display(kind, value, options=options))]

    def field(self, entity: str, name: str) -> tuple[object, str, dict | None]:
        """(label, kind, options) of a field as the audit log names it."""
        spec = standard_field(entity, name)
        if spec is not None:
            return spec.label, spec.kind, None
        if name.startswith("custom."):
            definition = self.custom_fields(entity).get(name.removeprefix("custom."))
            if definition is None:  # a field deleted since: its values stay readable
                return name.removeprefix("custom."), Kind.TEXT, None
            return definition.label, definition.type, definition.options
        label, kind = EXTRA_FIELDS.get(name, (name, Kind.TEXT))
        return label, kind, None

    def field_order(self, entity: str) -> dict[str, int]:
        """Changes are listed in the form's order (the log stores them in no particular one)."""
        names = [spec.name for spec in STANDARD[entity]] + ["line_items"]
        names += [f"custom.{key}" for key in self.custom_fields(entity)]
        return {name: index for index, name in enumerate(names)}


def quantity(value) -> str:
    """1.000 → "1", 2.500 → "2.5": quantities and percentages without trailing zeros."""
    if value is None or value == "":
        return ""
    return format_decimal(Decimal(str(value)), format="#,##0.###")


# --- lists ---------------------------------------------------------------------------------

# (value, heading, sort key or None) per column; the first column links to the card.
COLUMNS = {
    Entity.COMPANY: [("name", _l("Name"), "name"), ("tin", _l("TIN"), None), ("phones", _l("Phones"), None),
                     ("responsible_id", _l("Responsible"), None), ("updated_at", _l("Updated"), "updated_at")],
    Entity.CONTACT: [("name", _l("Name"), "last_name"), ("position", _l("Position"), None),
                     ("phones", _l("Phones"), None), ("emails", _l("Emails"), None),
                     ("responsible_id", _l("Responsible"), None), ("updated_at", _l("Updated"), "updated_at")],
    Entity.DEAL: [("title", _l("Title"), "title"), ("stage_id", _l("Stage"), None), ("amount", _l("Amount"), "amount"),
                  ("company_id", _l("Company"), None), ("close_date", _l("Expected close date"), "close_date"),
                  ("responsible_id", _l("Responsible"), None), ("updated_at", _l("Updated"), "updated_at")],
    Entity.LEAD: [("title", _l("Title"), "title"), ("contact_name", _l("Contact name"), None),
                  ("company_name", _l("Company name"), None), ("stage_id", _l("Stage"), None),
                  ("responsible_id", _l("Responsible"), None), ("updated_at", _l("Updated"), "updated_at")],
}
EMPTY_LISTS = {Entity.LEAD: _l("No leads yet"), Entity.CONTACT: _l("No contacts yet"),
               Entity.COMPANY: _l("No companies yet"), Entity.DEAL: _l("No deals yet")}


def cell(entity: str, record, column: str, names: Names) -> list[Part]:
    if column == COLUMNS[entity][0][0]:
        return [Part(services.title_of(entity, record), record_url(entity, record.id))]
    if column == "updated_at":
        return [Part(format_date(record.updated_at))]
    if column == "amount":
        return [Part(f"{display(Kind.MONEY, record.amount)} {record.currency}")]
    if column == "stage_id":
        return names.parts(Kind.STAGE, record.stage_id)
    return names.parts(standard_field(entity, column).kind, getattr(record, column))


def keep_default_stages(entity: str) -> None:
    """A new company's first look at deals or leads creates its default stages: keep them, so
    that the stage ids its filters and forms offer stay valid."""
    if entity in (Entity.DEAL, Entity.LEAD) and services.ensure_default_pipeline(entity):
        db.session.commit()


def _int_arg(name: str, default: int) -> int:
    """A page number or size from the query string; nonsense reads as the default."""
    try:
        return min(max(int(request.args.get(name, default)), 1), 1_000_000)
    except ValueError:
        return default


@bp.get(f"/{RECORDS}")
@staff_page
def records(plural: str):
    entity, actor = PLURALS[plural], current_membership()
    keep_default_stages(entity)
    filters = services.filters_from(request.args)
    sort = request.args.get("sort") or services.DEFAULT_SORT
    errors = {}
    try:
        page = services.list_records(entity, actor, filters, sort, page=_int_arg("page", 1),
                                     per_page=_int_arg("per_page", 50))
    except Invalid as error:
        errors = error.fields or {"": [str(error.message)]}
        page = services.Page([], 0, False, 1, 50, sort, filters)
    names = Names(actor)
    if entity == Entity.DEAL:
        names.load(Entity.COMPANY, [deal.company_id for deal in page.items])
    rows = [(record, [cell(entity, record, column, names) for column, _heading, _sort in COLUMNS[entity]])
            for record in page.items]
    export = urlencode({**filters, "sort": sort})
    return render_template("crm/list.html", entity=entity, plural=plural, page=page, rows=rows,
                           columns=COLUMNS[entity], filters=filters, filter_inputs=forms.filter_inputs(entity),
                           errors=errors, sort=sort, export=export, total_text=format_number(page.total),
                           empty_message=EMPTY_LISTS[entity],
                           has_more=page.has_next or (page.total_capped and len(page.items) == page.per_page))


# --- cards ---------------------------------------------------------------------------------

HEADING_FIELDS = {"name", "title"}  # shown as the card's heading, not again among the fields
ACTIONS = {"create": _l("Created"), "update": _l("Changed"), "stage": _l("Stage changed"),
           "convert": _l("Converted"), "merge": _l("Merged"), "delete": _l("Deleted"),
           "restore": _l("Restored"), "purge": _l("Removed for good"), "document": _l("Documents")}


@dataclass
class Change:
    label: object
    old: list
    new: list


@dataclass
class Event:
    at: object
    who: str
    action: object
    about: Part | None  # the related record it happened to, when not this card's own
    changes: list


def card_fields(entity: str, record, names: Names) -> list[tuple[object, list[Part]]]:
    stored = services.values(entity, record)
    rows = [(spec.label, names.parts(spec.kind, stored[spec.name]))
            for spec in STANDARD[entity] if spec.name not in HEADING_FIELDS]
    rows += [(d.label, names.parts(d.type, (record.custom or {}).get(d.key), d.options))
             for d in names.custom_fields(entity).values()]
    return rows


def stage_bar(current_id: int, names: Names) -> list[tuple[Stage, bool, bool]]:
    """(stage, reached, current) along the record's pipeline: open stages are coloured up to the
    current one; a final stage only when the record is in it."""
    current = names.stages[current_id]
    bar = []
    for stage in names.stages_of(current.pipeline_id):
        if current.kind == StageKind.OPEN:
            reached = stage.kind == StageKind.OPEN and stage.position <= current.position
        else:
            reached = stage.kind == StageKind.OPEN or stage.id == current.id
        bar.append((stage, reached, stage.id == current.id))
    return bar


def _seen_records(entity: str, ids: set[int], actor) -> set[int]:
    """Ids of records within the viewer's scope, those in the recycle bin included (their history
    stays readable on the cards they were linked to)."""
    model = RECORD_MODELS[entity]
    scope = access._scope_clause(model, access.rule(actor.role, entity).see, actor)
    return set(db.session.scalars(select(model.id).where(model.id.in_(ids), scope)))


def timeline(entity: str, record_id: int, names: Names) -> list[Event]:
    entries = audit.timeline(entity, record_id)
    others = {}
    for entry in entries:
        if (entry.entity, entry.record_id) != (entity, record_id) and entry.entity in RECORD_MODELS:
            others.setdefault(entry.entity, set()).add(entry.record_id)
    seen = {(e, i) for e, ids in others.items() for i in _seen_records(e, ids, names.actor)}
    for other, ids in others.items():
        names.load(other, ids)  # one query per record type, not one per event
    events = []
    for entry in entries:
        about = None
        if (entry.entity, entry.record_id) != (entity, record_id):
            if (entry.entity, entry.record_id) not in seen:
                continue  # a linked record the viewer may not see: its history is not theirs either
            link = names.link(entry.entity, entry.record_id)
            about = Part(_("%(what)s “%(title)s”", what=ENTITY_LABELS[entry.entity], title=entry.title), link.href)
        order = names.field_order(entry.entity)
        changes = []
        for name, (old, new) in sorted((entry.changes or {}).items(), key=lambda item: order.get(item[0], 99)):
            label, kind, options = names.field(entry.entity, name)
            changes.append(Change(label, names.parts(kind, old, options), names.parts(kind, new, options)))
        events.append(Event(entry.at, names.person(entry.user_id), ACTIONS.get(entry.action, entry.action),
                            about, changes))
    return events


@dataclass
class Related:
    heading: object
    entity: str
    records: list
    total: int
    all_url: str | None = None
    new_url: str | None = None


def summary(entity: str, record, names: Names) -> str:
    """One line under a linked record's name."""
    if entity == Entity.DEAL:
        stage = names.stages.get(record.stage_id)
        return f"{stage.name if stage else ''} · {display(Kind.MONEY, record.amount)} {record.currency}"
    if entity == Entity.CONTACT:
        return " · ".join(filter(None, [record.position, *(format_phone(p) for p in record.phones[:1])]))
    if entity == Entity.COMPANY:
        return record.tin or ""
    return ""


def related_lists(entity: str, record, actor, names: Names) -> list[Related]:
    if entity == Entity.COMPANY:
        contacts = services.list_records(Entity.CONTACT, actor, {"company_id": record.id}, per_page=20)
        deals = services.list_records(Entity.DEAL, actor, {"company_id": record.id}, per_page=20)
        return [Related(_l("Contact persons"), Entity.CONTACT, contacts.items, contacts.total,
                        f"/contacts?company_id={record.id}", f"/contacts/new?company_ids={record.id}"),
                Related(_l("Deals"), Entity.DEAL, deals.items, deals.total,
                        f"/deals?company_id={record.id}", f"/deals/new?company_id={record.id}")]
    if entity == Entity.CONTACT:
        company_ids = services.company_ids_of(record.id)
        names.load(Entity.COMPANY, company_ids)
        companies = [found for found in (names.record(Entity.COMPANY, i) for i in company_ids) if found]
        deals = list(db.session.scalars(
            select(Deal).where(Deal.id.in_(select(DealContact.deal_id).where(DealContact.contact_id == record.id)),
                               access.visible(Deal, Entity.DEAL, actor)).order_by(Deal.id.desc()).limit(50)))
        return [Related(_l("Companies"), Entity.COMPANY, companies, len(companies)),
                Related(_l("Deals"), Entity.DEAL, deals, len(deals), None, f"/deals/new?contact_ids={record.id}")]
    return []


@bp.get(f"/{RECORDS}/{RECORD_ID}")
@staff_page
def card(plural: str, record_id: int):
    entity, actor = PLURALS[plural], current_membership()
    record = services.get(entity, record_id, actor)
    names = Names(actor)
    context = {"entity": entity, "plural": plural, "record": record, "names": names,
               "title": services.title_of(entity, record), "fields": card_fields(entity, record, names),
               "can_edit": access.can_edit(record, entity, actor),
               "related": related_lists(entity, record, actor, names),
               "summary": summary}
    if entity == Entity.DEAL:
        context.update(stages=stage_bar(record.stage_id, names),
                       items=[(item, services.item_totals(item)) for item in record.items],
                       totals=services.deal_totals(record.items))
    if entity == Entity.LEAD:
        context.update(stages=stage_bar(record.stage_id, names),
                       is_open=record.status == LeadStatus.OPEN, status=STATUS_LABELS.get(record.status),
                       converted=[names.link(target, getattr(record, f"{target}_id"))
                                  for target in (Entity.CONTACT, Entity.COMPANY, Entity.DEAL)
                                  if getattr(record, f"{target}_id")])
    context["events"] = timeline(entity, record_id, names)
    return render_template("crm/card.html", **context)


# --- forms ---------------------------------------------------------------------------------

def _errors_of(error: Invalid | Conflict) -> dict:
    return error.fields or {"": [str(error.message)]}


def form_page(entity: str, record, values: dict, errors: dict, status: int = 200):
    actor = current_membership()
    names = Names(actor)
    inputs = forms.inputs(entity, responsible=record.responsible_id if record else None)
    shown = {i.name for i in inputs} | {"line_items"}
    other_errors = [(names.field(entity, key)[0] if key else "", messages) for key, messages in errors.items()
                    if key not in shown and not key.startswith("line_items.")]
    recent_companies = []  # offered while typing a company's number
    if any(i.widget == "record" and i.target == Entity.COMPANY for i in inputs):
        recent_companies = services.list_records(Entity.COMPANY, actor, per_page=50).items
    return render_template("crm/form.html", entity=entity, plural=PLURAL_OF[entity], record=record,
                           inputs=inputs, values=values, errors=errors, other_errors=other_errors, names=names,
                           recent_companies=recent_companies, empty_rows=forms.EMPTY_ROWS), status


@bp.route(f"/{RECORDS}/new", methods=["GET", "POST"])
@staff_page
def new(plural: str):
    entity = PLURALS[plural]
    if request.method == "GET":
        keep_default_stages(entity)
        return form_page(entity, None, forms.new_values(entity, request.args), {})
    typed = forms.submitted(entity, request.form)
    try:
        record = services.create(entity, forms.data_from(entity, typed), current_membership())
    except (Invalid, Conflict) as error:
        db.session.rollback()
        return form_page(entity, None, typed, _errors_of(error), 422)
    db.session.commit()
    flash(_("%(what)s “%(title)s” created.", what=ENTITY_LABELS[entity], title=services.title_of(entity, record)),
          "success")
    return redirect(record_url(entity, record.id))


@bp.route(f"/{RECORDS}/{RECORD_ID}/edit", methods=["GET", "POST"])
@staff_page
def edit(plural: str, record_id: int):
    entity, actor = PLURALS[plural], current_membership()
    record = services.get_for_edit(entity, record_id, actor)
    if entity == Entity.LEAD and record.status != LeadStatus.OPEN:
        flash(_("This lead is closed; it can no longer be changed."), "error")
        return redirect(record_url(entity, record_id))
    before = forms.form_values(entity, record)
    if request.method == "GET":
        return form_page(entity, record, before, {})
    typed = forms.submitted(entity, request.form)
    try:
        services.update(entity, record_id, forms.data_from(entity, typed, before), actor)
    except (Invalid, Conflict) as error:
        db.session.rollback()
        return form_page(entity, services.get(entity, record_id, actor), typed, _errors_of(error), 422)
    db.session.commit()
    flash(_("Changes saved."), "success")
    return redirect(record_url(entity, record_id))


@bp.post(f"/{RECORDS}/{RECORD_ID}/delete")
@staff_page
def delete(plural: str, record_id: int):
    entity = PLURALS[plural]
    services.delete_record(entity, record_id, current_membership())
    db.session.commit()
    flash(_("Moved to the recycle bin. It can be restored from there for %(days)d days.",
            days=services.RECYCLE_DAYS), "success")
    return redirect(f"/{plural}")


# --- a contact's photo ---------------------------------------------------------------------

@bp.get(f"/contacts/{RECORD_ID}/photo")
@staff_page
def contact_photo(record_id: int):
    contact = services.get(Entity.CONTACT, record_id, current_membership())
    if not contact.photo_type:
        raise NotFound(_l("This contact has no photo."))
    response = make_response(contact.photo)
    response.headers.update({
        "Content-Type": contact.photo_type, "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'", "Cache-Control": "private, max-age=3600"})
    return response


@bp.post(f"/contacts/{RECORD_ID}/photo")
@staff_page
def set_contact_photo(record_id: int):
    upload = request.files.get("photo")
    content = None if "remove" in request.form else (upload.read(services.PHOTO_LIMIT + 1) if upload else b"")
    if content == b"":
        flash(_("Choose a picture first."), "error")
        return redirect(record_url(Entity.CONTACT, record_id))
    try:
        services.set_contact_photo(record_id, content, current_membership())
    except Invalid as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return redirect(record_url(Entity.CONTACT, record_id))
    db.session.commit()
    flash(_("Photo saved.") if content else _("Photo removed."), "success")
    return redirect(record_url(Entity.CONTACT, record_id))
