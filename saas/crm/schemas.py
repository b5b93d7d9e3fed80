"""Marshmallow schemas of the CRM API: what each record looks like in JSON and what it accepts.

The output names are a contract other clients rely on. Record inputs list exactly the fields
the services accept (the registry in .fields) and leave values raw: the services coerce them
("8 (912) 345-67-89" → "+79123456789") and name every failing field at once, so a client
learns all its mistakes from one 422.
"""
from marshmallow import EXCLUDE, Schema, fields, validate

from .conversion import TARGETS
from .fields import CUSTOM_KINDS, STANDARD, Kind
from .models import Entity

DECIMAL = {"type": "string", "format": "decimal"}

# How a value of each kind travels in JSON, for the OpenAPI description.
_KIND_PROPERTIES = {
    Kind.NUMBER: {"type": "number"},
    Kind.MONEY: {**DECIMAL, "example": "1500.00"},
    Kind.DATE: {"type": "string", "format": "date"},
    Kind.BOOL: {"type": "boolean"},
    Kind.PHONE: {"type": "string", "example": "+79123456789"},
    Kind.PHONES: {"type": "array", "items": {"type": "string"}, "example": ["8 (912) 345-67-89"]},
    Kind.EMAILS: {"type": "array", "items": {"type": "string"}},
    Kind.TIN: {"type": "string", "example": "7707083893"},
    Kind.COMPANIES: {"type": "array", "items": {"type": "integer"}},
    Kind.CONTACTS: {"type": "array", "items": {"type": "integer"}},
    Kind.USER: {"type": "integer", "description": "user id of an active employee"},
    Kind.COMPANY: {"type": "integer"},
    Kind.PIPELINE: {"type": "integer"},
    Kind.STAGE: {"type": "integer"},
    Kind.CLASSIFIER: {"type": "integer", "description": "id of an item of the company list"},
    "dates": {"type": "array", "items": {"type": "object", "properties": {
        "label": {"type": "string"}, "date": {"type": "string", "format": "date"}}}},
}
_CUSTOM_DESCRIPTION = ("Custom field values by field key. Lists: an item id or label in, the item id out "
                       "(several for a multiple list); dates as YYYY-MM-DD; money as a decimal string.")


def _decimal(places: int = 2) -> fields.Decimal:
    return fields.Decimal(as_string=True, places=places, metadata=DECIMAL)


class _In(Schema):
    class Meta:
        unknown = EXCLUDE  # read-only fields a client sends back (id, created_at…) are ignored


# --- records out ---------------------------------------------------------------------------

class _RecordOut(Schema):
    id = fields.Integer()
    responsible_id = fields.Integer(allow_none=True, metadata={"description": "user id"})
    custom = fields.Dict(keys=fields.String(), metadata={"description": _CUSTOM_DESCRIPTION})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class CompanyOut(_RecordOut):
    name = fields.String()
    tin = fields.String(allow_none=True)
    phones = fields.List(fields.String(), metadata={"description": "E.164, e.g. +79123456789"})
    emails = fields.List(fields.String())
    address = fields.String(allow_none=True)
    website = fields.String(allow_none=True)
    activity_type_id = fields.Integer(allow_none=True)
    region_id = fields.Integer(allow_none=True)
    group_id = fields.Integer(allow_none=True)
    category_id = fields.Integer(allow_none=True)
    source_id = fields.Integer(allow_none=True)
    important_dates = fields.List(fields.Dict(), metadata=_KIND_PROPERTIES["dates"])
    notes = fields.String(allow_none=True)


class ContactOut(_RecordOut):
    first_name = fields.String()
    last_name = fields.String()
    position = fields.String(allow_none=True)
    phones = fields.List(fields.String(), metadata={"description": "E.164, e.g. +79123456789"})
    emails = fields.List(fields.String())
    birthday = fields.Date(allow_none=True)
    company_ids = fields.List(fields.Integer())
    notes = fields.String(allow_none=True)


class LineItemOut(Schema):
    name = fields.String()
    quantity = _decimal(3)
    unit = fields.String()
    price = _decimal()
    discount = _decimal()
    vat_rate = _decimal()
    net = _decimal()
    vat = _decimal()
    total = _decimal()


class TotalsOut(Schema):
    net = _decimal()
    vat = _decimal()
    total = _decimal()


