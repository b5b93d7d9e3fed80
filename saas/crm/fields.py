"""What each field of a record is and what a value of it may be.

One registry of standard fields per record type, and the same value kinds for the custom
fields admins add. Pages, the API, import and export all read and write values through
`coerce` and `display`, so "8 (912) 345-67-89" becomes "+79123456789" everywhere alike.
"""
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask_babel import format_decimal, lazy_gettext as _l

from .models import Entity


class Kind:
    TEXT, LONGTEXT, NUMBER, MONEY, DATE, BOOL = "text", "longtext", "number", "money", "date", "bool"
    LIST, MULTILIST, LINK = "list", "multilist", "link"
    PHONE, PHONES, EMAIL, EMAILS, TIN, URL, CURRENCY = "phone", "phones", "email", "emails", "tin", "url", "currency"
    USER, COMPANY, COMPANIES, CONTACTS, PIPELINE, STAGE, CLASSIFIER = (
        "user", "company", "companies", "contacts", "pipeline", "stage", "classifier")


# The kinds an admin can give a custom field.
CUSTOM_KINDS = (Kind.TEXT, Kind.NUMBER, Kind.MONEY, Kind.DATE, Kind.BOOL, Kind.LIST, Kind.MULTILIST, Kind.LINK)

KIND_LABELS = {
    Kind.TEXT: _l("Text"), Kind.NUMBER: _l("Number"), Kind.MONEY: _l("Money"), Kind.DATE: _l("Date"),
    Kind.BOOL: _l("Yes/no"), Kind.LIST: _l("List"), Kind.MULTILIST: _l("List (several)"),
    Kind.LINK: _l("Link to a record"),
}

# Company classification lists the tenant fills: list key → the company's column.
CLASSIFIERS = {
    "activity_type": ("activity_type_id", _l("Activity type")),
    "region": ("region_id", _l("Region")),
    "group": ("group_id", _l("Group")),
    "category": ("category_id", _l("Category")),
    "source": ("source_id", _l("Advertising source")),
}


@dataclass(frozen=True)
class Field:
    name: str
    label: object
    kind: str
    required: bool = False  # always
    requirable: bool = False  # an admin may make it required
    list_key: str | None = None  # for Kind.CLASSIFIER


STANDARD: dict[str, tuple[Field, ...]] = {
    Entity.COMPANY: (
        Field("name", _l("Company name"), Kind.TEXT, required=True),
        Field("tin", _l("TIN"), Kind.TIN, requirable=True),
        Field("phones", _l("Phones"), Kind.PHONES, requirable=True),
        Field("emails", _l("Emails"), Kind.EMAILS, requirable=True),
        Field("address", _l("Address"), Kind.LONGTEXT, requirable=True),
        Field("website", _l("Website"), Kind.URL, requirable=True),
        *(Field(column, label, Kind.CLASSIFIER, requirable=True, list_key=key)
          for key, (column, label) in CLASSIFIERS.items()),
        Field("responsible_id", _l("Responsible"), Kind.USER),
        Field("important_dates", _l("Important dates"), "dates"),
        Field("notes", _l("Notes"), Kind.LONGTEXT),
    ),
    Entity.CONTACT: (
        Field("first_name", _l("First name"), Kind.TEXT, required=True),
        Field("last_name", _l("Last name"), Kind.TEXT, requirable=True),
        Field("position", _l("Position"), Kind.TEXT, requirable=True),
        Field("phones", _l("Phones"), Kind.PHONES, requirable=True),
        Field("emails", _l("Emails"), Kind.EMAILS, requirable=True),
        Field("birthday", _l("Birthday"), Kind.DATE, requirable=True),
        Field("company_ids", _l("Companies"), Kind.COMPANIES, requirable=True),
        Field("responsible_id", _l("Responsible"), Kind.USER),
        Field("notes", _l("Notes"), Kind.LONGTEXT),
    ),
    Entity.DEAL: (
        Field("title", _l("Title"), Kind.TEXT, required=True),
        Field("amount", _l("Amount"), Kind.MONEY, requirable=True),
        Field("currency", _l("Currency"), Kind.CURRENCY),
        Field("pipeline_id", _l("Pipeline"), Kind.PIPELINE),
        Field("stage_id", _l("Stage"), Kind.STAGE),
        Field("company_id", _l("Company"), Kind.COMPANY, requirable=True),
        Field("contact_ids", _l("Contacts"), Kind.CONTACTS, requirable=True),
        Field("close_date", _l("Expected close date"), Kind.DATE, requirable=True),
        Field("responsible_id", _l("Responsible"), Kind.USER),
        Field("notes", _l("Notes"), Kind.LONGTEXT),
    ),
    Entity.LEAD: (
        Field("title", _l("Title"), Kind.TEXT, required=True),
        Field("source", _l("Source"), Kind.TEXT, requirable=True),
        Field("contact_name", _l("Contact name"), Kind.TEXT, requirable=True),
        Field("position", _l("Position"), Kind.TEXT),
        Field("company_name", _l("Company name"), Kind.TEXT, requirable=True),
        Field("tin", _l("TIN"), Kind.TIN),
        Field("email", _l("Email"), Kind.EMAIL, requirable=True),
        Field("phone", _l("Phone"), Kind.PHONE, requirable=True),
        Field("address", _l("Address"), Kind.LONGTEXT),
        Field("amount", _l("Amount"), Kind.MONEY),
        Field("currency", _l("Currency"), Kind.CURRENCY),
        Field("responsible_id", _l("Responsible"), Kind.USER),
        Field("notes", _l("Notes"), Kind.LONGTEXT),
    ),
}

