"""Import of CSV/XLSX files into companies, contacts, leads and deals.

An upload is read into a `Table` (headers and rows of text), its columns are mapped onto the
record's fields (guessed from the headers, English or Russian, then confirmed by the person),
and every row goes through `services.create` or `services.merge_into` as the person who started
the import, so access rules, required fields and the audit log apply as on the pages. Duplicates
(same email, phone or TIN, or the same ID and name as an exported record) are skipped, merged or
created anyway as the person chose.
"""
import csv
import io
import re
import zipfile
from dataclasses import dataclass, field as dataclass_field
from datetime import date, datetime

from flask_babel import force_locale, lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.exc import DBAPIError

from saas.auth.models import Membership, Role, User
from saas.errors import Invalid, NotFound, ServiceError
from tenants.db import db
from tenants.scope import current_tenant

from . import access, services
from .fields import STANDARD, BadValue, Field, Kind, coerce
from .models import Company, CustomField, Entity, ImportJob, Lead, ListItem

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
PREVIEW_ROWS = 10
PLURALS = {"companies": Entity.COMPANY, "contacts": Entity.CONTACT, "leads": Entity.LEAD, "deals": Entity.DEAL}
PLURAL_OF = {entity: plural for plural, entity in PLURALS.items()}


class Policy:
    SKIP, MERGE, CREATE = "skip", "merge", "create"
    ALL = (SKIP, MERGE, CREATE)


POLICY_LABELS = {Policy.SKIP: _l("Skip the row"), Policy.MERGE: _l("Merge it into the existing record"),
                 Policy.CREATE: _l("Create a new record anyway")}


class Status:
    NEW, QUEUED, RUNNING, DONE, FAILED = "new", "queued", "running", "done", "failed"
    ACTIVE = (QUEUED, RUNNING)


class FileProblem(Invalid):
    """The upload cannot be imported; the message says why and what would work."""


# --- reading files -------------------------------------------------------------------------

@dataclass
class Table:
    headers: list[str]
    rows: list[tuple[int, list[str]]]  # (row number as a spreadsheet shows it, cells); blank rows left out


def check_upload(filename: str, content: bytes) -> None:
    if kind_of(filename) is None:
        raise FileProblem(_l("Upload a .csv or .xlsx file (“%(name)s” is neither).", name=filename[:100]))
    if len(content) > MAX_BYTES:
        raise FileProblem(_l("The file is larger than %(mb)d MB. Split it into smaller files.", mb=MAX_BYTES // 2**20))
    if not content.strip():
        raise FileProblem(_l("The file is empty."))


def kind_of(filename: str) -> str | None:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return extension if extension in ("csv", "xlsx") else None


def read_table(filename: str, content: bytes) -> Table:
    """The file's header row and its non-blank rows, every cell as text. FileProblem if unreadable."""
    check_upload(filename, content)
    raw_rows = _xlsx_rows(content) if kind_of(filename) == "xlsx" else _csv_rows(content)
    headers, rows = None, []
    for number, cells in enumerate(raw_rows, start=1):
        cells = [_unescape(_cell_text(cell)).replace("\x00", "") for cell in cells]  # no database stores NUL
        if not any(cells):
            continue
        if headers is None:
            headers = _unique_headers(cells)
            continue
        if len(rows) >= MAX_ROWS:
            raise FileProblem(_l("The file has more than %(n)s rows. Split it into smaller files.", n=f"{MAX_ROWS:,}"))
        rows.append((number, (cells + [""] * len(headers))[:len(headers)]))
    if headers is None:
        raise FileProblem(_l("The file is empty."))
    if not rows:
        raise FileProblem(_l("The file has a header row but no data rows."))
    return Table(headers, rows)


def _csv_rows(content: bytes):
    text = _decode(content)
    return csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))


