"""What a template can print: a record and what hangs off it, dumped to primitives by marshmallow.

The template never sees an ORM object — only dicts, lists, strings, Decimals and ISO dates made
here — so a placeholder can reach data, never a session, a relationship or a method. One schema
per thing a template names; `placeholders()` lists them for the editor and the check on save.
"""
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields
from sqlalchemy import select

from saas.auth.models import User
from saas.crm import services as crm
from saas.crm.models import Company, Contact, Deal, Entity, Stage
from saas.settings import requisites as our_company
from tenants.db import db
from tenants.models import TenantRef

IMAGE_NAMES = ("logo", "stamp", "signature")


def _label(text):
    return {"label": text}


class PersonSchema(Schema):
    name = fields.String(metadata=_label(_l("Name")))
    email = fields.String(metadata=_label(_l("Email")))


class CompanySchema(Schema):
    id = fields.Integer(metadata=_label(_l("Number in the CRM")))
    name = fields.String(metadata=_label(_l("Company name")))
    tin = fields.String(metadata=_label(_l("TIN")))
    address = fields.String(metadata=_label(_l("Address")))
    phone = fields.Function(lambda c: (c.phones or [""])[0], metadata=_label(_l("First phone")))
    email = fields.Function(lambda c: (c.emails or [""])[0], metadata=_label(_l("First email")))
    phones = fields.List(fields.String(), metadata=_label(_l("All phones")))
    emails = fields.List(fields.String(), metadata=_label(_l("All emails")))
    website = fields.String(metadata=_label(_l("Website")))


class ContactSchema(Schema):
    id = fields.Integer(metadata=_label(_l("Number in the CRM")))
    full_name = fields.Function(lambda c: c.name, metadata=_label(_l("Full name")))
    first_name = fields.String(metadata=_label(_l("First name")))
    last_name = fields.String(metadata=_label(_l("Last name")))
    position = fields.String(metadata=_label(_l("Position")))
    phone = fields.Function(lambda c: (c.phones or [""])[0], metadata=_label(_l("First phone")))
    email = fields.Function(lambda c: (c.emails or [""])[0], metadata=_label(_l("First email")))
    phones = fields.List(fields.String(), metadata=_label(_l("All phones")))
    emails = fields.List(fields.String(), metadata=_label(_l("All emails")))
    birthday = fields.Date(metadata=_label(_l("Birthday")))


class DealSchema(Schema):
    id = fields.Integer(metadata=_label(_l("Number in the CRM")))
    title = fields.String(metadata=_label(_l("Title")))
    amount = fields.Decimal(metadata=_label(_l("Amount")))
    currency = fields.String(metadata=_label(_l("Currency code")))
    stage = fields.Function(lambda d: d.stage_name, metadata=_label(_l("Stage")))
    close_date = fields.Date(metadata=_label(_l("Expected close date")))
    notes = fields.String(metadata=_label(_l("Notes")))


class ItemSchema(Schema):
    position = fields.Integer(metadata=_label(_l("Line number")))
    name = fields.String(metadata=_label(_l("Product or service")))
    quantity = fields.Decimal(metadata=_label(_l("Quantity")))
    unit = fields.String(metadata=_label(_l("Unit")))
    price = fields.Decimal(metadata=_label(_l("Price")))
    discount = fields.Decimal(metadata=_label(_l("Discount, %")))
    vat_rate = fields.Decimal(metadata=_label(_l("VAT rate, %")))
    net = fields.Decimal(metadata=_label(_l("Amount without VAT")))
    vat = fields.Decimal(metadata=_label(_l("VAT")))
    total = fields.Decimal(metadata=_label(_l("Amount with VAT")))


class TotalsSchema(Schema):
    net = fields.Decimal(metadata=_label(_l("Total without VAT")))
    vat = fields.Decimal(metadata=_label(_l("Total VAT")))
    total = fields.Decimal(metadata=_label(_l("Total with VAT")))
    count = fields.Integer(metadata=_label(_l("Number of lines")))


