"""Documents on deal, company and contact cards: upload, versions, download links, the recycle
bin, quota and usage.

An upload, as ARCHITECTURE.md walks it: reserve the declared size in the quota ledger (one
atomic statement), stream the bytes to the blob store (never whole in memory, never more than
reserved), sniff the content type from the bytes, then in one transaction insert the document
and its version and turn the reservation into usage. Any failure releases the reservation and
deletes the blob. Who may see or change a document is who may see or change its card.
"""
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO, NamedTuple

import puremagic
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from billing.services import limits_plan
from saas.account.seats import active_users
from saas.auth.models import Membership
from saas.blobs import blob_store
from saas.crm import audit, services as crm
from saas.crm.fields import to_date
from saas.crm.models import Deal, Entity
from saas.errors import Conflict, Invalid, NotFound, ServiceError
from storage import TooLarge, ledger
from tenants.db import db
from tenants.models import TenantRef, utcnow

from .models import Document, DocumentStatus, DocumentType, Generation, Version

CARDS = (Entity.DEAL, Entity.COMPANY, Entity.CONTACT)
LINK_SECONDS = 300  # a presigned download link works for five minutes
RECYCLE_DAYS = 30
INLINE_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp"}  # never SVG or HTML
# English name → its translation: a new company's types are named in the first viewer's language.
DEFAULT_TYPES = {"Contract": _l("Contract"), "Annex": _l("Annex"), "Act": _l("Act"), "Invoice": _l("Invoice"),
                 "Drawing": _l("Drawing"), "Letter": _l("Letter"), "Other": _l("Other")}


class QuotaRefused(ServiceError):
    """The upload would pass the plan's storage limit (413, with the figures a person needs)."""

    status, code = 413, "quota_exceeded"

    def __init__(self, plan, limit: int, used: int):
        # Deleting only moves a file to the recycle bin, where it still counts: say so, or the
        # owner deletes exactly what was asked and is still refused.
        if used > limit:  # e.g. after a downgrade: say exactly how much must go
            message = _l("The company stores %(used)s, more than the %(limit)s of the %(plan)s plan: free %(excess)s "
                         "or change the plan before uploading. Files in the recycle bin count until they are "
                         "deleted for good there. Nothing has been deleted.", plan=plan.name,
                         used=human_size(used), limit=human_size(limit), excess=human_size(used - limit))
        else:
            message = _l("This upload would pass the %(plan)s plan's storage limit: %(used)s of %(limit)s "
                         "used. Free space or change the plan; files in the recycle bin count until they are "
                         "deleted for good there.", plan=plan.name, used=human_size(used), limit=human_size(limit))
        super().__init__(message)
        self.plan, self.limit_bytes, self.used_bytes = plan, limit, used


class TooBig(ServiceError):
    status, code = 413, "file_too_large"


class Duplicate(Conflict):
    """The same bytes are already on this card: offer a new version of that document instead."""

    def __init__(self, document: Document):
        super().__init__(_l("“%(title)s” on this card has exactly this file. Upload it as a new version of "
                            "that document instead.", title=document.title), code="duplicate")
        self.document = document


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


# --- quota ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Usage:
    plan: object
    used: int
    reserved: int
    limit: int | None

    @property
    def share(self) -> float | None:
        return None if not self.limit else (self.used + self.reserved) / self.limit


def usage(tenant: TenantRef) -> Usage:
    """Storage against the limit that applies now (Free's, when a payment is long overdue)."""
    plan = limits_plan(tenant.id)
    used, reserved = ledger.usage(tenant.id)
    return Usage(plan, used, reserved, plan.storage_limit(active_users(tenant.id)))


def max_file_bytes(tenant: TenantRef) -> int:
    return min(limits_plan(tenant.id).max_file_bytes, current_app.config["MAX_FILE_BYTES"])


# --- names and types -----------------------------------------------------------------------

def safe_filename(raw: str | None) -> str:
    """A name to show: any Unicode, no path parts, no control characters, at most 200 characters."""
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = f"{stem[:190]}.{extension[:9]}" if dot and len(extension) < 10 else name[:200]
    return name or "file"


def sniff(head: bytes) -> str:
    """The content type the bytes say (the client's claim is never used)."""
    if not head:
        return "application/octet-stream"
    try:
        return puremagic.from_string(head, mime=True) or _text_or_binary(head)
    except puremagic.PureError:
        return _text_or_binary(head)


_DXF = re.compile(rb"^\s*0\s*\r?\n\s*SECTION\s*\r?\n")  # an ASCII DXF drawing opens with a section