def _decode(content: bytes) -> str:
    """UTF-8 (a BOM is dropped), else Windows-1251: what Excel saves in Russia."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("cp1251")
    except UnicodeDecodeError:
        raise FileProblem(_l("The file's text encoding is not UTF-8 or Windows-1251. Save it as “CSV UTF-8”."))


def _delimiter(text: str) -> str:
    sample = text[:64 * 1024]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:  # one column, or too irregular to tell: the header line decides
        header = sample.splitlines()[0] if sample else ""
        return max(",;\t", key=header.count)


def _xlsx_rows(content: bytes):
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        return list(workbook.worksheets[0].iter_rows(values_only=True))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, IndexError, TypeError) as error:
        raise FileProblem(_l("The file could not be read as an Excel workbook (.xlsx).")) from error


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 79123456789.0 is a phone number or an amount, never a fraction
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(" ", "minutes")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _unescape(text: str) -> str:
    """Drop the quote our export puts before a cell that a spreadsheet would take for a formula."""
    return text[1:] if text[:1] == "'" and text[1:2] in ("=", "+", "-", "@") else text


def _unique_headers(cells: list[str]) -> list[str]:
    headers = []
    for index, cell in enumerate(cells, start=1):
        name = cell or str(_l("Column %(n)d", n=index))
        candidate, copy = name, 2
        while candidate in headers:
            candidate, copy = f"{name} ({copy})", copy + 1
        headers.append(candidate)
    return headers


# --- mapping columns onto fields -----------------------------------------------------------

ID = "id"
# Kinds a file cannot sensibly carry (a list of dated labels, a deal's several contacts).
UNMAPPABLE = ("dates", Kind.CONTACTS)
LIST_KINDS = (Kind.PHONES, Kind.EMAILS, Kind.COMPANIES, Kind.MULTILIST)

# Other names people give these columns (compared without case, spaces or punctuation).
SYNONYMS = {
    ID: ["id", "ид", "идентификатор"],
    "name": ["name", "название", "наименование", "компания", "company", "companyname", "организация",
             "названиекомпании"],
    "tin": ["tin", "инн", "inn", "taxid", "vat", "vatnumber", "taxnumber", "regnumber"],
    "phones": ["phone", "phones", "телефон", "телефоны", "тел", "mobile", "мобильный", "tel"],
    "phone": ["phone", "phones", "телефон", "тел", "mobile", "мобильный", "tel"],
    "emails": ["email", "emails", "почта", "электроннаяпочта", "mail", "емейл", "имейл"],
    "email": ["email", "emails", "почта", "электроннаяпочта", "mail", "емейл", "имейл"],
    "address": ["address", "адрес", "юридическийадрес", "фактическийадрес"],
    "website": ["website", "site", "web", "url", "сайт", "вебсайт"],
    "first_name": ["firstname", "givenname", "имя"],
    "last_name": ["lastname", "surname", "familyname", "фамилия"],
    "position": ["position", "jobtitle", "должность"],
    "birthday": ["birthday", "dateofbirth", "birthdate", "деньрождения", "датарождения"],
    "company_ids": ["company", "companies", "компания", "компании", "организация"],
    "company_id": ["company", "компания", "организация", "клиент"],
    "company_name": ["company", "companyname", "компания", "названиекомпании", "организация"],
    "contact_name": ["contact", "contactname", "контакт", "контактноелицо", "фио"],
    "title": ["title", "name", "название", "наименование", "сделка", "лид"],
    "amount": ["amount", "sum", "budget", "сумма", "бюджет"],
    "currency": ["currency", "валюта"],
    "pipeline_id": ["pipeline", "direction", "воронка", "направление"],
    "stage_id": ["stage", "стадия", "этап"],
    "close_date": ["closedate", "expectedclosedate", "датазакрытия", "предполагаемаядатазакрытия"],
    "responsible_id": ["responsible", "owner", "manager", "ответственный", "менеджер"],
    "notes": ["notes", "note", "comment", "comments", "комментарий", "примечание", "примечания", "заметки"],
    "source": ["source", "источник"],
    "activity_type_id": ["activitytype", "activity", "виддеятельности", "типдеятельности"],
    "region_id": ["region", "регион"],
    "group_id": ["group", "группа"],
    "category_id": ["category", "категория"],
    "source_id": ["source", "advertisingsource", "источник", "рекламныйисточник"],
}


@dataclass(frozen=True)
class Target:
    """A field a column can fill: `key` is a standard field's name, "custom.<key>" or "id"."""

    key: str
    label: str
    kind: str
    spec: Field | None = None
    custom: CustomField | None = None

    @property
    def takes_several(self) -> bool:
        return self.kind in LIST_KINDS


