"""Our company's requisites and images (logo, stamp, signature) for generated documents:
the settings page where the owner and administrators keep them, and the images it previews."""
from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from saas.auth.session import current_membership
from saas.crm.admin_views import manager_page
from saas.errors import Invalid
from tenants.db import db

from . import requisites as company

bp = Blueprint("company_settings", __name__)


def _page(errors: dict | None = None, values: dict | None = None, status: int = 200):
    return render_template(
        "settings/company.html", fields={field.key: field for field in company.FIELDS},
        values=values or company.saved_requisites(), image_labels=company.IMAGE_LABELS,
        stored_images=company.image_names(), max_mb=company.MAX_IMAGE_BYTES // 2**20, errors=errors or {}), status


def _image_name(name: str) -> str:
    if name not in company.IMAGE_NAMES:
        abort(404)
    return name


@bp.get("/settings/company")
@manager_page
def company_page():
    return _page()


@bp.post("/settings/company")
@manager_page
def save_requisites():
    posted = {key: request.form.get(key, "") for key in company.KEYS}
    try:
        company.save_requisites(current_membership(), posted)
    except Invalid as error:
        db.session.rollback()
        return _page(error.fields or {"": [str(error.message)]}, posted, 422)
    db.session.commit()
    flash(_("Requisites saved. New documents will use them."), "success")
    return redirect(url_for(".company_page"))


@bp.post("/settings/company/images/<name>")
@manager_page
def upload_image(name: str):
    name = _image_name(name)
    upload = request.files.get(name)
    # One byte past the limit is enough to say the file is too big.
    data = upload.stream.read(company.MAX_IMAGE_BYTES + 1) if upload is not None else b""
    try:
        company.save_image(current_membership(), name, data)
    except Invalid as error:
        db.session.rollback()
        return _page({name: [str(error.message)]}, status=422)
    db.session.commit()
    flash(_("%(image)s uploaded.", image=company.IMAGE_LABELS[name]), "success")
    return redirect(url_for(".company_page", _anchor="images"))


@bp.post("/settings/company/images/<name>/delete")
@manager_page
def delete_image(name: str):
    company.delete_image(current_membership(), _image_name(name))
    db.session.commit()
    flash(_("%(image)s removed.", image=company.IMAGE_LABELS[name]), "success")
    return redirect(url_for(".company_page", _anchor="images"))


@bp.get("/settings/company/images/<name>")
@manager_page
def show_image(name: str):
    found = company.image(_image_name(name))
    if found is None:
        abort(404)
    response = make_response(found.data)
    response.headers.update({"Content-Type": found.content_type, "Cache-Control": "no-store",
                             "X-Content-Type-Options": "nosniff"})
    return response
