"""Import of CSV/XLSX files and export of filtered lists.

Import: upload (/<plural>/import) → mapping and preview (/imports/<id>) → the job runs →
the same page shows progress, then the report. Export: /<plural>/export.csv|xlsx with the
list's filters and sort.
"""
import csv
import io
from datetime import date

from flask import (Blueprint, Response, abort, flash, g, jsonify, redirect, render_template, request, send_file,
                   stream_with_context, url_for)
from flask_babel import get_locale, gettext as _, lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import RadioField
from wtforms.fields.choices import SelectChoice
from werkzeug.exceptions import RequestEntityTooLarge

from saas.auth.session import current_membership, tenant_required
from saas.errors import NotFound, ServiceError
from tenants.db import db
from tenants.scope import tenant_scope

from . import exports, imports, services
from .fields import ENTITY_PLURALS
from .imports import PLURAL_OF, PLURALS, Policy, Status

bp = Blueprint("crm_import", __name__)

RECORDS = "<any(leads, contacts, companies, deals):plural>"
IMPORT_ID = "<int(max=9223372036854775807):import_id>"


def staff_page(view):
    return tenant_required(login_required(view))


class UploadForm(FlaskForm):
    file = FileField(_l("CSV or Excel (.xlsx) file"))


class MappingForm(FlaskForm):
    on_duplicate = RadioField(_l("When a row repeats an existing record (same email, phone or TIN)"),
                              choices=[SelectChoice(key, label) for key, label in imports.POLICY_LABELS.items()],
                              default=Policy.SKIP)


# --- upload --------------------------------------------------------------------------------