def targets(entity: str) -> list[Target]:
    found = [Target(ID, str(_l("ID (matches an exported record)")), Kind.NUMBER)]
    found += [Target(spec.name, str(spec.label), spec.kind, spec=spec)
              for spec in STANDARD[entity] if spec.kind not in UNMAPPABLE]
    found += [Target(f"custom.{d.key}", d.label, d.type, custom=d) for d in services.custom_fields(entity)]
    return found


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", str(text).casefold().replace("ё", "е"))


def _names_of(target: Target) -> set[str]:
    names = {_norm(target.label), _norm(target.key.removeprefix("custom.")), *SYNONYMS.get(target.key, [])}
    if target.spec is not None:
        with force_locale("en"):
            names.add(_norm(str(target.spec.label)))
        names.add(_norm(target.spec.name.removesuffix("_id").removesuffix("_ids")))
    return {name for name in names if name}


def auto_mapping(entity: str, headers: list[str]) -> dict[str, str]:
    """header → target key guessed from the header; each single-value field is taken once."""
    available = targets(entity)
    names = [(target, _names_of(target)) for target in available]
    mapping, taken = {}, set()
    for header in headers:
        wanted = _norm(header)
        for target, known in names:
            if wanted in known and (target.key not in taken or target.takes_several):
                mapping[header] = target.key
                taken.add(target.key)
                break
    return mapping


def clean_mapping(entity: str, headers: list[str], chosen: dict[str, str]) -> dict[str, str]:
    """Only real headers onto real targets; "" (or anything unknown) means the column is skipped."""
    keys = {target.key for target in targets(entity)}
    return {header: chosen[header] for header in headers if chosen.get(header) in keys}


# --- a row as the services take it ----------------------------------------------------------

@dataclass
class Row:
    number: int
    data: dict  # what services.create / merge_into take
    problems: dict = dataclass_field(default_factory=dict)  # field key → messages found before the services
    record_id: int | None = None  # the ID column, when mapped


class References:
    """Names a file carries for linked things (an employee, a pipeline, a stage, a list item, a
    company) → their ids, as our export writes them; plain ids pass through. Cached per import."""

    def __init__(self, actor: Membership):
        self.actor = actor
        self._people = None
        self._cache = {}

    def resolve(self, spec: Field, raw: str, data: dict):
        kind = spec.kind
        if kind == Kind.USER:
            return self._person(raw)
        if kind == Kind.PIPELINE:
            return self._pipeline(raw)
        if kind == Kind.STAGE:
            return self._stage(raw, data.get("pipeline_id"))
        if kind == Kind.CLASSIFIER:
            return self._list_item(spec.list_key, raw)
        if kind == Kind.COMPANY:
            return self._company(raw)
        if kind == Kind.COMPANIES:
            return [self._company(part) for part in re.split(r"[\n;]+", raw) if part.strip()]
        return raw

    def _person(self, raw: str):
        if raw.isdigit():
            return raw
        if self._people is None:
            rows = db.session.execute(
                select(User.id, User.name, User.email).join(Membership, Membership.user_id == User.id)
                .where(Membership.tenant_id == current_tenant().id, Membership.active.is_(True)))
            self._people = {}
            for row in rows:
                self._people.setdefault(row.email.casefold(), row.id)
                self._people.setdefault(row.name.casefold(), row.id)
        found = self._people.get(raw.casefold())
        if found is None:
            raise BadValue(_l("“%(value)s” is not an active employee (give their name or email).", value=raw[:60]))
        return found

    def _pipelines(self) -> list[tuple[int, str, list[tuple[int, str]]]]:
        if "pipelines" not in self._cache:
            self._cache["pipelines"] = [(p.id, p.name, [(s.id, s.name) for s in p.stages])
                                        for p in services.pipelines(Entity.DEAL)]
        return self._cache["pipelines"]

    def _pipeline(self, raw: str):
        if raw.isdigit():
            return raw
        for pipeline_id, name, _stages in self._pipelines():
            if name.casefold() == raw.casefold():
                return pipeline_id
        raise BadValue(_l("There is no pipeline “%(value)s”.", value=raw[:60]))

    def _stage(self, raw: str, pipeline_id):
        """A stage by name, in the row's pipeline when it names one, else in the first that has it."""
        if raw.isdigit():
            return raw
        chosen = [p for p in self._pipelines() if str(p[0]) == str(pipeline_id)]
        for _id, _name, stages in chosen or self._pipelines():
            for stage_id, name in stages:
                if name.casefold() == raw.casefold():
                    return stage_id
        raise BadValue(_l("There is no stage “%(value)s”.", value=raw[:60]))

    def _list_item(self, list_key: str, raw: str):
        if raw.isdigit():
            return raw
        found = db.session.scalar(select(ListItem.id).where(
            ListItem.list_key == list_key, func.lower(ListItem.label) == raw.lower()))
        if found is None:
            raise BadValue(_l("“%(value)s” is not in the list.", value=raw[:60]))
        return found

    def _company(self, raw: str):
        """A company by "#id", TIN or exact name, among those the importer may see."""
        raw = raw.strip()
        if re.fullmatch(r"#?\d{1,9}", raw):
            return raw.lstrip("#")
        key = ("company", raw.casefold())
        if key not in self._cache:
            condition = Company.tin == raw if re.fullmatch(r"\d{10}|\d{12}", raw) else (
                func.lower(Company.name) == raw.lower())
            self._cache[key] = db.session.scalar(select(Company.id).where(
                condition, access.visible(Company, Entity.COMPANY, self.actor)).order_by(Company.id).limit(1))
        if self._cache[key] is None:
            raise BadValue(_l("There is no company “%(value)s”.", value=raw[:60]))
        return self._cache[key]


