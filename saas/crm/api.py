"""REST API v1 for CRM records, pipelines and custom field definitions.

Thin like the pages: parse with .schemas, call the services as the token's person
(`g.api_membership`), commit, dump. Service errors come out as JSON with each failing field
named under "fields" (per target for a lead conversion). The four record types share one set
of views, registered per type so that each has its own paths and schemas in the OpenAPI
description (their operations are the `openapi` attribute of each view).
"""
from dataclasses import dataclass

from flask import Blueprint, g, render_template, request
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from saas.api.openapi import operations_by_tag, spec
from saas.api.schemas import ErrorOut
from saas.api.views import json_body, register_error_handlers, token_required
from saas.errors import NotFound
from tenants.db import db

from . import admin, conversion, services
from . import schemas as s
from .models import ContactCompany, CustomField, DealContact, DealItem, Entity, LeadStatus, Pipeline

bp = Blueprint("crm_api", __name__, url_prefix="/api/v1")
register_error_handlers(bp)


def _saved(body, status: int = 200):
    """Commit what the service changed, then answer (the body is dumped before the commit)."""
    db.session.commit()
    return body, status


def _deleted():
    db.session.commit()
    return "", 204


# --- records -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resource:
    entity: str
    plural: str
    out: type
    into: type
    page: type
    filters: tuple[str, ...]  # list filters besides q, created_*, updated_* and custom.<key>


RESOURCES = (
    Resource(Entity.COMPANY, "companies", s.CompanyOut, s.CompanyIn, s.CompanyPage, ("responsible_id",)),
    Resource(Entity.CONTACT, "contacts", s.ContactOut, s.ContactIn, s.ContactPage, ("responsible_id", "company_id")),
    Resource(Entity.DEAL, "deals", s.DealOut, s.DealIn, s.DealPage,
             ("pipeline_id", "stage_id", "responsible_id", "company_id", "close_from", "close_to")),
    Resource(Entity.LEAD, "leads", s.LeadOut, s.LeadIn, s.LeadPage, ("stage_id", "responsible_id", "status")),
)
BY_ENTITY = {resource.entity: resource for resource in RESOURCES}


class _Shown:
    """A record plus what its schema shows beyond its own columns (links, line items, totals)."""

    def __init__(self, record, extra: dict):
        self._record, self._extra = record, extra

    def __getattr__(self, name):
        return self._extra[name] if name in self._extra else getattr(self._record, name)


def _grouped(pairs) -> dict[int, list]:
    grouped = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


def _extras(entity: str, records: list) -> dict[int, dict]:
    """Per record id, the shown values that live in other tables: loaded for a whole page at once."""
    ids = [record.id for record in records]
    if entity == Entity.CONTACT:
        companies = _grouped(db.session.execute(select(ContactCompany.contact_id, ContactCompany.company_id)
                                                .where(ContactCompany.contact_id.in_(ids))
                                                .order_by(ContactCompany.company_id)))
        return {i: {"company_ids": companies.get(i, [])} for i in ids}
    if entity == Entity.DEAL:
        contacts = _grouped(db.session.execute(select(DealContact.deal_id, DealContact.contact_id)
                                               .where(DealContact.deal_id.in_(ids)).order_by(DealContact.contact_id)))
        items = _grouped((item.deal_id, item) for item in db.session.scalars(
            select(DealItem).where(DealItem.deal_id.in_(ids)).order_by(DealItem.position, DealItem.id)))
        return {i: {"contact_ids": contacts.get(i, []), "totals": services.deal_totals(items.get(i, [])),
                    "line_items": [{**services.item_values(item), **services.item_totals(item)}
                                   for item in items.get(i, [])]} for i in ids}
    if entity == Entity.LEAD:
        return {record.id: {"converted": _converted(record)} for record in records}
    return {i: {} for i in ids}


def _converted(lead) -> dict | None:
    if lead.status != LeadStatus.QUALIFIED:
        return None
    return {"contact_id": lead.contact_id, "company_id": lead.company_id, "deal_id": lead.deal_id}


def dump_records(entity: str, records: list) -> list[dict]:
    extras = _extras(entity, records)
    return BY_ENTITY[entity].out(many=True).dump([_Shown(record, extras[record.id]) for record in records])


