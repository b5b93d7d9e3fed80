"""Moving records along: the deal board, stage moves, and lead conversion."""
from dataclasses import dataclass, field as dataclass_field

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from saas.auth.session import current_membership, tenant_required
from saas.auth.views import _safe_next
from saas.errors import Conflict, Invalid, NotFound, ServiceError
from tenants.db import db

from . import admin, conversion, services
from .fields import CURRENCIES, ENTITY_LABELS, STANDARD, Kind, display, standard_field
from .models import Entity, Stage, StageKind

bp = Blueprint("crm_flow", __name__)


def money(value) -> str:
    return display(Kind.MONEY, value)


# --- stage moves ---------------------------------------------------------------------------

def _payload() -> dict:
    """The request's fields: a JSON object (the board's drops) or the form (buttons, selects)."""
    if request.is_json:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}
    return request.form


def _stage_id(payload) -> int:
    try:
        return int(payload.get("stage_id"))
    except (TypeError, ValueError):
        raise Invalid(_("Choose a stage."), field="stage_id")


def _back(default: str) -> str:
    target = request.form.get("next") or request.args.get("next")
    return _safe_next(target) if target else default


def _messages(error: ServiceError) -> str:
    """Everything a refusal says, field messages included ("Say why the lead is junk.")."""
    def flat(fields):
        for value in fields.values():
            yield from flat(value) if isinstance(value, dict) else value
    return " ".join(flat(error.fields)) if error.fields else str(error.message)


def _refused(error: ServiceError, back: str):
    db.session.rollback()
    if request.is_json:
        return jsonify(ok=False, error=_messages(error), fields=error.fields), error.status
    if isinstance(error, NotFound):
        abort(404)
    flash(_messages(error), "error")
    return redirect(back)


def _column_totals(pipeline_id: int, filters) -> dict:
    """Count and sum of each column of a board (with the board's filters), after a move."""
    try:
        columns = services.board(pipeline_id, current_membership(), services.filters_from(filters or {}),
                                 per_stage=0)
    except services.FieldErrors:
        columns = services.board(pipeline_id, current_membership(), per_stage=0)
    return {str(column.stage.id): {"count": column.count, "amount": str(column.amount),
                                   "amount_display": money(column.amount)} for column in columns}


@bp.post("/deals/<int:deal_id>/move")
@tenant_required
@login_required
def move_deal(deal_id: int):
    payload, back = _payload(), _back(f"/deals/{deal_id}")
    try:
        deal = services.move_deal(deal_id, _stage_id(payload), current_membership())
    except ServiceError as error:
        return _refused(error, back)
    db.session.commit()
    stage = db.session.get(Stage, deal.stage_id)
    if request.is_json:
        filters = payload.get("filters") if isinstance(payload.get("filters"), dict) else {}
        return jsonify(ok=True, stage_id=deal.stage_id, pipeline_id=deal.pipeline_id,
                       columns=_column_totals(deal.pipeline_id, filters))
    flash(_("“%(title)s” moved to “%(stage)s”.", title=deal.title, stage=stage.name), "success")
    return redirect(back)


def _is_qualified_stage(stage_id: int) -> bool:
    stage = db.session.get(Stage, stage_id)
    return stage is not None and stage.pipeline.entity == Entity.LEAD and stage.kind == StageKind.WON


@bp.post("/leads/<int:lead_id>/move")
@tenant_required
@login_required
def move_lead(lead_id: int):
    payload, back = _payload(), _back(f"/leads/{lead_id}")
    try:
        stage_id = _stage_id(payload)
        if _is_qualified_stage(stage_id) and not request.is_json:
            return redirect(url_for(".convert_lead", lead_id=lead_id))  # qualifying a lead is converting it
        lead = services.move_lead(lead_id, stage_id, current_membership(), junk_reason=payload.get("junk_reason"))
    except ServiceError as error:
        return _refused(error, back)
    db.session.commit()
    if request.is_json:
        return jsonify(ok=True, stage_id=lead.stage_id, status=lead.status)
    flash(_("“%(title)s” moved to “%(stage)s”.", title=lead.title, stage=db.session.get(Stage, lead.stage_id).name),
          "success")
    return redirect(back)


# --- the board -----------------------------------------------------------------------------