ENTITY_LABELS = {Entity.LEAD: _l("Lead"), Entity.CONTACT: _l("Contact"), Entity.COMPANY: _l("Company"),
                 Entity.DEAL: _l("Deal")}
ENTITY_PLURALS = {Entity.LEAD: _l("Leads"), Entity.CONTACT: _l("Contacts"), Entity.COMPANY: _l("Companies"),
                  Entity.DEAL: _l("Deals")}


def standard_field(entity: str, name: str) -> Field | None:
    return next((f for f in STANDARD[entity] if f.name == name), None)


class BadValue(ValueError):
    """A value that does not fit its field; the message says what would."""


CURRENCIES = ("RUB", "USD", "EUR", "UAH", "KZT", "BYN", "THB", "AED", "CNY", "GBP")
TEXT_LIMIT = 300
LONGTEXT_LIMIT = 20000
_TIN = re.compile(r"^\d{10}$|^\d{12}$")


def _blank(raw) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip()) or raw == [] or raw == ""


def _text(raw, limit: int) -> str:
    if not isinstance(raw, (str, int, float, Decimal)):
        raise BadValue(_l("Enter text."))
    value = str(raw).strip()
    if len(value) > limit:
        raise BadValue(_l("Too long: %(n)d characters at most.", n=limit))
    if "\x00" in value:
        raise BadValue(_l("Enter text."))
    return value


def to_decimal(raw, places: int = 2) -> Decimal:
    if isinstance(raw, bool):
        raise BadValue(_l("Enter a number."))
    text = str(raw).strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise BadValue(_l("Enter a number, e.g. 1500.50."))
    if not value.is_finite() or abs(value) >= Decimal(10) ** 13:
        raise BadValue(_l("Enter a number, e.g. 1500.50."))
    return value.quantize(Decimal(1).scaleb(-places))


def to_date(raw) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = str(raw).strip()
    for pattern in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise BadValue(_l("Enter a date as YYYY-MM-DD or DD.MM.YYYY."))