def dump_record(entity: str, record) -> dict:
    return dump_records(entity, [record])[0]


def _list_view(resource: Resource):
    def view():
        paging = s.ListArgs().load(request.args)
        page = services.list_records(resource.entity, g.api_membership, services.filters_from(request.args),
                                     paging.get("sort") or services.DEFAULT_SORT, paging["page"], paging["per_page"])
        return {"items": dump_records(resource.entity, page.items), "total": page.total,
                "total_capped": page.total_capped, "page": page.page, "per_page": page.per_page}
    return view


def _create_view(resource: Resource):
    @json_body(resource.into)
    def view(data):
        record = services.create(resource.entity, data, g.api_membership)
        return _saved(dump_record(resource.entity, record), 201)
    return view


def _read_view(resource: Resource):
    def view(record_id: int):
        return dump_record(resource.entity, services.get(resource.entity, record_id, g.api_membership))
    return view


def _update_view(resource: Resource):
    @json_body(resource.into)
    def view(data, record_id: int):
        record = services.update(resource.entity, record_id, data, g.api_membership)
        return _saved(dump_record(resource.entity, record))
    return view


def _delete_view(resource: Resource):
    def view(record_id: int):
        services.delete_record(resource.entity, record_id, g.api_membership)
        return _deleted()
    return view


# --- what the OpenAPI description says of each record view ---------------------------------

SECURITY = [{"bearer": []}]


def _json(description: str, schema) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(**by_status: str) -> dict:
    common = {"401": "Missing, invalid or revoked token", "404": "No such record, or it is not yours to see"}
    return {status: _json(description, ErrorOut) for status, description in sorted({**common, **by_status}.items())}


def _query(name: str, description: str, schema: dict | None = None) -> dict:
    return {"in": "query", "name": name, "description": description, "schema": schema or {"type": "string"}}


def _filter_parameters(resource: Resource) -> list[dict]:
    dates = {"type": "string", "format": "date"}
    ids = "one id, or several separated by commas"
    described = {
        "q": ("words in the name or title", None), "responsible_id": (ids, None), "company_id": (ids, None),
        "pipeline_id": (ids, None), "stage_id": (ids, None),
        "status": ("open, qualified or junk", {"type": "string", "enum": ["open", "qualified", "junk"]}),
        "created_from": ("created on or after", dates), "created_to": ("created on or before", dates),
        "updated_from": ("changed on or after", dates), "updated_to": ("changed on or before", dates),
        "close_from": ("expected to close on or after", dates), "close_to": ("expected to close on or before", dates),
    }
    names = ("q", *resource.filters, "created_from", "created_to", "updated_from", "updated_to")
    return [_query(name, *described[name]) for name in names]


def _record_operations(resource: Resource) -> dict[str, dict]:
    name, tag = resource.entity, resource.plural.capitalize()
    body = {"content": {"application/json": {"schema": resource.into}}}
    return {
        "list": {"get": {
            "tags": [tag], "summary": f"List {resource.plural} (those the token's person may see)",
            "description": "Filter by custom fields with `custom.<key>=value` (a list item by id or label, text "
                           "by a part of it) and numbers, money and dates with `custom.<key>.from` and "
                           "`custom.<key>.to`. A filter that cannot be read is a 422 naming it.",
            "security": SECURITY,
            "parameters": [{"in": "query", "schema": s.ListArgs}, *_filter_parameters(resource)],
            "responses": {"200": _json(f"A page of {resource.plural}", resource.page),
                          **_errors(**{"422": "A filter, the sort or the page cannot be read"})}}},
        "create": {"post": {
            "tags": [tag], "summary": f"Create a {name}", "security": SECURITY, "requestBody": body,
            "responses": {"201": _json(f"The new {name}", resource.out),
                          **_errors(**{"403": "Not allowed by the access rules",
                                       "422": "Missing or invalid fields, each named"})}}},
        "read": {"get": {
            "tags": [tag], "summary": f"One {name}", "security": SECURITY,
            "responses": {"200": _json(f"The {name}", resource.out), **_errors()}}},
        "update": {"patch": {
            "tags": [tag], "summary": f"Change a {name} (only the fields sent)", "security": SECURITY,
            "requestBody": body,
            "responses": {"200": _json(f"The changed {name}", resource.out),
                          **_errors(**{"403": "Visible but not editable by this person",
                                       "409": "A closed lead cannot change",
                                       "422": "Invalid fields, each named"})}}},
        "delete": {"delete": {
            "tags": [tag], "summary": f"Move a {name} to the recycle bin (restorable for 30 days)",
            "security": SECURITY,
            "responses": {"204": {"description": "In the recycle bin"},
                          **_errors(**{"403": "Visible but not editable by this person"})}}},
    }