def _text_or_binary(head: bytes) -> str:
    try:
        head[:-4].decode("utf-8")  # the last bytes may cut a character in two
    except UnicodeDecodeError:
        return "application/octet-stream"
    if b"\x00" in head:
        return "application/octet-stream"
    return "image/vnd.dxf" if _DXF.match(head) else "text/plain"


def is_inline(content_type: str) -> bool:
    return content_type in INLINE_TYPES


def document_types() -> list[DocumentType]:
    """The tenant's document types; a new company starts with the usual ones, in its language."""
    found = list(db.session.scalars(select(DocumentType).order_by(DocumentType.position, DocumentType.id)))
    if found:
        return found
    from sqlalchemy.dialects.postgresql import insert
    # ON CONFLICT: several files dropped at once into a new company all arrive here together.
    db.session.execute(insert(DocumentType).values([{"name": str(name), "position": n} for n, name in
                                                    enumerate(DEFAULT_TYPES.values())]).on_conflict_do_nothing())
    return document_types()


def add_document_type(actor: Membership, name: str) -> DocumentType:
    from saas.crm.access import require_manager
    require_manager(actor)
    name = (name or "").strip()[:100]
    if not name:
        raise Invalid(_l("Give it a name."), field="name")
    if any(t.name.casefold() == name.casefold() for t in document_types()):
        raise Conflict(_l("There is a document type with this name."), field="name")
    created = DocumentType(name=name, position=len(document_types()))
    db.session.add(created)
    db.session.flush()
    return created


# --- reading -------------------------------------------------------------------------------

def card_record(entity: str, record_id: int, actor: Membership, *, edit: bool):
    if entity not in CARDS:
        raise NotFound(_l("Documents hang on deals, companies and contacts."))
    return crm.get_for_edit(entity, record_id, actor) if edit else crm.get(entity, record_id, actor)


def get(document_id: int, actor: Membership, *, edit: bool = False) -> Document:
    """A live document whose card the actor may see (or change); NotFound otherwise."""
    document = db.session.get(Document, document_id)
    if document is None or document.deleted_at is not None:
        raise NotFound(_l("No such document, or it is not yours to see."))
    card_record(document.entity, document.record_id, actor, edit=edit)
    return document


def version_of(document: Document, number: int | None) -> Version:
    for version in document.live_versions:
        if number is None and version is document.current or version.number == number:
            return version
    if not document.versions and document.generation:
        raise NotFound(_l("This document is not made yet: it is being generated, or it failed (see its card)."))
    raise NotFound(_l("No such version of this document."))


def on_card(entity: str, record_id: int, actor: Membership) -> list[Document]:
    """The card's documents, newest first; a company's include those of its deals and contacts."""
    card_record(entity, record_id, actor, edit=False)
    where = (Document.entity == entity) & (Document.record_id == record_id)
    if entity == Entity.COMPANY:
        deals = select(Deal.id).where(Deal.company_id == record_id, crm.access.visible(Deal, Entity.DEAL, actor))
        where = or_(where, (Document.entity == Entity.DEAL) & Document.record_id.in_(deals))
    return list(db.session.scalars(select(Document).where(where, Document.deleted_at.is_(None))
                                   .order_by(Document.created_at.desc(), Document.id.desc())))


def link(version: Version, *, inline: bool = False, seconds: int = LINK_SECONDS) -> str:
    """A presigned URL to the bytes that names the file; inline only for PDFs and raster images."""
    inline = inline and is_inline(version.content_type)
    return blob_store().link(version.blob_key, filename=version.filename, seconds=seconds, inline=inline,
                             content_type=version.content_type if inline else "application/octet-stream")


# --- writing -------------------------------------------------------------------------------

def write_blob(tenant: TenantRef, stream: BinaryIO, size: int, filename: str, user_id: int | None
                ) -> tuple[Version, uuid.UUID]:
    """Reserve, stream, sniff: a Version not yet saved and its reservation (settled by the caller)."""
    if size is None or size < 0:
        raise Invalid(_l("Send the file's size (Content-Length)."), field="file")
    if size > max_file_bytes(tenant):
        raise TooBig(_l("The file is larger than the %(limit)s a file may have.",
                        limit=human_size(max_file_bytes(tenant))), field="file")
    current = usage(tenant)
    key = f"{tenant.blob_prefix}{uuid.uuid4()}"
    try:
        reservation = ledger.reserve(tenant.id, size, current.limit, key)
    except ledger.QuotaExceeded as refused:
        raise QuotaRefused(current.plan, refused.limit, refused.used)
    try:
        written = blob_store().write(key, stream, max_bytes=size)
    except TooLarge:
        ledger.release(reservation)
        raise Invalid(_l("The file is longer than the size it was sent with."), field="file")
    except BaseException:
        ledger.release(reservation)
        raise
    if written.size != size:  # the stream ended early: a truncated file is no file
        ledger.release(reservation)
        blob_store().delete(key)
        raise Invalid(_l("The file ended before the size it was sent with."), field="file")
    version = Version(blob_key=key, filename=safe_filename(filename), content_type=sniff(written.head),
                      size=written.size, sha256=written.sha256, created_by=user_id)
    return version, reservation