class OurCompanySchema(Schema):
    name = fields.String(metadata=_label(_l("Our name")))
    legal_name = fields.String(metadata=_label(_l("Legal name")))
    tin = fields.String(metadata=_label(_l("TIN")))
    kpp = fields.String(metadata=_label(_l("KPP")))
    ogrn = fields.String(metadata=_label(_l("OGRN")))
    address = fields.String(metadata=_label(_l("Address")))
    bank_name = fields.String(metadata=_label(_l("Bank")))
    bank_bik = fields.String(metadata=_label(_l("BIC")))
    bank_account = fields.String(metadata=_label(_l("Account")))
    bank_corr_account = fields.String(metadata=_label(_l("Correspondent account")))
    bank_swift = fields.String(metadata=_label(_l("SWIFT")))
    director = fields.String(metadata=_label(_l("Director")))
    accountant = fields.String(metadata=_label(_l("Chief accountant")))
    phone = fields.String(metadata=_label(_l("Phone")))
    email = fields.String(metadata=_label(_l("Email")))
    website = fields.String(metadata=_label(_l("Website")))
    logo = fields.String(metadata=_label(_l("Logo image (for <img src>)")))
    stamp = fields.String(metadata=_label(_l("Stamp image (for <img src>)")))
    signature = fields.String(metadata=_label(_l("Signature image (for <img src>)")))


# What each kind of template can name, besides the record itself.
COMMON = {"our": OurCompanySchema, "user": PersonSchema, "responsible": PersonSchema}
BY_RECORD = {
    Entity.DEAL: {"deal": DealSchema, "company": CompanySchema, "contact": ContactSchema, "items": ItemSchema,
                  "totals": TotalsSchema},
    Entity.COMPANY: {"company": CompanySchema, "contact": ContactSchema},
    Entity.CONTACT: {"contact": ContactSchema, "company": CompanySchema},
}
SCALARS = {"number": _l("Document number (given when the document is made)"), "today": _l("Today's date"),
           "currency": _l("Currency of the amounts"), "language": _l("Language of the template")}
SCALAR_EXAMPLES = {"today": "{{ today|date }}"}
RECORD_OF = {Entity.DEAL: Deal, Entity.COMPANY: Company, Entity.CONTACT: Contact}


def known_names(applies_to: str) -> dict[str, set[str]]:
    """Top-level name → its attributes (empty: a plain value), for the check on save."""
    names = {name: set(schema._declared_fields) for name, schema in {**COMMON, **BY_RECORD[applies_to]}.items()}
    names.pop("items", None)  # a list: its lines are checked as the loop's own names
    for name in (Entity.DEAL, Entity.COMPANY, Entity.CONTACT):
        if name in names:
            names[name] |= {"custom"} | {field.key for field in crm.custom_fields(name)}
    return {**names, **{name: set() for name in SCALARS}, **({"items": set()} if "items" in BY_RECORD[applies_to] else {})}


