"""Documents made from templates, as ARCHITECTURE.md walks them.

The request creates the document at once, *generating*, on the card, and queues a job with its
id. The job (tasks.generate_document) claims the document, fills the template version the
document records, takes a number, renders the PDF and stores it like an upload (quota
reserved → blob written → version saved and reservation settled in one transaction), and marks
it *ready* — or *failed* with a reason a person can act on.

Safe to run twice: a job works only on a document it has claimed; a second job finds it taken,
or finished, and leaves. A retried job keeps the number taken before (it is on the document), so
one document consumes one number. A document whose job died is put back in the queue, or failed
after MAX_ATTEMPTS, by `sweep()`.
"""
import io
import uuid
from datetime import date, timedelta

from flask_babel import force_locale, lazy_gettext as _l
from sqlalchemy import func, or_, select, update

from saas.auth.models import Membership
from saas.crm import services as crm
from saas.errors import Invalid, NotFound, ServiceError
from saas.jobs import enqueue_after_commit
from tenants.db import db
from tenants.models import TenantRef, utcnow

from . import doc_templates, numbering, pdf, services
from .models import Document, DocumentStatus, DocumentTemplate, Generation, TemplateVersion

JOB_TIMEOUT = 120  # seconds for one document, WeasyPrint included
JOB_RETRIES = 2  # transient failures (storage, database) are tried again with backoff
MAX_ATTEMPTS = 4  # the job's runs, its retries and the sweeper's requeues together
STALE_CLAIM = timedelta(seconds=JOB_TIMEOUT + 60)  # a claim older than this belongs to a dead job
REQUEUE_AFTER = timedelta(minutes=10)  # unclaimed this long: its job was lost (e.g. Redis was down)
MAX_BATCH = 500


class GenerationFailed(ServiceError):
    """Why a document could not be made, for the person who asked for it."""

    status, code = 422, "generation_failed"


# --- in the request ------------------------------------------------------------------------

def start(tenant: TenantRef, template_id: int, entity: str, record_id: int, actor: Membership, *,
          locale: str, batch_id: str | None = None) -> Document:
    """A new document on the card, *generating*; its job is sent when the transaction commits."""
    template = _template_for(template_id, entity)
    record = services.card_record(entity, record_id, actor, edit=True)
    refuse_when_storage_full(tenant)
    document = Document(
        entity=entity, record_id=record.id, title=_title(template, record, entity), created_by=actor.user_id,
        responsible_id=actor.user_id, status=DocumentStatus.DRAFT,
        type_id=services.type_named(template.document_type.title(), numbering.DOCUMENT_TYPES[template.document_type]),
        template_id=template.id, template_version=template.version, generation=Generation.GENERATING,
        batch_id=batch_id)
    db.session.add(document)
    db.session.flush()
    services.log_change(entity, record, "document", actor, document, {"document": [None, document.title]})
    _queue(document, locale)
    return document


def _template_for(template_id, entity: str) -> DocumentTemplate:
    try:
        template = doc_templates.get_template(int(template_id))
    except (TypeError, ValueError):
        raise Invalid(_l("Choose a template."), field="template_id")
    if template.applies_to != entity:
        raise Invalid(_l("“%(name)s” is a template for %(kind)s; choose one for this card.", name=template.name,
                         kind=doc_templates.APPLIES_TO[template.applies_to]), field="template_id")
    return template


def _title(template: DocumentTemplate, record, entity: str) -> str:
    return f"{template.name} — {crm.title_of(entity, record)}"[:300]


def refuse_when_storage_full(tenant: TenantRef) -> None:
    """Say so at the click, not a minute later on the card: a full company gets no new documents."""
    current = services.usage(tenant)
    if current.limit is not None and current.used + current.reserved >= current.limit:
        raise services.QuotaRefused(current.plan, current.limit, current.used + current.reserved)


def _queue(document: Document, locale: str) -> None:
    from .tasks import generate_document

    enqueue_after_commit(generate_document, document.id, locale, timeout=JOB_TIMEOUT, retries=JOB_RETRIES)


def start_batch(tenant: TenantRef, template_id: int, record_ids: list, actor: Membership, *, locale: str
                ) -> tuple[str, list[Document], dict[int, str]]:
    """One template for many deals: (batch id, documents started, {record id: why not} for the rest)."""
    template = doc_templates.get_template(_int(template_id, "template_id"))
    ids = list(dict.fromkeys(_int(raw, "record_ids") for raw in record_ids or []))
    if not ids:
        raise Invalid(_l("Select the records to make documents for."), field="record_ids")
    if len(ids) > MAX_BATCH:
        raise Invalid(_l("At most %(n)d documents at once.", n=MAX_BATCH), field="record_ids")
    refuse_when_storage_full(tenant)
    batch_id, started, skipped = str(uuid.uuid4()), [], {}
    for record_id in ids:
        try:
            with db.session.begin_nested():
                started.append(start(tenant, template.id, template.applies_to, record_id, actor, locale=locale,
                                     batch_id=batch_id))
        except ServiceError as refused:
            skipped[record_id] = str(refused.message)
    return batch_id, started, skipped