def keep_written(version: Version, reservation: uuid.UUID, keep) -> object:
    """Run `keep()` (it saves the version) and settle the reservation with it, or undo both."""
    try:
        result = keep()
        ledger.settle(reservation, version.size)
        db.session.flush()
        return result
    except BaseException:
        ledger.release(reservation)
        blob_store().delete(version.blob_key)
        raise


def _fields(data: dict, document: Document) -> None:
    """Set the card fields of a document from `data` (strings as forms send them, or JSON)."""
    if "title" in data:
        title = str(data["title"] or "").strip()[:300]
        if not title:
            raise Invalid(_l("Give the document a title."), field="title")
        document.title = title
    for name, limit in (("number", 100), ("counterparty", 300), ("our_entity", 300), ("notes", 20000)):
        if name in data:
            setattr(document, name, (str(data[name] or "").strip()[:limit]) or None)
    if "signed_on" in data:
        document.signed_on = _date(data["signed_on"])
    if "status" in data:
        if data["status"] not in DocumentStatus.ALL:
            raise Invalid(_l("Choose a status."), field="status")
        document.status = data["status"]
    if data.get("type_id") not in (None, ""):
        document.type_id = _type_id(data["type_id"])
    if "parent_id" in data:
        document.parent_id = _parent_id(data["parent_id"], document)
    if data.get("responsible_id") not in (None, ""):
        document.responsible_id = _member_id(data["responsible_id"])


def _member_id(raw) -> int:
    try:
        user_id = int(raw)
    except (TypeError, ValueError):
        user_id = None
    if user_id is None or user_id not in dict(crm.staff()):
        raise Invalid(_l("Choose an active employee."), field="responsible_id")
    return user_id


def _date(raw):
    if raw in (None, ""):
        return None
    try:
        return to_date(raw)
    except ValueError as problem:
        raise Invalid(str(problem), field="signed_on")


def _type_id(raw) -> int:
    try:
        found = db.session.get(DocumentType, int(raw))
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise Invalid(_l("Choose a document type."), field="type_id")
    return found.id


def _parent_id(raw, document: Document) -> int | None:
    """An annex or act belongs to a document of the same card (never to itself)."""
    if raw in (None, ""):
        return None
    try:
        parent = db.session.get(Document, int(raw))
    except (TypeError, ValueError):
        parent = None
    if parent is None or parent.deleted_at is not None or parent.id == document.id or \
            (parent.entity, parent.record_id) != (document.entity, document.record_id):
        raise Invalid(_l("Link it to a document of the same card."), field="parent_id")
    return parent.id


def _duplicate(entity: str, record_id: int, sha256: str) -> Document | None:
    return db.session.scalar(select(Document).where(
        Document.entity == entity, Document.record_id == record_id, Document.sha256 == sha256,
        Document.deleted_at.is_(None)).limit(1))


def upload(tenant: TenantRef, entity: str, record_id: int, stream: BinaryIO, *, filename: str, size: int,
           actor: Membership, data: dict | None = None) -> Document:
    """A new document on a card from a stream of `size` bytes; Duplicate if the card has these bytes."""
    record = card_record(entity, record_id, actor, edit=True)
    data = dict(data or {})
    version, reservation = write_blob(tenant, stream, size, filename, actor.user_id)
    existing = _duplicate(entity, record_id, version.sha256)
    if existing is not None:
        ledger.release(reservation)
        blob_store().delete(version.blob_key)
        raise Duplicate(existing)

    def keep():
        document = Document(entity=entity, record_id=record_id, title=version.filename, created_by=actor.user_id,
                            responsible_id=actor.user_id, sha256=version.sha256)
        data.setdefault("type_id", _guess_type(version))
        _fields(data, document)
        version.number = 1
        document.versions.append(version)
        db.session.add(document)
        db.session.flush()
        log_change(entity, record, "document", actor, document, {"document": [None, document.title]})
        return document
    return keep_written(version, reservation, keep)


def _guess_type(version: Version) -> int | None:
    """Drawings by their bytes; everything else starts as "Other" until someone says."""
    wanted = "Drawing" if version.content_type in ("image/x-dwg", "image/vnd.dwg", "image/vnd.dxf") else "Other"
    return type_named(wanted, DEFAULT_TYPES[wanted])