def build_row(entity: str, mapping: dict[str, str], headers: list[str], number: int, cells: list[str],
              refs: References) -> Row:
    """The row's cells gathered per field (several columns onto a list field add up)."""
    raw = {}
    for header, cell in zip(headers, cells):
        key = mapping.get(header)
        if not key or not cell:
            continue
        if key in raw:
            raw[key] = f"{raw[key]}\n{cell}" if _is_list(entity, key) else raw[key]
        else:
            raw[key] = cell
    row = Row(number, {})
    if raw.get(ID, "").isdecimal() and int(raw[ID]) < 2 ** 63:
        row.record_id = int(raw[ID])
    for key, value in raw.items():
        if key.startswith("custom."):
            row.data.setdefault("custom", {})[key.removeprefix("custom.")] = value
    for spec in STANDARD[entity]:  # in this order a deal's pipeline is known before its stage
        if spec.name in raw:
            try:
                row.data[spec.name] = refs.resolve(spec, raw[spec.name], row.data)
            except BadValue as problem:
                row.problems.setdefault(spec.name, []).append(str(problem))
    return row


def _is_list(entity: str, key: str) -> bool:
    spec = next((spec for spec in STANDARD[entity] if spec.name == key), None)
    return spec is not None and spec.kind in LIST_KINDS


# --- duplicates ----------------------------------------------------------------------------

def _items(raw) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, (list, tuple)):
        return [str(item) for item in raw]
    return [part for part in re.split(r"[\n;,]+", str(raw)) if part.strip()]


def match_keys(row: Row) -> set[tuple[str, str]]:
    """What makes two rows of one file the same record: normalised emails, phones, TIN, ID."""
    region = services.phone_region()
    keys = set()
    if row.record_id:
        keys.add(("id", str(row.record_id)))
    for name, kind in (("emails", Kind.EMAIL), ("email", Kind.EMAIL), ("phones", Kind.PHONE),
                       ("phone", Kind.PHONE), ("tin", Kind.TIN)):
        for item in _items(row.data.get(name)):
            try:
                keys.add((kind, coerce(kind, item, region=region)))
            except BadValue:
                continue
    return keys