def _int(raw, field: str) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise Invalid(_l("Give whole numbers."), field=field)


def retry(tenant: TenantRef, document_id: int, actor: Membership, *, locale: str) -> Document:
    """Make a failed document again from its template as it is now (the number stays)."""
    document = services.get(document_id, actor, edit=True)
    locked = db.session.get(Document, document.id, with_for_update=True, populate_existing=True)
    if locked.generation != Generation.FAILED:
        raise Invalid(_l("Only a document that failed can be made again."))
    template = db.session.get(DocumentTemplate, locked.template_id) if locked.template_id else None
    if template is None:
        raise Invalid(_l("Its template has been deleted; make a new document from another one."))
    refuse_when_storage_full(tenant)
    locked.generation, locked.generation_error, locked.generation_claim = Generation.GENERATING, None, None
    locked.template_version, locked.generation_attempts = template.version, 0
    locked.generation_claimed_at = utcnow()  # just queued: the sweeper gives its job time to run
    _queue(locked, locale)
    return locked


def batch(batch_id: str, actor: Membership) -> list[Document]:
    """The documents of a batch the actor may see."""
    try:
        batch_id = str(uuid.UUID(str(batch_id)))
    except ValueError:
        raise NotFound(_l("No such batch."))
    found = [d for d in db.session.scalars(select(Document).where(Document.batch_id == batch_id,
                                                                  Document.deleted_at.is_(None))
                                           .order_by(Document.id))
             if services.may_see_card(d, actor)]
    if not found:
        raise NotFound(_l("No such batch."))
    return found


# --- in the job ----------------------------------------------------------------------------

def run(tenant: TenantRef, document_id: int, job_id: str, *, locale: str, last_try: bool) -> str:
    """Make the document; returns what happened ("ready", "failed" or "skipped": someone else has it).

    Transient failures (storage, database) are raised for RQ to retry, unless this is the last
    try: then the document fails saying to try again."""
    if not _claim(document_id, job_id):
        return "skipped"
    try:
        html = _fill_with_number(tenant, document_id)
        made = pdf.to_pdf(html, tenant)
        _store(tenant, document_id, job_id, made, html)
        return "ready"
    except (GenerationFailed, ServiceError) as problem:
        db.session.rollback()
        _fail(document_id, job_id, problem.message, locale)
        return "failed"
    except Exception as error:
        db.session.rollback()
        from rq.timeouts import JobTimeoutException

        if isinstance(error, JobTimeoutException):
            _fail(document_id, job_id, _l("Making this document took longer than %(seconds)d seconds. Make the "
                                          "template lighter (fewer pages, smaller images) and try again.",
                                          seconds=JOB_TIMEOUT), locale)
            return "failed"
        if last_try:
            _fail(document_id, job_id, _l("The document could not be stored just now (the storage or the database "
                                          "did not answer). Try again in a few minutes."), locale)
            return "failed"
        _release(document_id, job_id)
        raise


def _claim(document_id: int, job_id: str) -> bool:
    """Take the document for this job (committed), unless another live job has it or it is done."""
    claimed = db.session.execute(
        update(Document).where(
            Document.id == document_id, Document.generation == Generation.GENERATING, Document.deleted_at.is_(None),
            or_(Document.generation_claim.is_(None), Document.generation_claim == job_id,
                Document.generation_claimed_at < utcnow() - STALE_CLAIM))
        .values(generation_claim=job_id, generation_claimed_at=utcnow(),
                generation_attempts=Document.generation_attempts + 1)
        .returning(Document.id)).first()
    db.session.commit()
    return claimed is not None


def _fill_with_number(tenant: TenantRef, document_id: int) -> str:
    """The HTML page, with the document's number: taken now, if it has none, in the transaction
    that writes it on the document. A template that fails raises before the commit, so the roll
    back gives the number back: a broken template consumes none (the counter's row stays locked
    only for the filling, a few milliseconds)."""
    document = db.session.get(Document, document_id, with_for_update=True, populate_existing=True)
    template, record = _source(document)
    if not document.number:
        document.number = numbering.take(template.document_type, date.today())
    html = doc_templates.fill(tenant, template, record, user_id=document.created_by, number=document.number,
                              title=document.title, image_url=_stored_images())
    db.session.commit()
    return html


def _stored_images():
    """`dealdocs:logo` and the like for the images we have, "" for the others (a template prints
    an image only when there is one)."""
    from saas.settings.requisites import image_names

    have = image_names()
    return lambda name: f"dealdocs:{name}" if name in have else ""