def type_named(english: str, label) -> int:
    """The document type called `english` or its translation `label`, made when the company has none."""
    types = document_types()
    found = next((t.id for t in types if t.name in (english, str(label))), None)
    if found is None:
        created = DocumentType(name=str(label)[:100], position=len(types))
        db.session.add(created)
        db.session.flush()
        found = created.id
    return found


def add_version(tenant: TenantRef, document_id: int, stream: BinaryIO, *, filename: str, size: int,
                actor: Membership) -> Version:
    """A new version; the earlier ones stay, downloadable, with who uploaded them and when."""
    document = get(document_id, actor, edit=True)
    if document.generation == Generation.GENERATING:
        raise Conflict(_l("This document is still being made; add a version once it is ready."))
    version, reservation = write_blob(tenant, stream, size, filename, actor.user_id)

    def keep():
        locked = db.session.get(Document, document.id, with_for_update=True, populate_existing=True)
        if locked.generation == Generation.GENERATING:  # started meanwhile: its job will add the version
            raise Conflict(_l("This document is still being made; add a version once it is ready."))
        version.number = max((v.number for v in locked.versions), default=0) + 1
        locked.versions.append(version)
        locked.sha256 = version.sha256
        record = card_record(locked.entity, locked.record_id, actor, edit=True)
        log_change(locked.entity, record, "document", actor, locked, {"version": [None, version.number]})
        return version
    return keep_written(version, reservation, keep)


def update(document_id: int, data: dict, actor: Membership) -> Document:
    document = get(document_id, actor, edit=True)
    _fields(data, document)
    db.session.flush()
    return document


def log_change(entity: str, record, action: str, actor: Membership, document: Document, changes: dict) -> None:
    audit.write(entity, record, action, actor.user_id, title=crm.title_of(entity, record), changes=changes,
                related=(f"document:{document.id}",))


# --- recycle bin and purge -----------------------------------------------------------------

def delete(document_id: int, actor: Membership, *, version: int | None = None) -> None:
    """To the recycle bin: the document, or one of its versions (never its only live one)."""
    document = get(document_id, actor, edit=True)
    if version is None:
        document.deleted_at, document.deleted_by = utcnow(), actor.user_id
        return
    target = version_of(document, version)
    if len(document.live_versions) == 1:
        raise Conflict(_l("This is the document's only version: delete the document instead."))
    target.deleted_at, target.deleted_by = utcnow(), actor.user_id
    document.sha256 = document.current.sha256


def deleted(actor: Membership) -> list[Document]:
    """Documents in the recycle bin whose cards the actor may change."""
    rows = db.session.scalars(select(Document).where(Document.deleted_at.is_not(None))
                              .order_by(Document.deleted_at.desc()).limit(500))
    return [d for d in rows if _may_edit_card(d, actor)]


def _may_edit_card(document: Document, actor: Membership) -> bool:
    return may_see_card(document, actor, edit=True)


def may_see_card(document: Document, actor: Membership, *, edit: bool = False) -> bool:
    try:
        card_record(document.entity, document.record_id, actor, edit=edit)
        return True
    except ServiceError:
        return False


def deleted_versions(actor: Membership) -> list[Version]:
    """Single versions in the recycle bin (their document still live) the actor could restore."""
    rows = db.session.scalars(select(Version).join(Document).where(
        Version.deleted_at.is_not(None), Document.deleted_at.is_(None)).order_by(Version.deleted_at.desc()).limit(500))
    return [v for v in rows if _may_edit_card(v.document, actor)]


def restore_version(document_id: int, number: int, actor: Membership) -> Version:
    _locked(document_id)  # not while one of its versions is being deleted for good
    document = get(document_id, actor, edit=True)
    version = next((v for v in document.versions if v.number == number and v.deleted_at is not None), None)
    if version is None:
        raise NotFound(_l("This version is not in the recycle bin."))
    version.deleted_at = version.deleted_by = None
    document.sha256 = document.current.sha256
    return version


def restore(document_id: int, actor: Membership) -> Document:
    document = _locked(document_id)  # not while it is being deleted for good
    if document is None or document.deleted_at is None or not _may_edit_card(document, actor):
        raise NotFound(_l("This document is not in the recycle bin."))
    document.deleted_at = document.deleted_by = None
    return document