class DealOut(_RecordOut):
    title = fields.String()
    amount = _decimal()
    currency = fields.String()
    pipeline_id = fields.Integer()
    stage_id = fields.Integer()
    stage_changed_at = fields.DateTime()
    company_id = fields.Integer(allow_none=True)
    contact_ids = fields.List(fields.Integer())
    close_date = fields.Date(allow_none=True)
    lead_id = fields.Integer(allow_none=True, metadata={"description": "the lead it was converted from"})
    line_items = fields.List(fields.Nested(LineItemOut))
    totals = fields.Nested(TotalsOut)
    notes = fields.String(allow_none=True)


class ConvertedOut(Schema):
    contact_id = fields.Integer(allow_none=True)
    company_id = fields.Integer(allow_none=True)
    deal_id = fields.Integer(allow_none=True)


class LeadOut(_RecordOut):
    title = fields.String()
    source = fields.String(allow_none=True)
    contact_name = fields.String(allow_none=True)
    position = fields.String(allow_none=True)
    company_name = fields.String(allow_none=True)
    tin = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True, metadata={"description": "E.164"})
    address = fields.String(allow_none=True)
    amount = fields.Decimal(as_string=True, places=2, allow_none=True, metadata=DECIMAL)
    currency = fields.String()
    stage_id = fields.Integer()
    status = fields.String(metadata={"enum": ["open", "qualified", "junk"]})
    junk_reason = fields.String(allow_none=True)
    converted = fields.Nested(ConvertedOut, allow_none=True,
                              metadata={"description": "what the lead became; null until converted"})
    converted_at = fields.DateTime(allow_none=True)
    notes = fields.String(allow_none=True)


# --- records in ----------------------------------------------------------------------------

class LineItemIn(_In):
    name = fields.Raw(metadata={"type": "string"})
    quantity = fields.Raw(metadata={**DECIMAL, "default": "1"})
    unit = fields.Raw(metadata={"type": "string"})
    price = fields.Raw(metadata=DECIMAL)
    discount = fields.Raw(metadata={**DECIMAL, "description": "percent"})
    vat_rate = fields.Raw(metadata={**DECIMAL, "description": "percent, added on top of the net"})


def _record_in(entity: str, name: str, **extra) -> type[Schema]:
    """Every standard field of `entity` plus its custom values, as the services read them."""
    attributes = {spec.name: fields.Raw(allow_none=True, metadata=_KIND_PROPERTIES.get(spec.kind, {"type": "string"}))
                  for spec in STANDARD[entity]}
    attributes["custom"] = fields.Dict(keys=fields.String(), metadata={"description": _CUSTOM_DESCRIPTION})
    return _In.from_dict({**attributes, **extra}, name=name)


CompanyIn = _record_in(Entity.COMPANY, "CompanyIn")
ContactIn = _record_in(Entity.CONTACT, "ContactIn")
DealIn = _record_in(Entity.DEAL, "DealIn", line_items=fields.List(fields.Nested(LineItemIn), metadata={
    "description": "replaces the deal's lines; the amount becomes their total"}))
LeadIn = _record_in(Entity.LEAD, "LeadIn")


def _page_of(out: type[Schema], name: str) -> type[Schema]:
    return Schema.from_dict({
        "items": fields.List(fields.Nested(out)),
        "total": fields.Integer(metadata={"description": "matching records, counted up to 10,000"}),
        "total_capped": fields.Boolean(metadata={"description": "true when there are more than `total`"}),
        "page": fields.Integer(),
        "per_page": fields.Integer(),
    }, name=name)


CompanyPage = _page_of(CompanyOut, "CompanyPage")
ContactPage = _page_of(ContactOut, "ContactPage")
DealPage = _page_of(DealOut, "DealPage")
LeadPage = _page_of(LeadOut, "LeadPage")