@bp.route(f"/{RECORDS}/import", methods=["GET", "POST"])
@staff_page
def upload(plural: str):
    entity, actor = PLURALS[plural], current_membership()
    if request.method == "POST":
        # The file limit and a little for the form around it; a bigger body is refused unread.
        request.max_content_length = imports.MAX_BYTES + 64 * 1024
    try:
        form = UploadForm()
    except RequestEntityTooLarge:
        form = UploadForm(formdata=None)
        form.file.errors = [_("The file is larger than %(mb)d MB. Split it into smaller files.",
                              mb=imports.MAX_BYTES // 2**20)]
    if request.method == "POST" and not form.file.errors:
        if form.validate_on_submit():
            try:
                job = _start(entity, form.file.data, actor)
            except ServiceError as error:
                form.file.errors = [str(error.message)]
            else:
                db.session.commit()
                return redirect(url_for("crm_import.job_page", import_id=job.id))
        else:
            flash(_("The form expired. Please try again."), "error")
    status = 422 if request.method == "POST" else 200
    return render_template("crm/imports/upload.html", form=form, entity=entity, plural=plural,
                           title=ENTITY_PLURALS[entity], jobs=imports.recent_jobs(entity, actor),
                           max_mb=imports.MAX_BYTES // 2**20), status


def _start(entity: str, upload, actor):
    if upload is None or not upload.filename:
        raise imports.FileProblem(_l("Choose a file to upload."))
    content = upload.stream.read(imports.MAX_BYTES + 1)
    return imports.start(entity, upload.filename, content, actor)


# --- mapping, preview, progress and report ---------------------------------------------------

def _job(import_id: int):
    try:
        return imports.get_job(import_id, current_membership())
    except NotFound:
        abort(404)


@bp.route(f"/imports/{IMPORT_ID}", methods=["GET", "POST"])
@staff_page
def job_page(import_id: int):
    job, actor = _job(import_id), current_membership()
    if job.status != Status.NEW:
        return _progress_page(job)
    try:
        table = imports.table_of(job)
    except ServiceError as error:  # the file was readable at upload; kept for safety
        flash(str(error.message), "error")
        return redirect(url_for("crm_import.upload", plural=PLURAL_OF[job.entity]))
    form = MappingForm(on_duplicate=job.on_duplicate)
    mapping = job.mapping or {}
    if request.method == "POST":
        if not form.validate_on_submit():
            flash(_("The form expired. Please try again."), "error")
            return redirect(url_for("crm_import.job_page", import_id=job.id))
        mapping = imports.clean_mapping(job.entity, table.headers, _chosen_columns(table.headers))
        job.mapping, job.on_duplicate = mapping, form.on_duplicate.data
        if request.form.get("action") == "start":
            try:
                imports.queue_job(job, mapping, form.on_duplicate.data, actor, str(get_locale()))
            except ServiceError as error:
                flash(str(error.message), "error")
            else:
                db.session.commit()
                flash(_("The import has started."), "success")
                return redirect(url_for("crm_import.job_page", import_id=job.id))
        db.session.commit()
        return redirect(url_for("crm_import.job_page", import_id=job.id))
    rows = imports.preview(job, table, actor, mapping, job.on_duplicate)
    db.session.rollback()  # the preview tried rows in savepoints; nothing of it is kept
    return render_template("crm/imports/mapping.html", job=job, table=table, form=form, mapping=mapping,
                           targets=imports.targets(job.entity), rows=rows, plural=PLURAL_OF[job.entity],
                           title=ENTITY_PLURALS[job.entity], mapped=[h for h in table.headers if mapping.get(h)])


def _chosen_columns(headers: list[str]) -> dict[str, str]:
    return {header: request.form.get(f"column-{index}", "") for index, header in enumerate(headers)}


def _progress_page(job):
    return render_template("crm/imports/progress.html", job=job, plural=PLURAL_OF[job.entity],
                           title=ENTITY_PLURALS[job.entity], retry_form=FlaskForm(),
                           started_by=imports.importer_name(job), finished=job.status in (Status.DONE, Status.FAILED))


@bp.get(f"/imports/{IMPORT_ID}.json")
@staff_page
def job_state(import_id: int):
    job = _job(import_id)
    return jsonify(status=job.status, total=job.total, processed=job.processed, created=job.created,
                   merged=job.merged, skipped=job.skipped, rejected=len(job.rejected or []), error=job.error)


@bp.get(f"/imports/{IMPORT_ID}/rejected.csv")
@staff_page
def rejected_rows(import_id: int):
    job = _job(import_id)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow([_("Row"), _("Reasons")])
    for entry in job.rejected or []:
        writer.writerow([entry["row"], exports.safe_cell("; ".join(entry["reasons"]))])
    return Response(buffer.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="import-{job.id}-rejected.csv"'})


@bp.post(f"/imports/{IMPORT_ID}/retry")
@staff_page
def retry(import_id: int):
    job, actor = _job(import_id), current_membership()
    if not FlaskForm().validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
    else:
        try:
            imports.queue_job(job, job.mapping, job.on_duplicate, actor, str(get_locale()))
        except ServiceError as error:
            flash(str(error.message), "error")
        else:
            db.session.commit()
            flash(_("The import has started again from where it stopped."), "success")
    return redirect(url_for("crm_import.job_page", import_id=job.id))


# --- export --------------------------------------------------------------------------------

@bp.get(f"/{RECORDS}/export.<any(csv, xlsx):extension>")
@staff_page
def export(plural: str, extension: str):
    entity, actor = PLURALS[plural], current_membership()
    try:
        query = services.list_query(entity, actor, services.filters_from(request.args),
                                    request.args.get("sort") or services.DEFAULT_SORT)
    except ServiceError as error:
        flash(str(error.message), "error")
        return redirect(f"/{plural}")
    columns = exports.columns(entity)
    filename = f"{plural}-{date.today().isoformat()}.{extension}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if extension == "xlsx":
        output = exports.xlsx_file(exports.rows(entity, query, columns, actor), str(ENTITY_PLURALS[entity]))
        return send_file(output, download_name=filename, as_attachment=True,
                         mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(stream_with_context(_streamed_csv(entity, query, columns, actor)),
                    mimetype="text/csv; charset=utf-8", headers=disposition)


def _streamed_csv(entity, query, columns, actor):
    # The request's tenant scope ends with the view; the rows are read after it, so the
    # generator opens the same company's scope again for itself.
    tenant = g.tenant
    with tenant_scope(tenant):
        yield from exports.csv_chunks(exports.rows(entity, query, columns, actor))
