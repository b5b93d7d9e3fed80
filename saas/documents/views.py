"""Document pages: the documents area of cards, uploads, the document card, downloads, usage.

Uploads are raw request bodies (no multipart), streamed from `request.stream` into the
services with their Content-Length, so the web process never holds a whole file. Their answers
are JSON for documents.js. Documents whose card a person may not see are 404 everywhere.
"""
from dataclasses import dataclass
from datetime import timedelta

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import selectinload

from saas.auth.models import Role
from saas.auth.session import current_membership
from saas.web.views import service_errors_as_pages
from saas.crm import access, services as crm
from saas.crm.admin_views import manager_page
from saas.crm.views import staff_page
from saas.crm.fields import ENTITY_LABELS
from saas.crm.models import RECORD_MODELS, Entity
from saas.blobs import blob_store
from saas.errors import Conflict, Invalid, ServiceError
from tenants.db import db

from . import doc_templates, generation, services
from .models import Document, DocumentStatus, Version

bp = Blueprint("documents", __name__)

PLURALS = {"deals": Entity.DEAL, "companies": Entity.COMPANY, "contacts": Entity.CONTACT}
PLURAL_OF = {entity: plural for plural, entity in PLURALS.items()}
CARD = "/<any(deals, companies, contacts):plural>/<int:record_id>"
PLAN_URL = "/settings/plan"
STATUS_LABELS = {DocumentStatus.DRAFT: _l("Draft"), DocumentStatus.ACTIVE: _l("Active"),
                 DocumentStatus.SIGNED: _l("Signed"), DocumentStatus.ARCHIVED: _l("Archived")}
CARD_FIELDS = ("title", "type_id", "number", "signed_on", "counterparty", "our_entity", "responsible_id", "status",
               "notes", "parent_id")


def card_url(entity: str, record_id: int) -> str:
    return f"/{PLURAL_OF.get(entity, entity + 's')}/{record_id}"


service_errors_as_pages(bp)


@bp.app_template_filter("filesize")
def filesize(size: int | None) -> str:
    return services.human_size(size or 0)


# --- uploads (JSON, for documents.js) -----------------------------------------------------

def _refusal(error: ServiceError):
    """A service's refusal as the JSON documents.js shows beside the file."""
    body = {"error": error.code, "message": str(error.message)}
    if isinstance(error, services.QuotaRefused):
        body.update(plan=str(error.plan.name), limit_bytes=error.limit_bytes, used_bytes=error.used_bytes,
                    plan_url=PLAN_URL)
    elif isinstance(error, services.Duplicate):
        body.update(document_id=error.document.id, url=f"/documents/{error.document.id}",
                    title=error.document.title, versions_url=f"/documents/{error.document.id}/versions")
    return jsonify(body), error.status


def _store(save):
    """Stream the request body into `save(stream, filename, size)`; 201 with the document's address."""
    try:
        document_id = save(request.stream, request.args.get("filename", ""), request.content_length)
    except ServiceError as error:
        db.session.rollback()
        return _refusal(error)
    db.session.commit()
    return jsonify(id=document_id, url=f"/documents/{document_id}"), 201


@bp.post(f"{CARD}/documents")
@staff_page
def upload(plural: str, record_id: int):
    def save(stream, filename, size):
        return services.upload(g.tenant, PLURALS[plural], record_id, stream, filename=filename, size=size,
                               actor=current_membership()).id
    return _store(save)


@bp.post("/documents/<int:document_id>/versions")
@staff_page
def upload_version(document_id: int):
    def save(stream, filename, size):
        services.add_version(g.tenant, document_id, stream, filename=filename, size=size, actor=current_membership())
        return document_id
    return _store(save)


# --- the documents area of a card ----------------------------------------------------------

@dataclass
class Row:
    document: Document
    type: str
    parent: Document | None
    elsewhere: tuple[str, str] | None  # (title, url) of the deal it hangs on, on a company's card
    uploaded_by: str


