"""The record form and the list filters, built from the field registry and the custom fields.

Custom fields are dynamic, so there are no WTForms classes here: `inputs()` describes what
a form shows, `form_values()` turns a record into what its inputs hold, and `data_from()`
turns what was submitted into the plain dict the services coerce and check (CSRF is
checked for every POST by Flask-WTF's CSRFProtect).
"""
import re
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from . import admin, services
from .fields import CURRENCIES, STANDARD, Kind, format_phone
from .models import CustomField, Entity, LeadStatus

# Shown on the form in another way: a deal's pipeline follows from the stage chosen.
NOT_ON_FORM = {Entity.DEAL: {"pipeline_id"}}
LINE_ITEM_KEYS = ("name", "quantity", "unit", "price", "discount", "vat_rate")
EMPTY_ROWS = 3  # blank line-item / date rows offered under the filled ones


@dataclass
class Input:
    name: str  # the form key: "phones", "custom.payment", "created_from"
    label: object
    # text, textarea, email, tel, number, date, select, multiselect, ids, record, dates, date_range, number_range
    widget: str
    required: bool = False
    choices: list = field(default_factory=list)  # [(value, label)]; grouped: [(group, [(value, label)])]
    grouped: bool = False
    hint: object = None
    target: str | None = None  # the entity a record/ids input points at
    names: tuple = ()  # a range's (from name, to name)


# --- choices -------------------------------------------------------------------------------

def staff_choices(current: int | None = None) -> list:
    people = services.staff()
    if current and current not in {user_id for user_id, _name in people}:
        people.append((current, services.staff_names().get(current, f"#{current}")))  # someone who left
    return [(str(user_id), name) for user_id, name in people]


def stage_choices(entity: str) -> list:
    """Stages grouped by pipeline (deals), or the lead stage bar."""
    return [(p.name, [(str(s.id), s.name) for s in p.stages]) for p in services.pipelines(entity)]


def custom_list_choices(definition: CustomField) -> list:
    return [(str(item["id"]), item["label"]) for item in definition.options.get("items", [])]


# --- the record form -----------------------------------------------------------------------

_WIDGETS = {
    Kind.LONGTEXT: "textarea", Kind.PHONES: "textarea", Kind.EMAILS: "textarea", Kind.EMAIL: "email",
    Kind.PHONE: "tel", Kind.MONEY: "number", Kind.NUMBER: "number", Kind.DATE: "date", Kind.COMPANY: "record",
    Kind.COMPANIES: "ids", Kind.CONTACTS: "ids", Kind.LINK: "record", Kind.MULTILIST: "multiselect",
    "dates": "dates",
}
_HINTS = {
    Kind.PHONES: _l("One per line, in any form: +7 912 345-67-89, 8 912 345 67 89…"),
    Kind.EMAILS: _l("One per line."),
    Kind.COMPANIES: _l("Company numbers (#) separated by commas."),
    Kind.CONTACTS: _l("Contact numbers (#) separated by commas."),
    Kind.COMPANY: _l("The company's number (#)."),
    Kind.LINK: _l("The record's number (#)."),
}


def inputs(entity: str, *, responsible: int | None = None) -> list[Input]:
    """Every input of the record form, standard fields first, then the custom ones."""
    tenant_required = services.required_fields(entity)
    result = []
    for spec in STANDARD[entity]:
        if spec.name in NOT_ON_FORM.get(entity, ()):
            continue
        made = Input(spec.name, spec.label, _WIDGETS.get(spec.kind, "text"),
                     required=spec.required or spec.name in tenant_required, hint=_HINTS.get(spec.kind),
                     target={Kind.COMPANY: Entity.COMPANY, Kind.COMPANIES: Entity.COMPANY,
                             Kind.CONTACTS: Entity.CONTACT}.get(spec.kind))
        if spec.kind in (Kind.USER, Kind.STAGE, Kind.CLASSIFIER, Kind.CURRENCY):
            made.widget = "select"
        if spec.kind == Kind.USER:
            made.choices = staff_choices(responsible)
        elif spec.kind == Kind.STAGE:
            made.label, made.choices, made.grouped = _l("Pipeline and stage"), stage_choices(entity), True
        elif spec.kind == Kind.CLASSIFIER:
            made.choices = [("", "—"), *((str(i.id), i.label) for i in admin.list_items(spec.list_key))]
        elif spec.kind == Kind.CURRENCY:
            made.choices = [(code, code) for code in CURRENCIES]
        elif spec.name == "amount" and entity == Entity.DEAL:
            made.hint = _l("With line items, the amount is their total.")
        result.append(made)
    return result + [custom_input(d) for d in services.custom_fields(entity)]


def custom_input(definition: CustomField) -> Input:
    made = Input(f"custom.{definition.key}", definition.label, _WIDGETS.get(definition.type, "text"),
                 required=definition.required, hint=_HINTS.get(definition.type),
                 target=definition.options.get("target"))
    if definition.type == Kind.LIST:
        made.widget, made.choices = "select", [("", "—"), *custom_list_choices(definition)]
    elif definition.type == Kind.MULTILIST:
        made.choices = custom_list_choices(definition)
    elif definition.type == Kind.BOOL:
        made.widget, made.choices = "select", [("", "—"), ("yes", _l("Yes")), ("no", _l("No"))]
    return made


