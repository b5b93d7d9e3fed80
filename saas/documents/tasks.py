"""Job bodies for documents (run by the worker inside the job's tenant scope)."""
from flask import render_template
from flask_babel import force_locale, gettext as _
from sqlalchemy import select

from saas import mail
from saas.auth.models import Membership
from saas.blobs import blob_store
from saas.errors import NotFound
from tenants.db import db
from tenants.scope import current_tenant

from . import services

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024  # larger files go as a link: mail servers refuse big messages
LINK_DAYS = 7  # the longest a SigV4 presigned URL may live


def forward_document(document_id: int, version_number: int, to: str, mode: str, sender_id: int,
                     message: str = "", locale: str = "en") -> str:
    """Mail one version of a document as the sender; returns how it went ("attachment", "link" or
    "gone" when the document, the version or the sender's access is no more)."""
    tenant = current_tenant()
    sender = db.session.scalar(select(Membership).where(
        Membership.tenant_id == tenant.id, Membership.user_id == sender_id, Membership.active.is_(True)))
    try:
        if sender is None:
            raise NotFound("the sender is no longer a member")
        document = services.get(document_id, sender)  # access is checked again, as the sender
        version = services.version_of(document, version_number)
    except NotFound:
        return "gone"
    attach = mode == "attachment" and version.size <= MAX_ATTACHMENT_BYTES
    link = None if attach else services.link(version, seconds=LINK_DAYS * 24 * 3600)
    title = " ".join(document.title.split())  # one line: it goes into the Subject header
    with force_locale(locale):
        subject = _("%(sender)s sent you “%(title)s”", sender=sender.user.name, title=title)
        body = render_template("documents/forward_email.txt", sender=sender.user.name, company=tenant.name,
                               title=title, filename=version.filename, message=message, link=link,
                               days=LINK_DAYS, too_big=mode == "attachment" and not attach)
    email = mail.build_message(to, subject, body)
    email["Reply-To"] = sender.user.email
    if attach:
        maintype, _slash, subtype = version.content_type.partition("/")
        email.add_attachment(b"".join(blob_store().open(version.blob_key)), maintype=maintype,
                             subtype=subtype or "octet-stream", filename=version.filename)
    mail.send(email)
    return "attachment" if attach else "link"


def reconcile_storage() -> dict:
    """The periodic ledger and bucket check (see maintenance.reconcile_all), as an RQ job."""
    from .maintenance import reconcile_all

    return reconcile_all(echo=lambda line: None).as_dict()


def generate_document(document_id: int, locale: str = "en") -> str:
    """Make one document from its template (see generation.run); safe to run twice."""
    from rq import get_current_job

    from .generation import run

    job = get_current_job()
    last_try = job is None or not job.retries_left
    return run(current_tenant(), document_id, job.id if job else f"inline-{document_id}", locale=locale,
               last_try=last_try)


def sweep_generation() -> dict:
    """Every company's documents left generating by a dead worker (see generation.sweep)."""
    from .maintenance import sweep_all_generation

    return sweep_all_generation()
