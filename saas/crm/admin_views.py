"""CRM settings pages (owner and administrators): company-wide settings, pipelines and stages,
custom fields, classification lists, access rights, departments and an employee's leave; and the
recycle bin, which every member uses.

Each change runs through saas/crm/admin.py (or services.py), is committed, flashed and
redirected; a refusal rolls everything back and re-renders the page with the messages beside
the form that caused them (`failed` names that form, `errors` maps its fields to messages).
"""
from functools import wraps

import phonenumbers
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _
from flask_login import login_required

from saas.auth.services import people
from saas.auth.session import current_membership, tenant_required
from saas.errors import Forbidden, Invalid, NotFound, ServiceError
from tenants.db import db

from . import access, admin, services
from .fields import (CLASSIFIERS, CURRENCIES, CUSTOM_KINDS, ENTITY_LABELS, ENTITY_PLURALS, KIND_LABELS, STANDARD,
                     Kind)
from .models import CustomField, Entity, Pipeline, StageKind

bp = Blueprint("crm_admin", __name__)

STAGE_KIND_ORDER = (StageKind.OPEN, StageKind.WON, StageKind.LOST)
NEW_STAGE_ROWS = 2  # blank rows under the stages: filling one adds a stage


@bp.context_processor
def record_type_names() -> dict:
    return {"entity_labels": ENTITY_LABELS, "entity_plurals": ENTITY_PLURALS}


def manager_page(view):
    """Signed in on a company's host as its owner or an administrator; members get a 403 saying why."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            access.require_manager(current_membership())
        except Forbidden as error:
            abort(403, description=str(error.message))
        return view(*args, **kwargs)
    return tenant_required(login_required(wrapper))


def _apply(*changes) -> dict:
    """Make the changes (callables) in one transaction: all committed, or none and the refusals
    returned as {field: [messages]} ("" for the form as a whole).

    A refusal to act at all (Forbidden) or an id that is not there (NotFound) ends the request.
    """
    errors = {}
    for change in changes:
        try:
            change()
        except ServiceError as error:
            if isinstance(error, (Forbidden, NotFound)):
                db.session.rollback()
                abort(error.status, description=str(error.message))
            for field, messages in (error.fields or {"": [str(error.message)]}).items():
                errors.setdefault(field, []).extend(messages)
    if errors:
        db.session.rollback()
    else:
        db.session.commit()
    return errors


def _flash_outcome(errors: dict, success: str) -> None:
    """For one-button forms (delete): the refusal, or the success, as a message on the next page."""
    for message in (message for messages in errors.values() for message in messages):
        flash(message, "error")
    if not errors:
        flash(success, "success")


def _named(name: str, change):
    """The change, with its refusal reported under `name` (a cell of a grid) whatever field it named."""
    def run():
        try:
            change()
        except Invalid as error:
            raise Invalid(error.message, field=name) from error
    return run


def _checked(name: str) -> bool:
    return request.form.get(name) in ("on", "1", "true", "yes")


# --- the settings home: company-wide CRM settings ------------------------------------------

def _region_choices() -> list[tuple[str, str]]:
    """Countries phone numbers can default to, named in the reader's language."""
    names = get_locale().territories
    return sorted(((code, f"{names.get(code, code)} ({code})") for code in phonenumbers.SUPPORTED_REGIONS),
                  key=lambda choice: choice[1].casefold())


def _requirable(entity: str):
    return [spec for spec in STANDARD[entity] if spec.requirable]


@bp.get("/settings/crm")
@manager_page
def settings_home(errors: dict | None = None, status: int = 200):
    return render_template(
        "crm/settings/home.html", regions=_region_choices(), currencies=CURRENCIES,
        region=services.phone_region(), currency=services.default_currency(),
        requirable={entity: _requirable(entity) for entity in Entity.ALL},
        required={entity: services.required_fields(entity) for entity in Entity.ALL},
        errors=errors or {}, failed="settings" if errors else None), status