def raw(kind: str, value):
    """How a stored value sits in its input (the inverse of what the services coerce)."""
    if value is None:
        return ""
    if kind == Kind.PHONES:
        return "\n".join(format_phone(phone) for phone in value)
    if kind == Kind.EMAILS:
        return "\n".join(value)
    if kind in (Kind.COMPANIES, Kind.CONTACTS):
        return ", ".join(str(item) for item in value)
    if kind == Kind.MULTILIST:
        return [str(item) for item in value]
    if kind == Kind.BOOL:
        return "yes" if value else "no"
    if kind == Kind.PHONE:
        return format_phone(value)
    if kind == "dates":
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def form_values(entity: str, record) -> dict:
    """What each input holds for an existing record."""
    stored = services.values(entity, record)
    result = {spec.name: raw(spec.kind, stored[spec.name]) for spec in STANDARD[entity]}
    for definition in services.custom_fields(entity):
        result[f"custom.{definition.key}"] = raw(definition.type, (record.custom or {}).get(definition.key))
    if entity == Entity.DEAL:
        result["line_items"] = [{key: raw(Kind.TEXT, item[key]) for key in LINE_ITEM_KEYS}
                                for item in stored["line_items"]]
    return result


def new_values(entity: str, args) -> dict:
    """A new record's inputs: sensible defaults, then what the link asked for (?company_id=7)."""
    result = {}
    if entity in (Entity.DEAL, Entity.LEAD):
        result["currency"] = services.default_currency()
    if entity == Entity.DEAL:
        chosen = next((p for p in services.pipelines(Entity.DEAL) if str(p.id) == args.get("pipeline_id")),
                      services.pipelines(Entity.DEAL)[0])
        result["stage_id"] = str(services.first_stage(chosen).id)
    standard = {spec.name for spec in STANDARD[entity]}
    result.update({name: value for name, value in args.items() if name in standard or name.startswith("custom.")})
    return result


def _rows(form, prefix: str, keys: tuple) -> list[dict]:
    """Rows of inputs named "<prefix>.<n>.<key>", in order, blank rows left out."""
    found = {}
    for name in form:
        match = re.fullmatch(rf"{re.escape(prefix)}\.(\d+)\.(\w+)", name)
        if match and match.group(2) in keys:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = form.get(name, "").strip()
    return [row for _index, row in sorted(found.items()) if any(row.values())]


def submitted(entity: str, form) -> dict:
    """What the person typed, input by input (shown again, as typed, when something is wrong)."""
    result = {}
    for made in inputs(entity):
        if made.widget == "multiselect":
            result[made.name] = form.getlist(made.name)
        elif made.widget == "dates":
            result[made.name] = _rows(form, made.name, ("label", "date"))
        else:
            result[made.name] = form.get(made.name, "")
    if entity == Entity.DEAL:
        result["line_items"] = _rows(form, "line_items", LINE_ITEM_KEYS)
    return result


def _same(new, old) -> bool:
    if isinstance(new, str) and isinstance(old, str):
        return new.replace("\r\n", "\n").strip() == old.strip()
    return new == old


def data_from(entity: str, typed: dict, before: dict | None = None) -> dict:
    """The services' data dict from the submitted inputs; when editing (`before` given) only
    what changed, so an untouched link to a record one may not see stays as it is."""
    data, custom = {}, {}
    for name, value in typed.items():
        if before is not None and _same(value, before.get(name, "")):
            continue
        if name == "line_items":
            value = [{key: cell for key, cell in row.items() if cell != ""} for row in value]
        if name.startswith("custom."):
            custom[name.removeprefix("custom.")] = value
        else:
            data[name] = value
    if custom:
        data["custom"] = custom
    return data


# --- the list filters ----------------------------------------------------------------------

LEAD_STATUSES = [(LeadStatus.OPEN, _l("Open")), (LeadStatus.QUALIFIED, _l("Qualified")),
                 (LeadStatus.JUNK, _l("Junk"))]
ANY = ("", _l("Any"))


def filter_inputs(entity: str) -> list[Input]:
    """The list page's filters; their names are exactly what services.filters_from reads."""
    result = [Input("q", _l("Search"), "text"),
              Input("responsible_id", _l("Responsible"), "select", choices=[ANY, *staff_choices()])]
    if entity == Entity.DEAL:
        result.append(Input("pipeline_id", _l("Pipeline"), "select",
                            choices=[ANY, *((str(p.id), p.name) for p in services.pipelines(Entity.DEAL))]))
        result.append(Input("stage_id", _l("Stage"), "select", choices=[("", [ANY]), *stage_choices(entity)],
                            grouped=True))
    if entity == Entity.LEAD:
        stages = services.lead_pipeline().stages
        result.append(Input("stage_id", _l("Stage"), "select", choices=[ANY, *((str(s.id), s.name) for s in stages)]))
        result.append(Input("status", _l("Status"), "select", choices=[ANY, *LEAD_STATUSES]))
    result.append(Input("created", _l("Created"), "date_range", names=("created_from", "created_to")))
    result.append(Input("updated", _l("Updated"), "date_range", names=("updated_from", "updated_to")))
    if entity == Entity.DEAL:
        result.append(Input("close", _l("Expected close date"), "date_range", names=("close_from", "close_to")))
    return result + [custom_filter(d) for d in services.custom_fields(entity)]


def custom_filter(definition: CustomField) -> Input:
    name = f"custom.{definition.key}"
    if definition.type in (Kind.LIST, Kind.MULTILIST):
        return Input(name, definition.label, "select", choices=[ANY, *custom_list_choices(definition)])
    if definition.type in (Kind.NUMBER, Kind.MONEY, Kind.DATE):
        widget = "date_range" if definition.type == Kind.DATE else "number_range"
        return Input(name, definition.label, widget, names=(f"{name}.from", f"{name}.to"))
    if definition.type == Kind.BOOL:
        return Input(name, definition.label, "select", choices=[ANY, ("yes", _l("Yes")), ("no", _l("No"))])
    if definition.type == Kind.LINK:
        return Input(name, definition.label, "number", hint=_l("The record's number (#)."))
    return Input(name, definition.label, "text")