@bp.get("/deals/board")
@bp.get("/deals/board/<int:pipeline_id>")
@tenant_required
@login_required
def board(pipeline_id: int | None = None):
    actor = current_membership()
    if services.ensure_default_pipeline(Entity.DEAL):
        db.session.commit()  # a new company's first look creates its default pipeline: keep it
    pipelines = services.pipelines()
    try:
        chosen = services.pipeline(pipeline_id) if pipeline_id else pipelines[0]
    except NotFound:
        abort(404)
    filters = services.filters_from(request.args)
    try:
        columns = services.board(chosen.id, actor, filters)
    except services.FieldErrors as error:
        flash(_messages(error), "error")
        filters, columns = {}, services.board(chosen.id, actor)
    deals = [deal for column in columns for deal in column.deals]
    return render_template(
        "crm/flow/board.html", pipelines=pipelines, chosen=chosen, columns=columns, filters=filters,
        staff=services.staff(), staff_names=services.staff_names(),
        company_names=services.company_names((deal.company_id for deal in deals), current_membership()), money=money,
        query=request.query_string.decode())


# --- lead conversion -----------------------------------------------------------------------

# What the page lets a person check and change per target (the rest is carried as it is).
FORM_FIELDS = {
    Entity.CONTACT: ("first_name", "last_name", "position", "phones", "emails"),
    Entity.COMPANY: ("name", "tin", "phones", "emails", "address"),
    Entity.DEAL: ("pipeline_id", "title", "amount", "currency"),
}
# Links the conversion makes itself between the records it creates.
SET_BY_CONVERSION = {"company_ids", "company_id", "contact_ids", "stage_id", "responsible_id"}


@dataclass
class Input:
    name: str  # the form field: "company.tin", "deal.custom.budget"
    key: str  # the field in the service's data: "tin", "custom.budget"
    label: str
    kind: str
    value: object = ""
    required: bool = False
    choices: list | None = None  # [(value, label)] for selects
    errors: list = dataclass_field(default_factory=list)


@dataclass
class Section:
    target: str
    label: str
    include: bool
    choice: str  # "new", or the id of an existing record to use instead
    matches: list
    inputs: list
    errors: list = dataclass_field(default_factory=list)  # for fields the page has no input for


def _as_text(value, kind: str) -> str:
    """A carried value as its input shows it (phones formatted as people write them)."""
    if value is None or value == []:
        return ""
    if kind in (Kind.PHONES, Kind.PHONE):
        return display(kind, value)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


def _standard_choices(spec) -> list | None:
    if spec.kind == Kind.CURRENCY:
        return [(code, code) for code in CURRENCIES]
    if spec.kind == Kind.PIPELINE:
        return [(str(p.id), p.name) for p in services.pipelines()]
    if spec.kind == Kind.CLASSIFIER:
        return [("", "—")] + [(str(item.id), item.label) for item in admin.list_items(spec.list_key)]
    if spec.kind == Kind.USER:
        return [(str(user_id), name) for user_id, name in services.staff()]
    return None


def _custom_choices(definition) -> list | None:
    if definition.type in (Kind.LIST, Kind.MULTILIST):
        items = [(str(item["id"]), item["label"]) for item in definition.options.get("items", [])]
        return items if definition.type == Kind.MULTILIST else [("", "—"), *items]
    if definition.type == Kind.BOOL:
        return [("", "—"), ("yes", _("Yes")), ("no", _("No"))]
    return None


def _inputs(target: str) -> list[Input]:
    """The target's fields on the page: the usual ones, plus whatever this company made required."""
    required = services.required_fields(target)
    shown = {*FORM_FIELDS[target], *SET_BY_CONVERSION}
    names = [*FORM_FIELDS[target], *(spec.name for spec in STANDARD[target]
                                     if (spec.required or spec.name in required) and spec.name not in shown)]
    inputs = []
    for name in names:
        spec = standard_field(target, name)
        inputs.append(Input(f"{target}.{name}", name, str(spec.label), spec.kind,
                            required=spec.required or name in required, choices=_standard_choices(spec)))
    for definition in services.custom_fields(target):
        if definition.required:
            inputs.append(Input(f"{target}.custom.{definition.key}", f"custom.{definition.key}", definition.label,
                                definition.type, required=True, choices=_custom_choices(definition)))
    return inputs