def placeholders(applies_to: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """For the editor: (group name, group label, [(expression, label)]) of everything insertable."""
    groups = [("", _l("Document"), [(SCALAR_EXAMPLES.get(name, f"{{{{ {name} }}}}"), label)
                                    for name, label in SCALARS.items()])]
    for name, schema in {**BY_RECORD[applies_to], **COMMON}.items():
        prefix = "item" if name == "items" else name
        entries = [(_example(prefix, field_name, field), field.metadata.get("label", field_name))
                   for field_name, field in schema._declared_fields.items()]
        if name in (Entity.DEAL, Entity.COMPANY, Entity.CONTACT):
            entries += [(f"{{{{ {name}.{field.key} }}}}", field.label) for field in crm.custom_fields(name)]
        if name == "items":
            entries.insert(0, ("{% for item in items %}…{% endfor %}", _l("Repeat for each line of the deal")))
        groups.append((name, GROUP_LABELS[name], entries))
    return groups


GROUP_LABELS = {"deal": _l("Deal"), "company": _l("Client company"), "contact": _l("Contact person"),
                "items": _l("Line items"), "totals": _l("Totals"), "our": _l("Our company"),
                "user": _l("Who makes the document"), "responsible": _l("Responsible employee")}


def _example(prefix: str, name: str, field) -> str:
    if isinstance(field, fields.Decimal) and name not in ("quantity", "discount", "vat_rate"):
        return f"{{{{ {prefix}.{name}|money }}}}"
    if isinstance(field, fields.Date):
        return f"{{{{ {prefix}.{name}|date }}}}"
    if prefix == "our" and name in IMAGE_NAMES:
        return f'<img src="{{{{ our.{name} }}}}" alt="" style="height: 25mm">'
    return f"{{{{ {prefix}.{name} }}}}"


# --- building ------------------------------------------------------------------------------

def build(tenant: TenantRef, applies_to: str, record, *, user_id: int | None, number: str, language: str,
          today, image_url) -> dict:
    """The context for one record (already read with the actor's access checked).

    `image_url(name)` gives the `src` of our logo, stamp or signature ("" when none is uploaded):
    a `dealdocs:` address for the PDF, a data: URI for the preview."""
    context = {"number": number, "today": today.isoformat(), "language": language,
               "our": _our(tenant, image_url), "user": _person(user_id),
               "responsible": _person(record.responsible_id)}
    if applies_to == Entity.DEAL:
        company = db.session.get(Company, record.company_id) if record.company_id else None
        contact_ids = crm.contact_ids_of(record.id)
        contact = db.session.get(Contact, contact_ids[0]) if contact_ids else None
        context.update(deal=_with_custom(Entity.DEAL, record, DealSchema().dump(_deal_view(record))),
                       items=_items(record), totals=_totals(record), currency=record.currency)
    elif applies_to == Entity.COMPANY:
        company, contact = record, _first_contact_of(record.id)
    else:
        company_ids = crm.company_ids_of(record.id)
        company, contact = (db.session.get(Company, company_ids[0]) if company_ids else None), record
    context.setdefault("currency", crm.default_currency())
    context["company"] = _with_custom(Entity.COMPANY, company, CompanySchema().dump(company)) if _live(company) \
        else _blank(CompanySchema, Entity.COMPANY)
    context["contact"] = _with_custom(Entity.CONTACT, contact, ContactSchema().dump(contact)) if _live(contact) \
        else _blank(ContactSchema, Entity.CONTACT)
    return _no_none(context)


def _live(record) -> bool:
    return record is not None and record.deleted_at is None


class _DealView:
    """The deal with its stage's name (the schema reads attributes)."""

    def __init__(self, deal: Deal, stage_name: str):
        self._deal, self.stage_name = deal, stage_name

    def __getattr__(self, name):
        return getattr(self._deal, name)


def _deal_view(deal: Deal) -> _DealView:
    return _DealView(deal, db.session.scalar(select(Stage.name).where(Stage.id == deal.stage_id)) or "")


def _items(deal: Deal) -> list[dict]:
    rows = []
    for position, item in enumerate(deal.items, start=1):
        row = {**crm.item_values(item), **crm.item_totals(item), "position": position}
        rows.append(ItemSchema().dump(row))
    return rows


def _totals(deal: Deal) -> dict:
    return TotalsSchema().dump({**crm.deal_totals(deal.items), "count": len(deal.items)})


def _first_contact_of(company_id: int):
    from saas.crm.models import ContactCompany

    contact_id = db.session.scalar(select(ContactCompany.contact_id).where(ContactCompany.company_id == company_id)
                                   .order_by(ContactCompany.contact_id).limit(1))
    return db.session.get(Contact, contact_id) if contact_id else None


def _with_custom(entity: str, record, dumped: dict) -> dict:
    """Custom fields by their key (list fields by their labels), beside the standard fields
    (which win a clash of names) and under `custom`."""
    custom = {}
    for field in crm.custom_fields(entity):
        custom[field.key] = _custom_value(field, (record.custom or {}).get(field.key))
    return {**custom, **dumped, "custom": custom}


def _custom_value(field, value):
    if value is None:
        return ""
    labels = {item["id"]: item["label"] for item in (field.options or {}).get("items", [])}
    if labels:
        return ", ".join(labels.get(v, "") for v in value) if isinstance(value, list) else labels.get(value, "")
    return value


def _blank(schema, entity: str | None = None) -> dict:
    """Every field empty: a deal without a company still fills a template that names one."""
    blank = {name: [] if isinstance(field, fields.List) else "" for name, field in schema._declared_fields.items()}
    if entity:
        custom = {field.key: "" for field in crm.custom_fields(entity)}
        blank = {**custom, **blank, "custom": custom}
    return blank


def _person(user_id: int | None) -> dict:
    user = db.session.get(User, user_id) if user_id else None
    return PersonSchema().dump(user) if user else _blank(PersonSchema)


def _our(tenant: TenantRef, image_url) -> dict:
    values = {**our_company.requisites(), **{name: image_url(name) for name in IMAGE_NAMES}}
    return OurCompanySchema().dump(values)


def _no_none(value):
    """None prints as "None" in Jinja: an empty value prints nothing instead."""
    if isinstance(value, dict):
        return {key: _no_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_no_none(item) for item in value]
    return "" if value is None else value