@bp.post("/settings/crm")
@manager_page
def save_settings():
    actor = current_membership()
    errors = _apply(
        lambda: admin.set_phone_region(actor, request.form.get("phone_region", "")),
        lambda: admin.set_default_currency(actor, request.form.get("currency", "")),
        *(lambda entity=entity: admin.set_required_fields(actor, entity,
                                                          request.form.getlist(f"required.{entity}"))
          for entity in Entity.ALL))
    if errors:
        return settings_home(errors, 422)
    flash(_("Settings saved."), "success")
    return redirect(url_for(".settings_home"))


# --- pipelines and stages ------------------------------------------------------------------

@bp.get("/settings/pipelines")
@manager_page
def pipelines_page(errors: dict | None = None, status: int = 200):
    deal_pipelines, lead_bar = services.pipelines(Entity.DEAL), services.lead_pipeline()
    db.session.commit()  # keep the default pipelines made on first look (their ids are linked to)
    return render_template("crm/settings/pipelines.html", pipelines=deal_pipelines, lead_bar=lead_bar,
                           errors=errors or {}, failed="new" if errors else None), status


@bp.post("/settings/pipelines")
@manager_page
def create_pipeline():
    errors = _apply(lambda: admin.create_pipeline(current_membership(), request.form.get("name", "")))
    if errors:
        return pipelines_page(errors, 422)
    flash(_("Pipeline created. Set up its stages with “Stages”."), "success")
    return redirect(url_for(".pipelines_page"))


@bp.post("/settings/pipelines/<int:pipeline_id>/delete")
@manager_page
def delete_pipeline(pipeline_id: int):
    errors = _apply(lambda: admin.delete_pipeline(current_membership(), pipeline_id))
    _flash_outcome(errors, _("Pipeline deleted."))
    return redirect(url_for(".pipelines_page"))


def _settings_pipeline(pipeline_id: int) -> Pipeline:
    found = db.session.get(Pipeline, pipeline_id)
    if found is None:
        abort(404)
    return found


def _stage_rows_of(pipeline: Pipeline) -> list[dict]:
    return [{"id": stage.id, "name": stage.name, "kind": stage.kind, "color": stage.color, "order": position + 1,
             "remove": False, "errors": {}} for position, stage in enumerate(pipeline.stages)]


def _blank_stage_rows(after: int) -> list[dict]:
    return [{"id": None, "name": "", "kind": StageKind.OPEN, "color": "#4f7cac", "order": after + n + 1,
             "remove": False, "errors": {}} for n in range(NEW_STAGE_ROWS)]


def _posted_stage_rows() -> list[dict]:
    """The rows as posted, blank new ones dropped, in the order they will be saved: open stages,
    then won, then lost, each group by its order number (so a stage added at the bottom as
    "open" lands before the final ones)."""
    form = request.form
    removed = set(form.getlist("remove"))
    rows = []
    for index, (stage_id, name, kind, color, order) in enumerate(zip(
            form.getlist("stage_id"), form.getlist("name"), form.getlist("kind"), form.getlist("color"),
            form.getlist("order"))):
        if not stage_id and not name.strip():
            continue
        rows.append({"id": int(stage_id) if stage_id.isdigit() else None, "name": name, "kind": kind,
                     "color": color, "order": _order_number(order, index + 1), "remove": str(index) in removed,
                     "errors": {}})
    rank = {kind: position for position, kind in enumerate(STAGE_KIND_ORDER)}
    return sorted(rows, key=lambda row: (rank.get(row["kind"], len(rank)), row["order"]))


def _order_number(raw: str, default: int) -> float:
    try:
        return float(raw)
    except ValueError:
        return default