def purge_expired(tenant: TenantRef, now=None) -> tuple[int, list[str]]:
    """Remove what has been in the bin for RECYCLE_DAYS and give its bytes back to the quota.

    Returns (bytes freed, blob keys): the caller deletes the blobs once this has committed, so
    a rolled-back purge never loses a file that is still listed."""
    cutoff = (now or utcnow()) - timedelta(days=RECYCLE_DAYS)
    # Locked, skipping rows someone is restoring or deleting for good right now: a row is freed once.
    expired_documents = list(db.session.scalars(select(Document).where(Document.deleted_at < cutoff)
                                                .with_for_update(skip_locked=True)))
    expired_versions = list(db.session.scalars(select(Version).join(Document).where(
        Version.deleted_at < cutoff, or_(Document.deleted_at.is_(None), Document.deleted_at >= cutoff))
        .with_for_update(of=Version, skip_locked=True)))
    return remove(tenant, expired_documents, expired_versions)


def remove(tenant: TenantRef, documents: list[Document], versions: list[Version] = ()) -> tuple[int, list[str]]:
    """Delete documents (with their versions) and single versions for good, giving their bytes
    back to the quota; (bytes freed, blob keys for the caller to delete after the commit)."""
    doomed = [v for d in documents for v in d.versions] + list(versions)
    for version in versions:
        version.document.versions.remove(version)  # delete-orphan: the row goes at flush
    for document in documents:
        db.session.delete(document)
    freed = sum(v.size for v in doomed)
    ledger.free(tenant.id, freed)
    db.session.flush()
    return freed, [v.blob_key for v in doomed]


class Removed(NamedTuple):
    title: str  # the document's, to name it once its row is gone
    freed: int
    keys: list[str]  # blobs for the caller to delete after the commit


def remove_for_good(tenant: TenantRef, document_id: int, actor: Membership, *, version: int | None = None
                    ) -> Removed:
    """From the recycle bin, before RECYCLE_DAYS are up (owner and administrators): a deleted
    document with all its versions, or one deleted version of a live document. Its bytes go
    back to the quota in the caller's transaction; the caller deletes the blobs after the commit."""
    crm.access.require_manager(actor)
    document = _locked(document_id)
    if version is None:
        if document is None or document.deleted_at is None or not _may_edit_card(document, actor):
            raise NotFound(_l("This document is not in the recycle bin."))
        return Removed(document.title, *remove(tenant, [document]))
    # A version waits alone in the bin only while its document is live; otherwise it goes with it.
    target = None
    if document is not None and document.deleted_at is None and _may_edit_card(document, actor):
        target = next((v for v in document.versions if v.number == version and v.deleted_at is not None), None)
    if target is None:
        raise NotFound(_l("This version is not in the recycle bin."))
    return Removed(document.title, *remove(tenant, [], [target]))


def empty_bin(tenant: TenantRef, actor: Membership) -> tuple[int, list[str]]:
    """Delete for good every document and version in the bin the actor could restore:
    (bytes freed, blobs for the caller to delete after the commit). The bin is listed 500 at a
    time, so it is read again until nothing new is left."""
    freed, keys, seen = 0, [], set()
    while True:
        batch = [(d.id, None) for d in deleted(actor)] + [(v.document_id, v.number) for v in deleted_versions(actor)]
        batch = [entry for entry in batch if entry not in seen]
        if not batch:
            return freed, keys
        seen.update(batch)
        for document_id, number in batch:
            try:
                removed = remove_for_good(tenant, document_id, actor, version=number)
            except NotFound:  # restored, or deleted for good by someone else meanwhile
                continue
            freed += removed.freed
            keys.extend(removed.keys)


def _locked(document_id: int) -> Document | None:
    """The document row locked and read afresh, its versions too: a second click waits for the
    first and then finds nothing left, so bytes are given back once."""
    document = db.session.get(Document, document_id, with_for_update=True, populate_existing=True)
    if document is not None:
        db.session.expire(document, ["versions"])
    return document


def stored_bytes() -> int:
    """Every stored version of this tenant, recycle bin included (what the ledger should say)."""
    return db.session.scalar(select(func.coalesce(func.sum(Version.size), 0)))


# --- usage ---------------------------------------------------------------------------------

def usage_by(kind: str, limit: int = 10) -> list[tuple[object, int]]:
    """(key, bytes) largest first: by "record" (entity, id), by "type" (type id) or "person" (user id)."""
    column = {"record": (Document.entity, Document.record_id), "type": (Document.type_id,),
              "person": (Version.created_by,)}[kind]
    rows = db.session.execute(select(*column, func.sum(Version.size).label("bytes")).join(Document)
                              .group_by(*column).order_by(func.sum(Version.size).desc()).limit(limit))
    return [(tuple(row[:-1]) if len(column) > 1 else row[0], row.bytes) for row in rows]