def _register(resource: Resource) -> None:
    operations = _record_operations(resource)
    routes = (("list", "", ["GET"], _list_view), ("create", "", ["POST"], _create_view),
              ("read", "/<int:record_id>", ["GET"], _read_view),
              ("update", "/<int:record_id>", ["PATCH"], _update_view),
              ("delete", "/<int:record_id>", ["DELETE"], _delete_view))
    for action, suffix, methods, make_view in routes:
        view = token_required(make_view(resource))
        view.openapi = operations[action]
        bp.add_url_rule(f"/{resource.plural}{suffix}", endpoint=f"{resource.plural}_{action}", view_func=view,
                        methods=methods)


for _resource in RESOURCES:
    _register(_resource)


# --- moving along stages and converting leads ----------------------------------------------

@bp.post("/deals/<int:deal_id>/move")
@token_required
@json_body(s.MoveDealIn)
def move_deal(data, deal_id: int):
    """Move a deal to another stage (one click on the stage bar, a drop on the board).
    ---
    post:
      tags: [Deals]
      summary: Move a deal to a stage, of its pipeline or another
      security: [{bearer: []}]
      requestBody: {content: {application/json: {schema: MoveDealIn}}}
      responses:
        200: {description: "The moved deal", content: {application/json: {schema: DealOut}}}
        404: {description: "No such deal, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
        422: {description: "No such stage", content: {application/json: {schema: ErrorOut}}}
    """
    deal = services.move_deal(deal_id, data["stage_id"], g.api_membership)
    return _saved(dump_record(Entity.DEAL, deal))


@bp.post("/leads/<int:lead_id>/move")
@token_required
@json_body(s.MoveLeadIn)
def move_lead(data, lead_id: int):
    """Move a lead along its stage bar; the junk stage needs a reason.
    ---
    post:
      tags: [Leads]
      summary: Move a lead to a stage of the lead bar (qualify it by converting it)
      security: [{bearer: []}]
      requestBody: {content: {application/json: {schema: MoveLeadIn}}}
      responses:
        200: {description: "The moved lead", content: {application/json: {schema: LeadOut}}}
        404: {description: "No such lead, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
        409: {description: "The lead is closed", content: {application/json: {schema: ErrorOut}}}
        422: {description: "Not a lead stage, the qualified stage, or junk without a reason", content: {application/json: {schema: ErrorOut}}}
    """
    lead = services.move_lead(lead_id, data["stage_id"], g.api_membership, junk_reason=data.get("junk_reason"))
    return _saved(dump_record(Entity.LEAD, lead))


@bp.post("/leads/<int:lead_id>/convert")
@token_required
@json_body(s.ConvertIn)
def convert_lead(data, lead_id: int):
    """Convert a lead into a contact, a company and/or a deal, linked to each other.
    ---
    post:
      tags: [Leads]
      summary: Convert a lead (all targets are created, or none)
      description: >
        Data is carried from the lead; `values` fills what it lacks per target. If a target misses
        a required field, nothing is created and the 422 names each missing field per target,
        e.g. {"fields": {"company": {"tin": ["Required."]}}}.
      security: [{bearer: []}]
      requestBody: {content: {application/json: {schema: ConvertIn}}}
      responses:
        201: {description: "The ids of what the lead became", content: {application/json: {schema: ConvertedOut}}}
        404: {description: "No such lead, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
        409: {description: "Already converted, or junk", content: {application/json: {schema: ErrorOut}}}
        422: {description: "Missing or invalid fields, per target", content: {application/json: {schema: ErrorOut}}}
    """
    ids = conversion.convert(lead_id, g.api_membership, create=data["create"], pipeline_id=data.get("pipeline_id"),
                             values=data["values"], existing=data["existing"])
    return _saved(ids, 201)