def _attach_stage_errors(rows: list[dict], errors: dict) -> dict:
    """Put "stages.<i>.<field>" messages on the rows saved (i counts only those); returns the rest."""
    saved = [row for row in rows if not row["remove"]]
    rest = {}
    for key, messages in errors.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "stages" and parts[1].isdigit() and int(parts[1]) < len(saved):
            saved[int(parts[1])]["errors"][parts[2]] = messages
        else:
            rest[key] = messages
    return rest


def _render_pipeline(pipeline: Pipeline, rows: list[dict], errors: dict, status: int = 200):
    return render_template("crm/settings/pipeline.html", pipeline=pipeline,
                           rows=rows + _blank_stage_rows(len(rows)), errors=errors,
                           kind_labels=_stage_kind_labels(pipeline.entity)), status


def _stage_kind_labels(entity: str) -> dict:
    if entity == Entity.LEAD:
        return {StageKind.OPEN: _("In progress"), StageKind.WON: _("Qualified"), StageKind.LOST: _("Junk")}
    return {StageKind.OPEN: _("In progress"), StageKind.WON: _("Won"), StageKind.LOST: _("Lost")}


@bp.get("/settings/pipelines/<int:pipeline_id>")
@manager_page
def pipeline_page(pipeline_id: int):
    found = _settings_pipeline(pipeline_id)
    return _render_pipeline(found, _stage_rows_of(found), {})


@bp.post("/settings/pipelines/<int:pipeline_id>")
@manager_page
def save_pipeline(pipeline_id: int):
    """Name (deal pipelines only) and the whole stage list are saved together."""
    actor, found = current_membership(), _settings_pipeline(pipeline_id)
    rows = _posted_stage_rows()
    stages = [{"id": row["id"], "name": row["name"], "kind": row["kind"], "color": row["color"]}
              for row in rows if not row["remove"]]
    changes = [lambda: admin.save_stages(actor, pipeline_id, stages)]
    if found.entity == Entity.DEAL:
        changes.insert(0, lambda: admin.rename_pipeline(actor, pipeline_id, request.form.get("pipeline_name", "")))
    errors = _apply(*changes)
    if errors:
        found = _settings_pipeline(pipeline_id)
        return _render_pipeline(found, rows, _attach_stage_errors(rows, errors), 422)
    flash(_("Stages saved."), "success")
    return redirect(url_for(".pipeline_page", pipeline_id=pipeline_id))


# --- custom fields -------------------------------------------------------------------------

def _chosen_entity(raw: str | None) -> str:
    return raw if raw in Entity.ALL else Entity.ALL[0]


@bp.get("/settings/fields")
@manager_page
def fields_page(entity: str | None = None, failed: str | None = None, errors: dict | None = None,
                status: int = 200):
    entity = entity or _chosen_entity(request.args.get("entity"))
    return render_template(
        "crm/settings/fields.html", entity=entity, definitions=services.custom_fields(entity),
        entities=Entity.ALL, kinds=CUSTOM_KINDS, kind_labels=KIND_LABELS,
        list_kinds=(Kind.LIST, Kind.MULTILIST), failed=failed, errors=errors or {}), status


def _lines(name: str) -> list[str]:
    return [line.strip() for line in request.form.get(name, "").splitlines() if line.strip()]


@bp.post("/settings/fields")
@manager_page
def create_field():
    form, entity = request.form, _chosen_entity(request.form.get("entity"))
    errors = _apply(lambda: admin.create_custom_field(
        current_membership(), entity, label=form.get("label", ""), type=form.get("type", ""),
        required=_checked("required"), items=_lines("items"), target=form.get("target") or None,
        key=form.get("key", "").strip() or None))
    if errors:
        return fields_page(entity, "new", errors, 422)
    flash(_("Field added."), "success")
    return redirect(url_for(".fields_page", entity=entity))


def _settings_field(field_id: int) -> CustomField:
    found = db.session.get(CustomField, field_id)
    if found is None:
        abort(404)
    return found


