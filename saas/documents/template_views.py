"""Template pages (owner and administrators): the company's templates with the numbering table,
the editor with its live preview, saving (the check names the line of a mistake), deleting.

Every change runs through doc_templates.py or numbering.py and is committed, flashed and
redirected; a refusal rolls back and re-renders the page with the message beside its field.
"""
from datetime import date

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _, lazy_gettext as _l

from saas.auth.session import current_membership
from saas.crm import services as crm
from saas.crm.admin_views import manager_page
from saas.crm.models import Entity
from saas.errors import Forbidden, Invalid, NotFound
from saas.web.views import service_errors_as_pages
from tenants.db import db

from . import context, doc_templates, numbering, templating
from .exports import PAGE_POLICY
from .models import DocumentTemplate, TemplateContent

bp = Blueprint("templates", __name__)
service_errors_as_pages(bp)  # a template of another company, or none, is the 404 page

GROUP_HEADINGS = {Entity.DEAL: _l("Made on a deal card"), Entity.COMPANY: _l("Made on a company card"),
                  Entity.CONTACT: _l("Made on a contact card")}
RECORD_CHOICES = 50  # most recently updated records offered to preview a template with
EARLIER_VERSIONS = 10
# The preview is the company's own HTML: shown only inside a sandboxed frame, and it may load
# nothing (images come inline as data: URIs, as the PDF's do).
PREVIEW_POLICY = PAGE_POLICY


def _attempt(change):
    """Run a service change: committed and its result returned with no error, or rolled back and
    (None, the refusal). Forbidden and NotFound end the request (403/404 page)."""
    try:
        result = change()
    except (Forbidden, NotFound) as error:
        db.session.rollback()
        abort(error.status, description=str(error.message))
    except Invalid as error:
        db.session.rollback()
        return None, error
    db.session.commit()
    return result, None


# --- the list and the numbering ------------------------------------------------------------

@bp.get("/settings/templates")
@manager_page
def list_page(failed: str | None = None, errors: dict | None = None, status: int = 200):
    templates = doc_templates.all_templates()
    return render_template(
        "documents/templates/list.html", groups=_grouped(templates), total=len(templates),
        headings=GROUP_HEADINGS, kinds=numbering.DOCUMENT_TYPES, languages=templating.LANGUAGES,
        people=crm.staff_names(), counters=numbering.counters(date.today()), failed=failed,
        errors=errors or {}), status


def _grouped(templates: list[DocumentTemplate]) -> list[tuple[str, list[DocumentTemplate]]]:
    """By what they apply to (deal, company, contact), each group by kind, then name."""
    kind_order = list(numbering.DOCUMENT_TYPES)
    return [(entity, sorted((t for t in templates if t.applies_to == entity),
                            key=lambda t: (kind_order.index(t.document_type), t.name.casefold())))
            for entity in doc_templates.APPLIES_TO if any(t.applies_to == entity for t in templates)]


@bp.post("/settings/templates/numbering")
@manager_page
def save_numbering():
    form = request.form
    document_type = form.get("document_type", "")
    error = _attempt(lambda: numbering.set_counter(current_membership(), document_type, form.get("pattern", ""),
                                                   form.get("next_value", ""), date.today()))[1]
    if error:
        return list_page(document_type, error.fields or {"": [str(error.message)]}, 422)
    flash(_("Numbering of “%(kind)s” saved.", kind=numbering.DOCUMENT_TYPES[document_type]), "success")
    return redirect(url_for(".list_page", _anchor="numbering"))


# --- the editor ----------------------------------------------------------------------------

@bp.get("/settings/templates/new")
@manager_page
def new_page():
    return _editor(None, _blank(request.args.get("applies_to")))


@bp.get("/settings/templates/<int:template_id>")
@manager_page
def edit_page(template_id: int):
    template = doc_templates.get_template(template_id)
    return _editor(template, {name: getattr(template, name) for name in TemplateContent.CONTENT})