def find_duplicate(entity: str, row: Row, actor: Membership):
    """An existing record (one the actor may see) this row repeats, or None."""
    if row.record_id:
        same = _same_record(entity, row, actor)
        if same is not None:
            return same
    data = row.data
    if entity == Entity.LEAD:
        return _lead_match(row, actor)
    matches = services.find_matches(entity, actor, emails=_items(data.get("emails")),
                                    phones=_items(data.get("phones")), tin=data.get("tin"), limit=1)
    return matches[0] if matches else None


def _same_record(entity: str, row: Row, actor: Membership):
    """The record with the row's ID, if it is also named as in the row (an ID alone could come
    from another company's export and mean a different record here)."""
    try:
        record = services.get(entity, row.record_id, actor)
    except NotFound:
        return None
    names = {Entity.COMPANY: ("name",), Entity.CONTACT: ("first_name", "last_name"),
             Entity.DEAL: ("title",), Entity.LEAD: ("title",)}[entity]
    same = all(_norm(row.data.get(name) or "") == _norm(getattr(record, name) or "") for name in names)
    return record if same else None


def _lead_match(row: Row, actor: Membership):
    region = services.phone_region()
    conditions = []
    for column, kind, raw in ((Lead.email, Kind.EMAIL, row.data.get("email")),
                              (Lead.phone, Kind.PHONE, row.data.get("phone")), (Lead.tin, Kind.TIN, row.data.get("tin"))):
        try:
            value = coerce(kind, raw, region=region) if raw else None
        except BadValue:
            value = None
        if value:
            conditions.append(column == value)
    if not conditions:
        return None
    return db.session.scalar(select(Lead).where(or_(*conditions), access.visible(Lead, Entity.LEAD, actor))
                             .order_by(Lead.id).limit(1))


# --- importing one row ---------------------------------------------------------------------

@dataclass
class Outcome:
    action: str  # created, merged, skipped, rejected
    record_id: int | None = None
    reasons: list[str] = dataclass_field(default_factory=list)


def import_row(entity: str, row: Row, policy: str, actor: Membership, labels: dict[str, str], *,
               duplicate=None, dry_run: bool = False) -> Outcome:
    """Create, merge or skip one row, in its own savepoint: a bad row changes nothing and never
    stops the others. `dry_run` checks everything and keeps nothing (the preview)."""
    if duplicate is not None and policy == Policy.SKIP:
        return Outcome("skipped", duplicate.id)
    merging = duplicate is not None and policy == Policy.MERGE
    savepoint = db.session.begin_nested()
    problems = {key: list(messages) for key, messages in row.problems.items()}
    record = None
    try:
        if merging:
            record = services.merge_into(entity, duplicate.id, row.data, actor)
        else:
            record = services.create(entity, row.data, actor)
    except services.FieldErrors as errors:
        for key, messages in errors.fields.items():
            problems.setdefault(key, []).extend(messages if isinstance(messages, list) else [str(messages)])
    except ServiceError as error:
        problems.setdefault("", []).append(str(error.message))
    except DBAPIError:  # a value the database refuses: this row only, and no SQL shown to people
        problems.setdefault("", []).append(str(_l("A value is too long or out of range for the database.")))
    if problems or dry_run:
        savepoint.rollback()
    else:
        savepoint.commit()
    if problems:
        return Outcome("rejected", None, readable(problems, labels))
    return Outcome("merged" if merging else "created", None if dry_run else record.id)


def readable(problems: dict, labels: dict[str, str]) -> list[str]:
    """["Phone: “12” is not a phone number."]: each problem with the column (or field) it is about."""
    reasons = []
    for key, messages in problems.items():
        for message in messages:
            name = labels.get(key) or labels.get(key.split(".")[0]) or key
            reasons.append(f"{name}: {message}" if name else str(message))
    return reasons


def column_labels(entity: str, mapping: dict[str, str]) -> dict[str, str]:
    """field key → how the person knows it: their column header(s), else the field's label."""
    labels = {target.key: target.label for target in targets(entity)}
    by_column = {}
    for header, key in mapping.items():
        by_column.setdefault(key, []).append(header)
    return {**labels, **{key: ", ".join(headers) for key, headers in by_column.items()}}