def _posted_items(definition) -> list | None:
    """Kept items by id (renamed in place; cleared ones go), then the new ones."""
    if definition.type not in ("list", "multilist"):
        return None
    kept = [{"id": item["id"], "label": request.form.get(f"item-{item['id']}", "")}
            for item in definition.options.get("items", [])]
    return kept + _lines("new_items")


@bp.post("/settings/fields/<int:field_id>")
@manager_page
def update_field(field_id: int):
    definition = _settings_field(field_id)
    entity, items = definition.entity, _posted_items(definition)
    errors = _apply(lambda: admin.update_custom_field(
        current_membership(), field_id, label=request.form.get("label", ""), required=_checked("required"),
        items=items))
    if errors:
        return fields_page(entity, f"field-{field_id}", errors, 422)
    flash(_("Field saved."), "success")
    return redirect(url_for(".fields_page", entity=entity))


@bp.post("/settings/fields/<int:field_id>/delete")
@manager_page
def delete_field(field_id: int):
    entity = _settings_field(field_id).entity
    errors = _apply(lambda: admin.delete_custom_field(current_membership(), field_id))
    _flash_outcome(errors, _("Field deleted."))
    return redirect(url_for(".fields_page", entity=entity))


# --- classification lists of companies -----------------------------------------------------

@bp.get("/settings/lists")
@manager_page
def lists_page(failed: str | None = None, errors: dict | None = None, status: int = 200):
    lists = [(key, label, admin.list_items(key)) for key, (_column, label) in CLASSIFIERS.items()]
    return render_template("crm/settings/lists.html", lists=lists, failed=failed, errors=errors or {}), status


@bp.post("/settings/lists/<list_key>")
@manager_page
def add_list_item(list_key: str):
    label = request.form.get("label", "")
    errors = _apply(lambda: admin.add_classifier_item(current_membership(), list_key, label))
    if errors:
        return lists_page(list_key, errors, 422)
    flash(_("Item added."), "success")
    return redirect(url_for(".lists_page", _anchor=f"list-{list_key}"))


@bp.post("/settings/lists/items/<int:item_id>/delete")
@manager_page
def delete_list_item(item_id: int):
    errors = _apply(lambda: admin.delete_classifier_item(current_membership(), item_id))
    _flash_outcome(errors, _("Item removed."))
    return redirect(url_for(".lists_page"))


# --- access rights -------------------------------------------------------------------------

@bp.get("/settings/access")
@manager_page
def access_page(errors: dict | None = None, status: int = 200):
    if errors:  # show what was chosen, next to why it was refused
        form = request.form
        rules = {(role, entity): access.Rule(form.get(f"see.{role}.{entity}"), form.get(f"edit.{role}.{entity}"))
                 for role in access.RULED_ROLES for entity in Entity.ALL}
    else:
        rules = access.rules()
    return render_template("crm/settings/access.html", rules=rules, roles=access.RULED_ROLES, entities=Entity.ALL,
                           scopes=access.SCOPES, scope_labels=access.SCOPE_LABELS,
                           errors=errors or {}), status


@bp.post("/settings/access")
@manager_page
def save_access():
    actor, form = current_membership(), request.form
    errors = _apply(*(_named(f"{role}.{entity}", lambda role=role, entity=entity: admin.set_access_rule(
        actor, role, entity, see=form.get(f"see.{role}.{entity}", ""), edit=form.get(f"edit.{role}.{entity}", "")))
        for role in access.RULED_ROLES for entity in Entity.ALL))
    if errors:
        return access_page(errors, 422)
    flash(_("Access rights saved. They apply from the next page anyone opens."), "success")
    return redirect(url_for(".access_page"))


# --- departments ---------------------------------------------------------------------------

@bp.get("/settings/departments")
@manager_page
def departments_page(failed: str | None = None, errors: dict | None = None, status: int = 200):
    return render_template("crm/settings/departments.html", departments=admin.departments(),
                           staff=services.staff(), department_of=admin.department_of(),
                           failed=failed, errors=errors or {}), status