def _sections(plan: conversion.Plan, form=None) -> list[Section]:
    """The page's three sections, filled from the lead (first look) or from what was posted."""
    lead, sections = plan.lead, []
    chosen = form.getlist("targets") if form is not None else None
    suggested = {Entity.CONTACT: bool(lead.contact_name or lead.email or lead.phone),
                 Entity.COMPANY: bool(lead.company_name or lead.tin), Entity.DEAL: True}
    for target in conversion.TARGETS:
        matches = plan.matches.get(target, [])
        inputs = _inputs(target)
        if form is None:
            carried = {**plan.data[target], "pipeline_id": services.pipelines()[0].id}
            for item in inputs:
                item.value = [] if item.kind == Kind.MULTILIST else _as_text(carried.get(item.key), item.kind)
            choice = str(matches[0].id) if matches else "new"
            include = suggested[target]
        else:
            for item in inputs:
                item.value = form.getlist(item.name) if item.kind == Kind.MULTILIST else form.get(item.name, "")
            choice = form.get(f"{target}.use", "new")
            include = target in chosen
        sections.append(Section(target, str(ENTITY_LABELS[target]), include, choice, matches, inputs))
    return sections


def _conversion_request(sections: list[Section]) -> dict:
    """convert()'s arguments from the page: what to create, what to reuse, the values typed."""
    create, existing, values = [], {}, {}
    for section in sections:
        if not section.include:
            continue
        if section.target != Entity.DEAL and section.choice != "new":
            existing[section.target] = section.choice
            continue
        create.append(section.target)
        data, custom = {}, {}
        for item in section.inputs:
            if item.key.startswith("custom."):
                if item.value not in ("", []):  # left empty: what the lead carries fills it
                    custom[item.key.removeprefix("custom.")] = item.value
            else:
                data[item.key] = item.value
        values[section.target] = {**data, "custom": custom}
    pipeline_id = values.get(Entity.DEAL, {}).get("pipeline_id") or None
    return {"create": create, "existing": existing, "values": values, "pipeline_id": pipeline_id}


def _show_errors(sections: list[Section], errors: dict) -> None:
    """Put each target's field messages next to its input, the rest on top of its section."""
    for section in sections:
        problems = dict(errors.get(section.target) or {})
        for item in section.inputs:
            item.errors = problems.pop(item.key, [])
        for key, messages in problems.items():
            label = _field_label(section.target, key)
            section.errors.extend(f"{label}: {message}" if label else message for message in messages)


def _field_label(target: str, key: str) -> str:
    spec = standard_field(target, key)
    if spec is not None:
        return str(spec.label)
    custom = {f"custom.{d.key}": d.label for d in services.custom_fields(target)}
    return custom.get(key, "" if key == "id" else key)


def _lead_or_page(lead_id: int):
    """The conversion plan, or the response for a lead that cannot be converted."""
    try:
        return conversion.plan(lead_id, current_membership()), None
    except Conflict as error:
        lead = services.get(Entity.LEAD, lead_id, current_membership())
        return None, (render_template("crm/flow/convert.html", lead=lead, closed=str(error.message)), 409)
    except NotFound:
        abort(404)
    except ServiceError as error:
        abort(error.status, description=str(error.message))


@bp.route("/leads/<int:lead_id>/convert", methods=["GET", "POST"])
@tenant_required
@login_required
def convert_lead(lead_id: int):
    plan, refusal = _lead_or_page(lead_id)
    if refusal:
        return refusal
    if services.ensure_default_pipeline(Entity.DEAL):
        db.session.commit()  # the deal pipeline a new company gets on its first look is kept
    if request.method == "GET":
        return render_template("crm/flow/convert.html", lead=plan.lead, sections=_sections(plan), problems=[])
    sections = _sections(plan, request.form)
    try:
        conversion.convert(lead_id, current_membership(), **_conversion_request(sections))
    except services.FieldErrors as error:
        db.session.rollback()
        _show_errors(sections, error.fields)
        problems = [_("Nothing was created: fill in the fields marked below.")]
    except ServiceError as error:
        db.session.rollback()
        problems = [_messages(error)]
    else:
        db.session.commit()
        flash(_("The lead is converted."), "success")
        return redirect(f"/leads/{lead_id}")  # its card links to what it became
    return render_template("crm/flow/convert.html", lead=plan.lead, sections=sections, problems=problems), 422