# --- pipelines and stages ------------------------------------------------------------------

def _pipeline(pipeline_id: int) -> Pipeline:
    found = db.session.get(Pipeline, pipeline_id)
    if found is None:
        raise NotFound(_l("No such pipeline."))
    return found


@bp.get("/pipelines")
@token_required
def list_pipelines():
    """Deal pipelines with their stages (or the lead stage bar with ?entity=lead).
    ---
    get:
      tags: [Pipelines]
      summary: Deal pipelines and their stages, in order
      security: [{bearer: []}]
      parameters:
        - {in: query, name: entity, schema: {type: string, enum: [deal, lead], default: deal}}
      responses:
        200: {description: "The pipelines", content: {application/json: {schema: {type: array, items: PipelineOut}}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
    """
    found = services.pipelines(s.PipelineArgs().load(request.args)["entity"])  # a new company's first call creates its defaults
    return _saved(s.PipelineOut(many=True).dump(found))


@bp.post("/pipelines")
@token_required
@json_body(s.PipelineIn)
def create_pipeline(data):
    """A new deal pipeline (owner and administrators).
    ---
    post:
      tags: [Pipelines]
      summary: Create a deal pipeline (default stages unless given)
      security: [{bearer: []}]
      requestBody: {content: {application/json: {schema: PipelineIn}}}
      responses:
        201: {description: "The pipeline", content: {application/json: {schema: PipelineOut}}}
        403: {description: "Only the owner and administrators", content: {application/json: {schema: ErrorOut}}}
        422: {description: "Missing name or invalid stages", content: {application/json: {schema: ErrorOut}}}
    """
    created = admin.create_pipeline(g.api_membership, data.get("name"), data.get("stages"))
    return _saved(s.PipelineOut().dump(created), 201)


@bp.get("/pipelines/<int:pipeline_id>")
@token_required
def read_pipeline(pipeline_id: int):
    """One pipeline and its stages.
    ---
    get:
      tags: [Pipelines]
      summary: One pipeline and its stages
      security: [{bearer: []}]
      responses:
        200: {description: "The pipeline", content: {application/json: {schema: PipelineOut}}}
        404: {description: "No such pipeline", content: {application/json: {schema: ErrorOut}}}
    """
    return s.PipelineOut().dump(_pipeline(pipeline_id))


@bp.patch("/pipelines/<int:pipeline_id>")
@token_required
@json_body(s.PipelineIn)
def update_pipeline(data, pipeline_id: int):
    """Rename a pipeline and/or replace its stage list.
    ---
    patch:
      tags: [Pipelines]
      summary: Rename a pipeline and/or edit its stages (rename, recolour, reorder, add, remove)
      security: [{bearer: []}]
      requestBody: {content: {application/json: {schema: PipelineIn}}}
      responses:
        200: {description: "The pipeline", content: {application/json: {schema: PipelineOut}}}
        403: {description: "Only the owner and administrators", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such pipeline", content: {application/json: {schema: ErrorOut}}}
        409: {description: "A removed stage still holds records", content: {application/json: {schema: ErrorOut}}}
        422: {description: "Invalid name or stages", content: {application/json: {schema: ErrorOut}}}
    """
    if "name" in data:
        admin.rename_pipeline(g.api_membership, pipeline_id, data["name"])
    if "stages" in data:
        admin.save_stages(g.api_membership, pipeline_id, data["stages"])
    return _saved(s.PipelineOut().dump(_pipeline(pipeline_id)))


@bp.delete("/pipelines/<int:pipeline_id>")
@token_required
def delete_pipeline(pipeline_id: int):
    """Delete an empty deal pipeline.
    ---
    delete:
      tags: [Pipelines]
      summary: Delete a deal pipeline that holds no deals
      security: [{bearer: []}]
      responses:
        204: {description: "Deleted"}
        403: {description: "Only the owner and administrators", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such pipeline", content: {application/json: {schema: ErrorOut}}}
        409: {description: "It holds deals, is the lead bar or the last pipeline", content: {application/json: {schema: ErrorOut}}}
    """
    admin.delete_pipeline(g.api_membership, pipeline_id)
    return _deleted()