def _source(document: Document) -> tuple[TemplateVersion, object]:
    template = db.session.scalar(select(TemplateVersion).where(
        TemplateVersion.template_id == document.template_id, TemplateVersion.number == document.template_version))
    if template is None:
        raise GenerationFailed(_l("Its template was deleted before the document was made."))
    record = db.session.get(crm.model_of(document.entity), document.record_id)
    if record is None or record.deleted_at is not None:
        raise GenerationFailed(_l("The card it was for has been deleted."))
    return template, record


def _store(tenant: TenantRef, document_id: int, job_id: str, made: bytes, html: str) -> None:
    """The PDF stored like an upload, then the document ready — if this job still has it."""
    document = db.session.get(Document, document_id)
    filename = services.safe_filename(f"{document.number} {document.title}.pdf" if document.number
                                      else f"{document.title}.pdf")
    version, reservation = services.write_blob(tenant, io.BytesIO(made), len(made), filename, document.created_by)
    version.source_html = html

    def keep():
        locked = db.session.get(Document, document_id, with_for_update=True, populate_existing=True)
        if locked.generation != Generation.GENERATING or locked.generation_claim != job_id:
            raise _Lost()
        version.number = max((v.number for v in locked.versions), default=0) + 1
        locked.versions.append(version)
        locked.sha256 = version.sha256
        locked.generation, locked.generation_error, locked.generation_claim = Generation.READY, None, None
    try:
        services.keep_written(version, reservation, keep)
    except _Lost:
        db.session.rollback()
        return
    db.session.commit()


class _Lost(Exception):
    """The document was deleted, or taken over as stale, while this job rendered it."""


def _fail(document_id: int, job_id: str | None, message, locale: str) -> None:
    with force_locale(locale):
        text = str(message)
    db.session.execute(update(Document).where(
        Document.id == document_id, Document.generation == Generation.GENERATING,
        or_(Document.generation_claim.is_(None), Document.generation_claim == job_id))
        .values(generation=Generation.FAILED, generation_error=text[:2000], generation_claim=None))
    db.session.commit()


def _release(document_id: int, job_id: str) -> None:
    """Let RQ's retry of this job (or the sweeper) take the document again."""
    db.session.execute(update(Document).where(Document.id == document_id, Document.generation_claim == job_id)
                       .values(generation_claim=None))
    db.session.commit()


# --- the sweeper ---------------------------------------------------------------------------

def sweep(locale: str = "en") -> dict:
    """Documents left *generating*: those whose job died holding them are queued again (or failed
    once tried MAX_ATTEMPTS times); those no job ever took (it was lost, e.g. Redis was down when
    it was sent) are queued again. Runs in the caller's transaction."""
    now = utcnow()
    dead = Document.generation_claim.is_not(None) & (Document.generation_claimed_at < now - STALE_CLAIM)
    lost = Document.generation_claim.is_(None) & (
        func.coalesce(Document.generation_claimed_at, Document.created_at) < now - REQUEUE_AFTER)
    # Not those in the recycle bin: no job takes them (restored, they are found here again).
    stuck = list(db.session.scalars(select(Document).where(Document.generation == Generation.GENERATING,
                                                           Document.deleted_at.is_(None), or_(dead, lost))
                                    .with_for_update(skip_locked=True)))
    requeued = failed = 0
    for document in stuck:
        if document.generation_attempts >= MAX_ATTEMPTS:
            with force_locale(locale):
                document.generation_error = str(_l(
                    "The worker stopped while making this document, %(n)d times. Try again; if it stops again, "
                    "the template is probably too heavy (very many pages or large images).",
                    n=document.generation_attempts))
            document.generation, document.generation_claim = Generation.FAILED, None
            failed += 1
        else:
            # Marked as just queued: the next sweep gives the new job time to run. A job lost
            # before it claimed counts as a try too, so a document cannot be queued forever.
            if document.generation_claim is None:
                document.generation_attempts += 1
            document.generation_claim, document.generation_claimed_at = None, now
            _queue(document, locale)
            requeued += 1
    db.session.flush()
    return {"requeued": requeued, "failed": failed}


RESCUE_EVERY = 30  # seconds: pages and clients poll often; one sweep per company in that time is enough


def rescue_stuck(tenant: TenantRef, documents: list[Document], locale: str) -> None:
    """While someone watches documents being generated, requeue (or fail) those a dead worker left
    behind (committed) — at most once per RESCUE_EVERY seconds per company."""
    from saas.jobs import redis_connection

    if not any(document.generation == Generation.GENERATING for document in documents):
        return
    if not redis_connection().set(f"dealdocs:rescue:{tenant.id}", 1, nx=True, ex=RESCUE_EVERY):
        return
    sweep(locale=locale)
    db.session.commit()


def counts(documents: list[Document]) -> dict[str, int]:
    """How many documents are generating, ready and failed."""
    return {state: sum(document.generation == state for document in documents)
            for state in (Generation.GENERATING, Generation.READY, Generation.FAILED)}


def requester_locale() -> str:
    """The language a failed generation's reason is written in: that of whoever asked for it."""
    from flask_babel import get_locale

    return str(get_locale() or "en")