def normalize_phone(raw, region: str) -> str:
    text = str(raw).strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise BadValue(_l("“%(phone)s” is not a phone number.", phone=text[:40]))
    if not phonenumbers.is_valid_number(number):
        raise BadValue(_l("“%(phone)s” is not a phone number.", phone=text[:40]))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str) -> str:
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def normalize_email(raw) -> str:
    try:
        return validate_email(str(raw).strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise BadValue(_l("“%(email)s” is not an email address.", email=str(raw)[:60]))


def many(raw) -> list:
    """A list from a list, or from text with one item per line / comma / semicolon."""
    if isinstance(raw, (list, tuple)):
        return [item for item in raw if not _blank(item)]
    return [part for part in re.split(r"[\n;,]+", str(raw)) if part.strip()]


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def _ids(raw) -> list[int]:
    try:
        ids = _unique([int(item) for item in many(raw)])
    except (TypeError, ValueError):
        raise BadValue(_l("Choose from the list."))
    if any(not 0 < i < 2 ** 63 for i in ids):  # ids are bigints: anything else names no record
        raise BadValue(_l("Choose from the list."))
    return ids


def coerce(kind: str, raw, *, region: str = "RU", options: dict | None = None):
    """The stored value of `raw` for a field of `kind`, None when blank; BadValue if it cannot be."""
    if _blank(raw):
        return [] if kind in (Kind.PHONES, Kind.EMAILS, Kind.COMPANIES, Kind.CONTACTS, Kind.MULTILIST) else None
    if kind == Kind.TEXT:
        return _text(raw, TEXT_LIMIT) or None
    if kind == Kind.LONGTEXT:
        return _text(raw, LONGTEXT_LIMIT) or None
    if kind == Kind.URL:
        value = _text(raw, TEXT_LIMIT)
        return value if "://" in value else f"https://{value}"
    if kind == Kind.TIN:
        value = re.sub(r"\s+", "", str(raw))
        if not _TIN.match(value):
            raise BadValue(_l("A TIN has 10 or 12 digits."))
        return value
    if kind == Kind.PHONE:
        return normalize_phone(raw, region)
    if kind == Kind.PHONES:
        return _unique([normalize_phone(item, region) for item in many(raw)])
    if kind == Kind.EMAIL:
        return normalize_email(raw)
    if kind == Kind.EMAILS:
        return _unique([normalize_email(item) for item in many(raw)])
    if kind == Kind.MONEY:
        return to_decimal(raw)
    if kind == Kind.NUMBER:
        value = to_decimal(raw, places=6).normalize()
        return int(value) if value == value.to_integral() else float(value)
    if kind == Kind.DATE:
        return to_date(raw)
    if kind == Kind.BOOL:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "y", "on", "да", "д"):
            return True
        if text in ("0", "false", "no", "n", "off", "нет", "н"):
            return False
        raise BadValue(_l("Answer yes or no."))
    if kind == Kind.CURRENCY:
        value = str(raw).strip().upper()
        if value not in CURRENCIES:
            raise BadValue(_l("Use one of %(codes)s.", codes=", ".join(CURRENCIES)))
        return value
    if kind in (Kind.LIST, Kind.MULTILIST):
        chosen = [_list_item(options or {}, item) for item in many(raw)]
        return chosen[0] if kind == Kind.LIST else _unique(chosen)
    if kind in (Kind.COMPANIES, Kind.CONTACTS):
        return _ids(raw)
    if kind in (Kind.USER, Kind.COMPANY, Kind.PIPELINE, Kind.STAGE, Kind.CLASSIFIER, Kind.LINK):
        ids = _ids(raw)
        if len(ids) != 1:
            raise BadValue(_l("Choose one."))
        return ids[0]
    if kind == "dates":
        return _important_dates(raw)
    raise BadValue(_l("Unknown field type."))


def _list_item(options: dict, raw) -> int:
    """A list item's id from its id, else from its label (import files carry labels)."""
    items, text = options.get("items", []), str(raw).strip()
    found = next((item for item in items if str(item["id"]) == text), None) or next(
        (item for item in items if item["label"].casefold() == text.casefold()), None)
    if found is None:
        raise BadValue(_l("“%(value)s” is not in the list.", value=text[:60]))
    return found["id"]


def _important_dates(raw) -> list[dict]:
    if not isinstance(raw, list):
        raise BadValue(_l("Give dates as a list of {label, date}."))
    dates = []
    for entry in raw:
        if not isinstance(entry, dict) or _blank(entry.get("date")):
            continue
        dates.append({"label": _text(entry.get("label") or "", 100), "date": to_date(entry["date"]).isoformat()})
    return dates


def to_json(value):
    """A stored value as JSON carries it (Decimal → "12.50", date → "2026-11-24")."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value


def display(kind: str, value, *, options: dict | None = None) -> str:
    """How a person reads a value on a card or in an export."""
    if value is None or value == [] or value == "":
        return ""
    if kind == Kind.PHONES:
        return ", ".join(format_phone(v) for v in value)
    if kind == Kind.PHONE:
        return format_phone(value)
    if kind == Kind.EMAILS:
        return ", ".join(value)
    if kind == Kind.MONEY:
        return format_decimal(Decimal(str(value)), format="#,##0.00")
    if kind == Kind.BOOL:
        return str(_l("Yes")) if value else str(_l("No"))
    if kind in (Kind.LIST, Kind.MULTILIST):
        labels = {item["id"]: item["label"] for item in (options or {}).get("items", [])}
        values = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(v, "?") for v in values)
    if kind == Kind.DATE and isinstance(value, str):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def slugify_key(label: str) -> str:
    """A stable API key for a custom field from its label ("Тип оплаты" → "field_…" if not Latin)."""
    key = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:40]
    return key if key and key[0].isalpha() else ""