def card_rows(entity: str, record_id: int) -> list[Row]:
    """The card's documents as its list shows them (a company's include those of its deals)."""
    found = services.on_card(entity, record_id, current_membership())
    if not found:
        return []
    documents = list(db.session.scalars(  # versions and types in two queries, not two per document
        select(Document).where(Document.id.in_([d.id for d in found]))
        .options(selectinload(Document.versions), selectinload(Document.type))
        .order_by(Document.created_at.desc(), Document.id.desc())))
    by_id = {d.id: d for d in documents}
    people = crm.staff_names()
    deals = _titles(Entity.DEAL, {d.record_id for d in documents if d.entity != entity})
    return [Row(d, d.type.name if d.type else "", by_id.get(d.parent_id),
                (deals.get(d.record_id, f"#{d.record_id}"), card_url(d.entity, d.record_id))
                if d.entity != entity else None,
                people.get(d.created_by, "—")) for d in documents]


def _titles(entity: str, ids) -> dict[int, str]:
    """Titles of the records of `ids` the viewer may see."""
    if not ids:
        return {}
    model = RECORD_MODELS[entity]
    rows = db.session.scalars(select(model).where(model.id.in_(ids),
                                                  access.visible(model, entity, current_membership())))
    return {record.id: crm.title_of(entity, record) for record in rows}


def card_templates(entity: str) -> list:
    """The templates a card of this kind can be generated from (none for records without documents)."""
    return doc_templates.all_templates(applies_to=entity) if entity in PLURAL_OF else []


@bp.app_context_processor
def _card_helpers() -> dict:
    return {"card_documents": card_rows, "storage_notice": storage_notice, "deleted_documents": deleted_documents,
            "bin_versions": deleted_versions, "document_plurals": PLURAL_OF, "card_templates": card_templates}


@bp.get(f"{CARD}/documents")
@staff_page
def card_list(plural: str, record_id: int):
    """The list part of a card's documents area, for documents.js to refresh after uploads and
    while documents are being generated."""
    rows = card_rows(PLURALS[plural], record_id)
    generation.rescue_stuck(g.tenant, [row.document for row in rows], generation.requester_locale())
    return render_template("documents/_list.html", rows=rows, entity=PLURALS[plural])


# --- generating from templates -------------------------------------------------------------



def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


@bp.post(f"{CARD}/generate")
@staff_page
def generate(plural: str, record_id: int):
    """Start a document from a template: it appears on the card at once, generating."""
    try:
        document = generation.start(g.tenant, request.form.get("template_id"), PLURALS[plural], record_id,
                                    current_membership(), locale=generation.requester_locale())
    except ServiceError as error:
        db.session.rollback()
        if _wants_json():
            return _refusal(error)
        flash(str(error.message), "error")
        return redirect(card_url(PLURALS[plural], record_id) + "#documents")
    db.session.commit()
    if _wants_json():
        return jsonify(id=document.id, url=f"/documents/{document.id}", status=document.generation), 202
    flash(_("“%(title)s” is being made; it will be ready on the card in a moment.", title=document.title), "success")
    return redirect(card_url(PLURALS[plural], record_id) + "#documents")


@bp.post("/documents/<int:document_id>/retry")
@staff_page
def retry(document_id: int):
    try:
        document = generation.retry(g.tenant, document_id, current_membership(), locale=generation.requester_locale())
    except (Invalid, services.QuotaRefused) as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return redirect(url_for(".card", document_id=document_id))
    db.session.commit()
    flash(_("“%(title)s” is being made again.", title=document.title), "success")
    return redirect(url_for(".card", document_id=document_id))


@bp.post("/<any(deals, companies, contacts):plural>/generate")
@staff_page
def generate_batch(plural: str):
    """One template for the records selected in a list: the batch's progress page follows."""
    try:
        batch_id, started, skipped = generation.start_batch(
            g.tenant, request.form.get("template_id"), request.form.getlist("record_ids"), current_membership(),
            locale=generation.requester_locale())
    except ServiceError as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return redirect(f"/{plural}")
    db.session.commit()
    for record_id, reason in skipped.items():
        flash(_("#%(id)d: %(reason)s", id=record_id, reason=reason), "error")
    if not started:
        return redirect(f"/{plural}")
    return redirect(url_for(".batch", batch_id=batch_id))


@bp.get("/documents/batches/<batch_id>")
@staff_page
def batch(batch_id: str):
    documents = generation.batch(batch_id, current_membership())
    generation.rescue_stuck(g.tenant, documents, generation.requester_locale())
    counts = generation.counts(documents)
    titles = {entity: _titles(entity, {d.record_id for d in documents if d.entity == entity}) for entity in PLURAL_OF}
    return render_template("documents/batch.html", documents=documents, counts=counts, total=len(documents),
                           titles=titles, card_url=card_url)


