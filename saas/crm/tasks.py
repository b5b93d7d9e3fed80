"""CRM job bodies (run by the worker inside the job's tenant scope)."""
from flask_babel import force_locale, gettext as _

from tenants.db import db
from tenants.models import utcnow

from . import imports
from .imports import Status
from .models import ImportJob

BATCH = 200  # rows per transaction: progress shows after each, and a retry resumes from there


def run_import(import_id: int, locale: str = "en") -> str | None:
    """Import the rows of an uploaded file, as the person who started it.

    Safe to run again: counts and `processed` are committed with each batch of rows, so a retry
    resumes after the last committed row. A failure keeps the file for another try; success drops it.
    """
    job = db.session.get(ImportJob, import_id, with_for_update=True)
    # Only a queued or failed job is claimed: a running one has a worker on it already.
    if job is None or job.content is None or job.status not in (Status.QUEUED, Status.FAILED):
        return None
    with force_locale(locale):
        actor = imports.importer(job)
        if actor is None:
            return _fail(job, _("%(name)s, who started this import, no longer has access to the company. "
                                "Start it again as someone who has.", name=imports.importer_name(job)))
        job.status, job.error = Status.RUNNING, None
        db.session.commit()
        try:
            _import_rows(job, actor)
        except Exception as error:
            db.session.rollback()
            _fail(db.session.get(ImportJob, import_id), _("The import stopped: %(error)s", error=str(error)[:500]))
            raise  # RQ retries it
    return job.status


def _import_rows(job: ImportJob, actor) -> None:
    table = imports.read_table(job.filename, job.content)
    mapping, entity, policy = job.mapping, job.entity, job.on_duplicate
    refs, labels = imports.References(actor), imports.column_labels(entity, mapping)
    rejected = list(job.rejected or [])
    job.total = len(table.rows)
    for number, cells in table.rows[job.processed:]:
        row = imports.build_row(entity, mapping, table.headers, number, cells, refs)
        duplicate = imports.find_duplicate(entity, row, actor) if policy != imports.Policy.CREATE else None
        outcome = imports.import_row(entity, row, policy, actor, labels, duplicate=duplicate)
        if outcome.action == "rejected":
            rejected.append({"row": number, "reasons": outcome.reasons})
        else:
            setattr(job, outcome.action, getattr(job, outcome.action) + 1)
        job.processed += 1
        if job.processed % BATCH == 0:
            job.rejected = list(rejected)
            db.session.commit()
    job.rejected = rejected
    job.status, job.content, job.finished_at = Status.DONE, None, utcnow()
    db.session.commit()


def _fail(job: ImportJob, message: str) -> str:
    job.status, job.error, job.finished_at = Status.FAILED, message, utcnow()
    db.session.commit()
    return job.status