@bp.post("/settings/departments")
@manager_page
def create_department():
    errors = _apply(lambda: admin.create_department(current_membership(), request.form.get("name", "")))
    if errors:
        return departments_page("new", errors, 422)
    flash(_("Department created."), "success")
    return redirect(url_for(".departments_page"))


@bp.post("/settings/departments/<int:department_id>/delete")
@manager_page
def delete_department(department_id: int):
    errors = _apply(lambda: admin.delete_department(current_membership(), department_id))
    _flash_outcome(errors, _("Department deleted. Its employees are now in no department."))
    return redirect(url_for(".departments_page"))


@bp.post("/settings/departments/staff")
@manager_page
def assign_departments():
    """One select per employee; only the changed ones are written."""
    actor, current = current_membership(), admin.department_of()
    changes = []
    for user_id, _name in services.staff():
        raw = request.form.get(f"department.{user_id}")
        if raw is None:
            continue
        chosen = int(raw) if raw.isdigit() else None
        if chosen != current.get(user_id):
            changes.append(lambda user_id=user_id, chosen=chosen: admin.assign_department(actor, user_id, chosen))
    errors = _apply(*changes)
    if errors:
        return departments_page("staff", errors, 422)
    flash(_("Departments saved."), "success")
    return redirect(url_for(".departments_page"))


# --- an employee leaves --------------------------------------------------------------------

def _user_id(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


@bp.get("/settings/reassign")
@manager_page
def reassign_page(errors: dict | None = None, status: int = 200):
    source = request.values.get("from_user_id")
    everyone = people(g.tenant)
    from_user_id = _user_id(source)
    if from_user_id not in {m.user_id for m in everyone}:
        from_user_id = None
    return render_template(
        "crm/settings/reassign.html", everyone=everyone, staff=services.staff(), from_user_id=from_user_id,
        held=admin.records_held_by(from_user_id) if from_user_id else None, entities=Entity.ALL,
        to_user_id=_user_id(request.form.get("to_user_id")), errors=errors or {}), status


@bp.post("/settings/reassign")
@manager_page
def reassign():
    from_user_id, to_user_id = _user_id(request.form.get("from_user_id")), _user_id(request.form.get("to_user_id"))
    if from_user_id not in {m.user_id for m in people(g.tenant)}:
        return reassign_page({"from_user_id": [_("Choose whose records to hand over.")]}, 422)
    counts = {}
    errors = _apply(lambda: counts.update(
        admin.reassign_records(current_membership(), from_user_id, to_user_id or 0)))
    if errors:
        return reassign_page(errors, 422)
    flash(_("Records handed over. Leads: %(leads)d, contacts: %(contacts)d, companies: %(companies)d, "
            "deals: %(deals)d.",
            leads=counts[Entity.LEAD], contacts=counts[Entity.CONTACT], companies=counts[Entity.COMPANY],
            deals=counts[Entity.DEAL]), "success")
    return redirect(url_for(".reassign_page", from_user_id=from_user_id))


# --- the recycle bin (every member: each sees what they could restore) ----------------------

@bp.get("/recycle-bin")
@tenant_required
@login_required
def recycle_bin():
    return render_template("crm/settings/recycle_bin.html", entries=services.recycle_bin(current_membership()),
                           names=services.staff_names(), title_of=services.title_of)


@bp.post("/recycle-bin/<entity>/<int:record_id>/restore")
@tenant_required
@login_required
def restore(entity: str, record_id: int):
    try:
        record = services.restore_record(entity, record_id, current_membership())
    except NotFound:  # gone for good, restored already, not theirs, or another company's id
        abort(404)
    name = services.title_of(entity, record)
    db.session.commit()
    flash(_("“%(name)s” is restored.", name=name), "success")
    return redirect(url_for(".recycle_bin"))