def _exported(document_id: int, kind: str):
    """A generated document as an editable HTML page or DOCX, made from the HTML its PDF came from."""
    from .exports import exported_response

    document = services.get(document_id, current_membership())
    version = services.version_of(document, _version_arg())
    if not version.source_html:
        flash(_("Only documents made from a template can be had as HTML or DOCX."), "error")
        return redirect(url_for(".card", document_id=document_id))
    return exported_response(version, kind)


@bp.get("/documents/<int:document_id>/download.html")
@staff_page
def download_html(document_id: int):
    return _exported(document_id, "html")


@bp.get("/documents/<int:document_id>/download.docx")
@staff_page
def download_docx(document_id: int):
    return _exported(document_id, "docx")


# --- the document card ---------------------------------------------------------------------

def _children(document: Document) -> list[Document]:
    return list(db.session.scalars(select(Document).where(Document.parent_id == document.id,
                                                          Document.deleted_at.is_(None)).order_by(Document.id)))


def _document_page(document: Document, errors: dict | None = None, values: dict | None = None, status: int = 200):
    actor = current_membership()
    record = crm.get(document.entity, document.record_id, actor)
    siblings = [d for d in services.on_card(document.entity, document.record_id, actor)
                if (d.entity, d.record_id) == (document.entity, document.record_id) and d.id != document.id]
    return render_template(
        "documents/card.html", document=document, values=values or _values(document),
        errors=errors or {}, card_title=crm.title_of(document.entity, record),
        card_url=card_url(document.entity, document.record_id), card_kind=ENTITY_LABELS[document.entity],
        can_edit=access.can_edit(record, document.entity, actor),
        type_choices=[(t.id, t.name) for t in services.document_types()], staff=crm.staff(),
        people=crm.staff_names(), parent_choices=[(d.id, d.title) for d in siblings], children=_children(document),
        parent=_live(document.parent_id), statuses=STATUS_LABELS,
        inline=document.current is not None and services.is_inline(document.current.content_type),
        template=_template_of(document)), status


def _template_of(document: Document):
    from .models import DocumentTemplate

    return db.session.get(DocumentTemplate, document.template_id) if document.template_id else None


def _live(document_id: int | None) -> Document | None:
    """A document of the same card (a parent), unless it is in the recycle bin."""
    found = db.session.get(Document, document_id) if document_id else None
    return found if found is not None and found.deleted_at is None else None


def _values(document: Document) -> dict:
    """The form's values as strings, from the stored document."""
    values = {name: getattr(document, name) for name in CARD_FIELDS}
    values["signed_on"] = document.signed_on.isoformat() if document.signed_on else ""
    return {name: "" if value is None else str(value) for name, value in values.items()}


@bp.get("/documents/<int:document_id>")
@staff_page
def card(document_id: int):
    return _document_page(services.get(document_id, current_membership()))


@bp.post("/documents/<int:document_id>")
@staff_page
def save(document_id: int):
    data = {name: request.form.get(name, "") for name in CARD_FIELDS}
    try:
        services.update(document_id, data, current_membership())
    except Invalid as error:
        db.session.rollback()
        return _document_page(services.get(document_id, current_membership()),
                              error.fields or {"": [str(error.message)]}, data, 422)
    db.session.commit()
    flash(_("Changes saved."), "success")
    return redirect(url_for(".card", document_id=document_id))


