"""Forwarding a document by email: the page checks and queues, the worker sends.

The job gets ids only and looks everything up again when it runs, as the sender: a document
deleted or a sender removed meanwhile sends nothing.
"""
from flask_babel import get_locale, lazy_gettext as _l

from saas.auth.models import Membership
from saas.auth.services import normalize_email
from saas.errors import Invalid
from saas.jobs import enqueue_after_commit

from . import services, tasks

MODES = ("attachment", "link")
MAX_MESSAGE = 5000


def forward(document_id: int, actor: Membership, *, to: str, mode: str, version: int | None = None,
            message: str = "") -> None:
    """Queue a mail of one version (the current one by default) of a document the actor may see.

    "attachment" attaches the file (up to tasks.MAX_ATTACHMENT_BYTES, else it sends a link);
    "link" sends a presigned link that works for tasks.LINK_DAYS days. Sent once the caller commits.
    """
    chosen = services.version_of(services.get(document_id, actor), version)
    if mode not in MODES:
        raise Invalid(_l("Choose to attach the file or to send a link."), field="mode")
    try:
        address = normalize_email(to)
    except Invalid as problem:
        raise Invalid(problem.message, field="to")
    enqueue_after_commit(tasks.forward_document, document_id, chosen.number, address, mode, actor.user_id,
                         (message or "").strip()[:MAX_MESSAGE], str(get_locale() or "en"))