class ListArgs(_In):
    """Query string of a list, beside the filters (q, stage_id, …, custom.<key>[.from|.to])."""

    sort = fields.String(metadata={"description": "a column, `-` first for descending", "example": "-updated_at"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


# --- moving and converting -----------------------------------------------------------------

class MoveDealIn(_In):
    stage_id = fields.Integer(required=True, metadata={"description": "may be a stage of another pipeline"})


class MoveLeadIn(_In):
    stage_id = fields.Integer(required=True)
    junk_reason = fields.String(allow_none=True, metadata={"description": "required for the junk stage"})


class ConvertIn(_In):
    create = fields.List(fields.String(), load_default=list,
                         metadata={"items": {"type": "string", "enum": list(TARGETS)}})
    pipeline_id = fields.Integer(allow_none=True, metadata={"description": "the new deal's pipeline"})
    values = fields.Dict(keys=fields.String(validate=validate.OneOf(TARGETS)), values=fields.Dict(),
                         load_default=dict,
                         metadata={"description": "per target, fields to fill or override, e.g. "
                                                  "{\"company\": {\"tin\": \"7707083893\"}}"})
    existing = fields.Dict(keys=fields.String(validate=validate.OneOf((Entity.CONTACT, Entity.COMPANY))),
                           values=fields.Integer(), load_default=dict,
                           metadata={"description": "link existing records instead: {\"contact\": 12}"})


# --- pipelines and stages ------------------------------------------------------------------

STAGE_KINDS = ("open", "won", "lost")


class StageOut(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String(metadata={"enum": list(STAGE_KINDS)})
    position = fields.Integer()
    color = fields.String()


class PipelineOut(Schema):
    id = fields.Integer()
    entity = fields.String(metadata={"enum": [Entity.DEAL, Entity.LEAD]})
    name = fields.String()
    position = fields.Integer()
    stages = fields.List(fields.Nested(StageOut))


class StageIn(_In):
    id = fields.Integer(metadata={"description": "an existing stage's id; leave out for a new stage"})
    name = fields.String()
    kind = fields.String(metadata={"enum": list(STAGE_KINDS)})
    color = fields.String(allow_none=True, metadata={"example": "#4f7cac"})


class PipelineIn(_In):
    name = fields.String()
    stages = fields.List(fields.Nested(StageIn), metadata={
        "description": "the whole stage list in order: open stages, one won, then lost ones. Stages left "
                       "out are removed (refused while they hold records)"})


# --- custom field definitions --------------------------------------------------------------

class ListItemOut(Schema):
    id = fields.Integer()
    label = fields.String()


class CustomFieldOut(Schema):
    id = fields.Integer()
    entity = fields.String(metadata={"enum": list(Entity.ALL)})
    key = fields.String(metadata={"description": "the name under `custom` in records"})
    label = fields.String()
    type = fields.String(metadata={"enum": list(CUSTOM_KINDS)})
    required = fields.Boolean()
    position = fields.Integer()
    items = fields.Function(lambda field: field.options.get("items"), metadata={
        "type": "array", "nullable": True, "items": {"$ref": "#/components/schemas/ListItemOut"},
        "description": "list fields only: their items (values store the item id)"})
    target = fields.Function(lambda field: field.options.get("target"), metadata={
        "type": "string", "nullable": True, "enum": list(Entity.ALL), "description": "link fields only"})


class CustomFieldChange(_In):
    label = fields.String()
    required = fields.Boolean()
    items = fields.List(fields.String(), metadata={"description": "list fields: item labels in order"})


class CustomFieldIn(CustomFieldChange):
    entity = fields.String(metadata={"enum": list(Entity.ALL)})
    type = fields.String(metadata={"enum": list(CUSTOM_KINDS)})
    key = fields.String(metadata={"description": "made from the label when left out"})
    target = fields.String(metadata={"enum": list(Entity.ALL), "description": "link fields: the record type"})


class EntityArg(_In):
    entity = fields.String(validate=validate.OneOf(Entity.ALL))


class PipelineArgs(_In):
    entity = fields.String(load_default=Entity.DEAL, validate=validate.OneOf((Entity.DEAL, Entity.LEAD)))


# Named in the OpenAPI description's components, in this order.
COMPONENTS = (CompanyOut, ContactOut, LineItemOut, TotalsOut, DealOut, ConvertedOut, LeadOut,
              LineItemIn, CompanyIn, ContactIn, DealIn, LeadIn, CompanyPage, ContactPage, DealPage, LeadPage,
              MoveDealIn, MoveLeadIn, ConvertIn, StageOut, PipelineOut, StageIn, PipelineIn,
              ListItemOut, CustomFieldOut, CustomFieldChange, CustomFieldIn)