def _version_arg() -> int | None:
    raw = request.args.get("version", "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _to_bytes(document_id: int, inline: bool):
    """A redirect to a presigned S3 link (minutes) for the chosen version of a visible document."""
    document = services.get(document_id, current_membership())
    response = redirect(services.link(services.version_of(document, _version_arg()), inline=inline))
    response.headers["Cache-Control"] = "no-store"  # the link expires: never reuse it from a cache
    return response


@bp.get("/documents/<int:document_id>/download")
@staff_page
def download(document_id: int):
    return _to_bytes(document_id, inline=False)


@bp.get("/documents/<int:document_id>/view")
@staff_page
def view(document_id: int):
    return _to_bytes(document_id, inline=True)


@bp.post("/documents/<int:document_id>/versions/<int:number>/delete")
@staff_page
def delete_version(document_id: int, number: int):
    try:
        services.delete(document_id, current_membership(), version=number)
    except (Invalid, Conflict) as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return redirect(url_for(".card", document_id=document_id))
    db.session.commit()
    flash(_("Version %(number)d is in the recycle bin.", number=number), "success")
    return redirect(url_for(".card", document_id=document_id))


@bp.post("/documents/<int:document_id>/delete")
@staff_page
def delete(document_id: int):
    document = services.get(document_id, current_membership())
    back = card_url(document.entity, document.record_id)
    services.delete(document_id, current_membership())
    db.session.commit()
    flash(_("“%(title)s” is in the recycle bin. It can be restored from there for %(days)d days.",
            title=document.title, days=services.RECYCLE_DAYS), "success")
    return redirect(back)


@bp.post("/documents/<int:document_id>/forward")
@staff_page
def forward(document_id: int):
    from .forwarding import forward as queue_mail

    try:
        queue_mail(document_id, current_membership(), to=request.form.get("to", ""),
                   mode=request.form.get("mode", ""), version=_form_version(), message=request.form.get("message", ""))
    except Invalid as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return redirect(url_for(".card", document_id=document_id) + "#forward")
    db.session.commit()
    flash(_("The mail to %(to)s is on its way.", to=request.form.get("to", "").strip()), "success")
    return redirect(url_for(".card", document_id=document_id))


def _form_version() -> int | None:
    raw = request.form.get("version", "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


# --- the recycle bin -----------------------------------------------------------------------

@dataclass
class Deleted:
    document: Document
    card_kind: str
    card_title: str
    card_url: str
    deleted_by: str
    purge_on: object
    size: int  # of all its versions: what deleting it for good frees


def deleted_documents() -> list[Deleted]:
    """Documents in the recycle bin the current person could restore, for the recycle bin page."""
    found = services.deleted(current_membership())
    people = crm.staff_names()
    titles = {entity: _titles(entity, {d.record_id for d in found if d.entity == entity}) for entity in PLURAL_OF}
    sizes = _sizes([d.id for d in found])
    return [Deleted(d, ENTITY_LABELS[d.entity], titles[d.entity].get(d.record_id, f"#{d.record_id}"),
                    card_url(d.entity, d.record_id), people.get(d.deleted_by, "—"),
                    d.deleted_at + timedelta(days=services.RECYCLE_DAYS), sizes.get(d.id, 0)) for d in found]


def _sizes(document_ids: list[int]) -> dict[int, int]:
    """Bytes of every version of each document, in one query (the bin lists up to 500)."""
    if not document_ids:
        return {}
    rows = db.session.execute(select(Version.document_id, func.sum(Version.size)).where(
        Version.document_id.in_(document_ids)).group_by(Version.document_id))
    return {document_id: size for document_id, size in rows}


def deleted_versions() -> list:
    """Single deleted versions of live documents the current person could restore."""
    people = crm.staff_names()
    return [(version, people.get(version.deleted_by, "—"), version.deleted_at + timedelta(days=services.RECYCLE_DAYS))
            for version in services.deleted_versions(current_membership())]


@bp.post("/recycle-bin/documents/<int:document_id>/versions/<int:number>/restore")
@staff_page
def restore_version(document_id: int, number: int):
    version = services.restore_version(document_id, number, current_membership())
    db.session.commit()
    flash(_("Version %(number)d of “%(name)s” is restored.", number=version.number, name=version.document.title),
          "success")
    return redirect(url_for("crm_admin.recycle_bin"))


@bp.post("/recycle-bin/documents/<int:document_id>/restore")
@staff_page
def restore(document_id: int):
    document = services.restore(document_id, current_membership())
    db.session.commit()
    flash(_("“%(name)s” is restored.", name=document.title), "success")
    return redirect(url_for("crm_admin.recycle_bin"))


@bp.post("/recycle-bin/documents/<int:document_id>/purge")
@manager_page
def purge(document_id: int):
    removed = services.remove_for_good(g.tenant, document_id, current_membership())
    _commit_then_delete_blobs(removed.keys)
    flash(_("“%(name)s” is deleted for good: %(size)s freed.", name=removed.title,
            size=services.human_size(removed.freed)), "success")
    return redirect(url_for("crm_admin.recycle_bin"))


@bp.post("/recycle-bin/documents/<int:document_id>/versions/<int:number>/purge")
@manager_page
def purge_version(document_id: int, number: int):
    removed = services.remove_for_good(g.tenant, document_id, current_membership(), version=number)
    _commit_then_delete_blobs(removed.keys)
    flash(_("Version %(number)d of “%(name)s” is deleted for good: %(size)s freed.", number=number,
            name=removed.title, size=services.human_size(removed.freed)), "success")
    return redirect(url_for("crm_admin.recycle_bin"))


@bp.post("/recycle-bin/documents/empty")
@manager_page
def empty_bin():
    """Every document and version in the bin the manager could restore, deleted for good at once."""
    freed, keys = services.empty_bin(g.tenant, current_membership())
    _commit_then_delete_blobs(keys)
    if keys:
        flash(_("The documents in the recycle bin are deleted for good: %(size)s freed.",
                size=services.human_size(freed)), "success")
    else:
        flash(_("There were no documents in the recycle bin."), "info")
    return redirect(url_for("crm_admin.recycle_bin"))


def _commit_then_delete_blobs(keys: list[str]) -> None:
    """Commit the removal, then delete its files: a rolled-back removal keeps every file listed.
    A file that fails to go is left to the hourly `storage reconcile`, which deletes orphans."""
    db.session.commit()
    for key in keys:
        try:
            blob_store().delete(key)
        except Exception:  # the rows are gone and the bytes freed: the person's action succeeded
            current_app.logger.exception("could not delete blob %s after removing it for good", key)


# --- storage: usage, notices, document types -----------------------------------------------

@dataclass
class Bar:
    label: str
    url: str | None
    size: int
    share: float  # of the largest bar, 0…100


def _bars(rows: list[tuple[str, str | None, int]]) -> list[Bar]:
    top = max((size for _label, _url, size in rows), default=0) or 1
    return [Bar(label, url, size, round(size * 100 / top, 1)) for label, url, size in rows]


def _by_record() -> list[Bar]:
    rows = services.usage_by("record")
    titles = {entity: _titles(entity, {i for e, i in (key for key, _size in rows) if e == entity})
              for entity in PLURAL_OF}
    return _bars([(f"{ENTITY_LABELS[e]} · {titles[e].get(i, f'#{i}')}", card_url(e, i) if i in titles[e] else None,
                   size) for (e, i), size in rows])


def _by_type() -> list[Bar]:
    names = {t.id: t.name for t in services.document_types()}
    return _bars([(names.get(type_id, _("No type")), None, size) for type_id, size in services.usage_by("type")])


def _by_person() -> list[Bar]:
    people = crm.staff_names()
    return _bars([(people.get(user_id, f"#{user_id}"), None, size) for user_id, size in services.usage_by("person")])


def _storage_page(errors: dict | None = None, status: int = 200):
    return render_template("documents/storage.html", usage=services.usage(g.tenant), by_record=_by_record(),
                           by_type=_by_type(), by_person=_by_person(), types=services.document_types(),
                           max_file=services.max_file_bytes(g.tenant), errors=errors or {}), status


@bp.get("/settings/storage")
@manager_page
def storage():
    page = _storage_page()
    db.session.commit()  # a new company's first look keeps its default document types
    return page


@bp.post("/settings/storage/types")
@manager_page
def add_type():
    try:
        created = services.add_document_type(current_membership(), request.form.get("name", ""))
    except Invalid as error:
        db.session.rollback()
        return _storage_page(error.fields or {"name": [str(error.message)]}, 422)
    except Conflict as error:
        db.session.rollback()
        return _storage_page({"name": [str(error.message)]}, 409)
    db.session.commit()
    flash(_("Document type “%(name)s” added.", name=created.name), "success")
    return redirect(url_for(".storage") + "#types")


@dataclass(frozen=True)
class Notice:
    full: bool
    percent: int
    plan: str
    used: int
    limit: int


def storage_notice() -> Notice | None:
    """For the owner, on every page: the quota is 80% or fully used (one ledger read per request)."""
    if "storage_notice" in g:
        return g.storage_notice
    g.storage_notice = None
    membership = current_membership()
    if g.get("tenant") is not None and membership is not None and membership.role == Role.OWNER:
        try:
            current = services.usage(g.tenant)
        except SQLAlchemyError:  # an error page after a failed transaction: no notice, not a second error
            return None
        if current.share is not None and current.share >= 0.8:
            g.storage_notice = Notice(current.share >= 1, min(int(current.share * 100), 999), str(current.plan.name),
                                      current.used, current.limit)
    return g.storage_notice