# --- custom field definitions --------------------------------------------------------------

def _custom_field(field_id: int) -> CustomField:
    found = db.session.get(CustomField, field_id)
    if found is None:
        raise NotFound(_l("No such field."))
    return found


@bp.get("/fields")
@token_required
def list_fields():
    """Custom field definitions.
    ---
    get:
      tags: [Custom fields]
      summary: Custom fields of one record type (all types without ?entity)
      security: [{bearer: []}]
      parameters:
        - {in: query, name: entity, schema: {type: string, enum: [lead, contact, company, deal]}}
      responses:
        200: {description: "The definitions", content: {application/json: {schema: {type: array, items: CustomFieldOut}}}}
        422: {description: "No such record type", content: {application/json: {schema: ErrorOut}}}
    """
    entity = s.EntityArg().load(request.args).get("entity")
    found = [f for e in ([entity] if entity else Entity.ALL) for f in services.custom_fields(e)]
    return s.CustomFieldOut(many=True).dump(found)


@bp.post("/fields")
@token_required
@json_body(s.CustomFieldIn)
def create_field(data):
    """Add a custom field (owner and administrators).
    ---
    post:
      tags: [Custom fields]
      summary: Add a custom field to leads, contacts, companies or deals
      security: [{bearer: []}]
      requestBody: {content: {application/json: {schema: CustomFieldIn}}}
      responses:
        201: {description: "The definition", content: {application/json: {schema: CustomFieldOut}}}
        403: {description: "Only the owner and administrators", content: {application/json: {schema: ErrorOut}}}
        409: {description: "The key is taken", content: {application/json: {schema: ErrorOut}}}
        422: {description: "Invalid definition", content: {application/json: {schema: ErrorOut}}}
    """
    created = admin.create_custom_field(g.api_membership, data.get("entity", ""), label=data.get("label", ""),
                                        type=data.get("type", ""), required=data.get("required", False),
                                        items=data.get("items"), target=data.get("target"), key=data.get("key"))
    return _saved(s.CustomFieldOut().dump(created), 201)


@bp.get("/fields/<int:field_id>")
@token_required
def read_field(field_id: int):
    """One custom field definition.
    ---
    get:
      tags: [Custom fields]
      summary: One custom field definition
      security: [{bearer: []}]
      responses:
        200: {description: "The definition", content: {application/json: {schema: CustomFieldOut}}}
        404: {description: "No such field", content: {application/json: {schema: ErrorOut}}}
    """
    return s.CustomFieldOut().dump(_custom_field(field_id))


@bp.patch("/fields/<int:field_id>")
@token_required
@json_body(s.CustomFieldChange)
def update_field(data, field_id: int):
    """Relabel a custom field, make it (not) required, change its list items.
    ---
    patch:
      tags: [Custom fields]
      summary: Change a custom field's label, requiredness or list items (its key and type stay)
      security: [{bearer: []}]
      requestBody: {content: {application/json: {schema: CustomFieldChange}}}
      responses:
        200: {description: "The definition", content: {application/json: {schema: CustomFieldOut}}}
        403: {description: "Only the owner and administrators", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such field", content: {application/json: {schema: ErrorOut}}}
        422: {description: "Invalid label or items", content: {application/json: {schema: ErrorOut}}}
    """
    changed = admin.update_custom_field(g.api_membership, field_id, label=data.get("label"),
                                        required=data.get("required"), items=data.get("items"))
    return _saved(s.CustomFieldOut().dump(changed))


@bp.delete("/fields/<int:field_id>")
@token_required
def delete_field(field_id: int):
    """Delete a custom field and its values.
    ---
    delete:
      tags: [Custom fields]
      summary: Delete a custom field and its values (they stay in the records' history)
      security: [{bearer: []}]
      responses:
        204: {description: "Deleted"}
        403: {description: "Only the owner and administrators", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such field", content: {application/json: {schema: ErrorOut}}}
    """
    admin.delete_custom_field(g.api_membership, field_id)
    return _deleted()


# --- the description, for people -----------------------------------------------------------

@bp.get("/docs")
def docs():
    """The OpenAPI description as a page (served from here: no CDN, works offline)."""
    document = spec()
    return render_template("api/docs.html", spec=document, groups=operations_by_tag(document))