# --- the preview ---------------------------------------------------------------------------

@dataclass
class PreviewRow:
    number: int
    cells: list[str]
    outcome: Outcome
    duplicate_id: int | None = None  # an existing record
    duplicate_row: int | None = None  # an earlier row of the same file


def preview(job: ImportJob, table: Table, actor: Membership, mapping: dict[str, str], policy: str) -> list[PreviewRow]:
    """The first rows as the import would treat them; nothing is kept."""
    refs, labels = References(actor), column_labels(job.entity, mapping)
    seen: dict[tuple, int] = {}
    shown = []
    for number, cells in table.rows[:PREVIEW_ROWS]:
        row = build_row(job.entity, mapping, table.headers, number, cells, refs)
        keys = match_keys(row)
        duplicate = find_duplicate(job.entity, row, actor)
        earlier = None if duplicate else min((seen[key] for key in keys if key in seen), default=None)
        outcome = import_row(job.entity, row, policy, actor, labels,
                             duplicate=duplicate if policy != Policy.CREATE else None, dry_run=True)
        if earlier is not None and policy == Policy.SKIP:
            outcome = Outcome("skipped")
        elif earlier is not None and policy == Policy.MERGE and outcome.action == "created":
            outcome = Outcome("merged")
        if outcome.action in ("created", "merged"):  # the import keeps it: later rows may repeat it
            for key in keys:
                seen.setdefault(key, number)
        shown.append(PreviewRow(number, cells, outcome, duplicate.id if duplicate else None, earlier))
    return shown


# --- import jobs ---------------------------------------------------------------------------

def start(entity: str, filename: str, content: bytes, actor: Membership) -> ImportJob:
    """Keep the upload (checked readable) as a new import waiting for its mapping."""
    filename = (filename or "").replace("\x00", "").replace("\\", "/").rsplit("/", 1)[-1][:300]
    table = read_table(filename, content)
    job = ImportJob(entity=entity, filename=filename, content=content, status=Status.NEW, total=len(table.rows),
                    mapping=auto_mapping(entity, table.headers), created_by=actor.user_id, rejected=[])
    db.session.add(job)
    db.session.flush()
    return job


def get_job(import_id: int, actor: Membership) -> ImportJob:
    """An import of this company that the actor started (managers see every one)."""
    job = db.session.get(ImportJob, import_id)
    if job is None or not (job.created_by == actor.user_id or actor.role in Role.MANAGERS):
        raise NotFound(_l("No such import."))
    return job


def recent_jobs(entity: str, actor: Membership, limit: int = 10) -> list[ImportJob]:
    query = select(ImportJob).where(ImportJob.entity == entity)
    if actor.role not in Role.MANAGERS:
        query = query.where(ImportJob.created_by == actor.user_id)
    return list(db.session.scalars(query.order_by(ImportJob.id.desc()).limit(limit)))


def table_of(job: ImportJob) -> Table | None:
    return read_table(job.filename, job.content) if job.content is not None else None


def importer(job: ImportJob) -> Membership | None:
    """The active membership here of the person who started the import."""
    return db.session.scalar(select(Membership).where(
        Membership.tenant_id == current_tenant().id, Membership.user_id == job.created_by,
        Membership.active.is_(True)))


def importer_name(job: ImportJob) -> str:
    user = db.session.get(User, job.created_by) if job.created_by else None
    return user.name if user else "?"


def queue_job(job: ImportJob, mapping: dict[str, str], policy: str, actor: Membership, locale: str) -> None:
    from saas.jobs import enqueue_after_commit

    from .tasks import run_import

    if job.status not in (Status.NEW, Status.FAILED) or job.content is None:
        raise Invalid(_l("This import has already started."))
    if not any(mapping.values()):
        raise Invalid(_l("Choose a field for at least one column."))
    if policy not in Policy.ALL:
        raise Invalid(_l("Choose what to do with duplicates."))
    job.mapping, job.on_duplicate = mapping, policy
    job.status, job.error, job.created_by = Status.QUEUED, None, actor.user_id
    enqueue_after_commit(run_import, job.id, locale, timeout=3600, retries=2)
