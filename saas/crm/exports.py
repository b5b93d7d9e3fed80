"""Export of a filtered list (every visible record) to CSV or XLSX.

Columns are the standard fields, then the custom fields (their labels as headers), then the ID.
Values are written so that importing the file again reads them back: phones in E.164, amounts
and dates plain, employees, pipelines, stages, list items and companies by name.
"""
import csv
import io
import re
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterator

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from tenants.db import db

from . import access, services
from .fields import STANDARD, Kind, display
from .models import Company, Contact, ContactCompany, DealContact, Entity, ListItem, Pipeline, Stage

CHUNK = 500  # records fetched (and link names looked up) at a time


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable  # (record, Lookups) → text


class Lookups:
    """Names for the ids records hold: fetched once per export, links once per chunk."""

    def __init__(self, actor):
        self.actor = actor
        self.people = services.staff_names()
        self.pipelines = dict(db.session.execute(select(Pipeline.id, Pipeline.name)).all())
        self.stages = dict(db.session.execute(select(Stage.id, Stage.name)).all())
        self.list_items = dict(db.session.execute(select(ListItem.id, ListItem.label)).all())
        self.companies: dict[int, str] = {}
        self.links: dict[str, dict[int, list[str]]] = {}

    def load_chunk(self, entity: str, records: list) -> None:
        ids = [record.id for record in records]
        company_ids = {getattr(record, "company_id", None) for record in records} - {None}
        # Linked records are named only where the person may see them, as on the cards.
        self.companies = dict(db.session.execute(select(Company.id, Company.name).where(
            Company.id.in_(company_ids), access.visible(Company, Entity.COMPANY, self.actor))).all())
        if any(spec.kind == Kind.COMPANIES for spec in STANDARD[entity]):
            self.links["company_ids"] = self._names(
                select(ContactCompany.contact_id, Company.name).join(Company, Company.id == ContactCompany.company_id)
                .where(ContactCompany.contact_id.in_(ids), access.visible(Company, Entity.COMPANY, self.actor)))
        if any(spec.kind == Kind.CONTACTS for spec in STANDARD[entity]):
            self.links["contact_ids"] = self._names(
                select(DealContact.deal_id, Contact.first_name + " " + Contact.last_name)
                .join(Contact, Contact.id == DealContact.contact_id)
                .where(DealContact.deal_id.in_(ids), access.visible(Contact, Entity.CONTACT, self.actor)))

    @staticmethod
    def _names(query) -> dict[int, list[str]]:
        names: dict[int, list[str]] = {}
        for owner_id, name in db.session.execute(query):
            names.setdefault(owner_id, []).append(name.strip())
        return names


def _standard_value(name: str, kind: str) -> Callable:
    def value(record, lookups: Lookups) -> str:
        raw = getattr(record, name, None)
        if kind in (Kind.COMPANIES, Kind.CONTACTS):
            return "; ".join(lookups.links.get(name, {}).get(record.id, []))
        if raw is None or raw == []:
            return ""
        if kind in (Kind.PHONES, Kind.EMAILS):
            return ", ".join(raw)  # E.164: what an import reads back as the same number
        if kind == Kind.USER:
            return lookups.people.get(raw, "")
        if kind == Kind.PIPELINE:
            return lookups.pipelines.get(raw, "")
        if kind == Kind.STAGE:
            return lookups.stages.get(raw, "")
        if kind == Kind.CLASSIFIER:
            return lookups.list_items.get(raw, "")
        if kind == Kind.COMPANY:
            return lookups.companies.get(raw, "")
        if kind == "dates":
            return "; ".join(f"{entry['label']} {entry['date']}".strip() for entry in raw)
        return raw.isoformat() if hasattr(raw, "isoformat") else str(raw)
    return value


def _custom_value(key: str, kind: str, options: dict) -> Callable:
    def value(record, lookups: Lookups) -> str:
        raw = (record.custom or {}).get(key)
        if kind in (Kind.LIST, Kind.MULTILIST, Kind.BOOL):
            return display(kind, raw, options=options)
        return "" if raw is None else str(raw)
    return value


def columns(entity: str) -> list[Column]:
    found = [Column(str(spec.label), _standard_value(spec.name, spec.kind)) for spec in STANDARD[entity]]
    found += [Column(d.label, _custom_value(d.key, d.type, dict(d.options or {})))
              for d in services.custom_fields(entity)]
    found.append(Column(str(_l("ID")), lambda record, lookups: str(record.id)))
    return found


def rows(entity: str, query, chosen: list[Column], actor) -> Iterator[list[str]]:
    """The header, then one line per record, read from the database CHUNK records at a time."""
    yield [column.header for column in chosen]
    lookups = Lookups(actor)
    for chunk in db.session.scalars(query.execution_options(yield_per=CHUNK)).partitions():
        lookups.load_chunk(entity, chunk)
        for record in chunk:
            yield [safe_cell(column.value(record, lookups)) for column in chosen]


_PLAIN_NUMBER = re.compile(r"[+-][\d\s().,-]*")


def safe_cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula: "=HYPERLINK(…)" is written "'=HYPERLINK(…)".
    Phone numbers and negative amounts stay as they are; import removes the quote."""
    if text[:1] in ("=", "@") or (text[:1] in ("+", "-") and not _PLAIN_NUMBER.fullmatch(text)):
        return "'" + text
    return text


def csv_chunks(lines: Iterator[list[str]], per_chunk: int = 200) -> Iterator[str]:
    """UTF-8 with a BOM, so Excel opens Cyrillic right; sent a few hundred lines at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    for count, line in enumerate(lines, start=1):
        writer.writerow(line)
        if count % per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def xlsx_file(lines: Iterator[list[str]], title: str):
    """An .xlsx workbook written row by row (write-only mode) into a temporary file."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    for line in lines:
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", cell) for cell in line])
    output = tempfile.SpooledTemporaryFile(max_size=8 * 2**20)
    workbook.save(output)
    output.seek(0)
    return output