def _blank(applies_to: str | None) -> dict:
    """A new template's fields: the service's defaults, in the viewer's language where we have it."""
    language = str(get_locale())
    template = doc_templates.content_from({
        "name": "-", "document_type": "contract",
        "applies_to": applies_to if applies_to in doc_templates.APPLIES_TO else Entity.DEAL,
        "language": language if language in templating.LANGUAGES else "en"})
    return {name: getattr(template, name) for name in TemplateContent.CONTENT} | {"name": ""}


def _editor(template: DocumentTemplate | None, values: dict, error: Invalid | None = None, status: int = 200):
    """The editor page for `template` (None: a new one) showing `values` (as saved, or as typed)."""
    actor = current_membership()
    problem = error if isinstance(error, templating.TemplateProblem) else None
    return render_template(
        "documents/templates/editor.html", template=template, values=values,
        errors=(error.fields or {"": [str(error.message)]}) if error else {},
        problem_part=problem.part if problem else None, problem_line=problem.line if problem else None,
        kinds=numbering.DOCUMENT_TYPES, applies_to=doc_templates.APPLIES_TO, languages=templating.LANGUAGES,
        page_sizes=templating.PAGE_SIZES, parts=templating.PART_LABELS,
        placeholders={entity: context.placeholders(entity) for entity in doc_templates.APPLIES_TO},
        records={entity: _recent_records(entity, actor) for entity in doc_templates.APPLIES_TO},
        earlier=list(reversed(template.versions))[1:EARLIER_VERSIONS + 1] if template else [],
        people=crm.staff_names()), status


def _recent_records(entity: str, actor) -> list[tuple[int, str]]:
    """(id, title) of the records of this kind the actor may see, most recently changed first."""
    page = crm.list_records(entity, actor, sort="-updated_at", per_page=RECORD_CHOICES)
    return [(record.id, crm.title_of(entity, record)) for record in page.items]


@bp.post("/settings/templates")
@manager_page
def create():
    template, error = _attempt(lambda: doc_templates.create(current_membership(), request.form.to_dict()))
    if error:
        return _editor(None, request.form, error, 422)
    flash(_("Saved as version %(n)d.", n=template.version), "success")
    return redirect(url_for(".edit_page", template_id=template.id))


@bp.post("/settings/templates/<int:template_id>")
@manager_page
def save(template_id: int):
    before = doc_templates.get_template(template_id).version
    template, error = _attempt(lambda: doc_templates.update(current_membership(), template_id,
                                                            request.form.to_dict()))
    if error:
        return _editor(doc_templates.get_template(template_id), request.form, error, 422)
    if template.version == before:
        flash(_("Nothing has changed: still version %(n)d.", n=template.version), "info")
    else:
        flash(_("Saved as version %(n)d.", n=template.version), "success")
    return redirect(url_for(".edit_page", template_id=template_id))


@bp.post("/settings/templates/<int:template_id>/delete")
@manager_page
def delete(template_id: int):
    name = doc_templates.get_template(template_id).name
    _attempt(lambda: doc_templates.delete(current_membership(), template_id))
    flash(_("Template “%(name)s” deleted. Documents already made from it keep their files.", name=name),
          "success")
    return redirect(url_for(".list_page"))


# --- the live preview ----------------------------------------------------------------------

@bp.post("/settings/templates/preview")
@manager_page
def preview():
    """The editor's fields (saved or not) filled for one record: the HTML page for the sandboxed
    frame, or JSON saying what is wrong (a template problem with its part and line)."""
    data = request.form.to_dict()
    data["name"] = data.get("name", "").strip() or _("Preview")  # an unnamed new template previews too
    try:
        template = doc_templates.content_from(data)
        html = doc_templates.preview(g.tenant, current_membership(), template, data.get("record_id"))
    except templating.TemplateProblem as problem:
        return _preview_refusal(problem, part=problem.part, line=problem.line)
    except (Invalid, NotFound, Forbidden) as error:
        return _preview_refusal(error, field=error.field)
    response = current_app.response_class(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def _preview_refusal(error, **where):
    answer = jsonify(error=error.code, message=str(error.message), **where)
    answer.status_code = error.status
    return answer
