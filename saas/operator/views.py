"""The operator pages, on the public host only: sign-in, the companies table, suspend and resume.

The operator's sign-in is kept apart from company sign-ins: its own keys in the public host's
session cookie (company cookies are per company host and never carry them), registered
server-side under services.PLATFORM, and the platform_admin flag is read again on every request.
"""
from functools import wraps

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from billing.plans import catalogue
from saas.auth.forms import ActionForm, SigninForm
from saas.auth.limits import limit_password_attempts
from saas.auth.session import public_site_only
from saas.auth.views import show_error
from saas.errors import ServiceError
from saas.web.views import service_errors_as_pages

from . import services

bp = Blueprint("operator", __name__, url_prefix="/operator")
service_errors_as_pages(bp)

OPERATOR_ID, OPERATOR_SID = "operator_id", "operator_sid"
FILTERS = ("plan", "status", "q")


def current_operator():
    if "operator" not in g:
        g.operator = services.operator_for(session.get(OPERATOR_ID), session.get(OPERATOR_SID))
        if g.operator is None:
            session.pop(OPERATOR_ID, None)
            session.pop(OPERATOR_SID, None)
    return g.operator


def operator_required(view):
    """The page exists on the public host only (404 on a company's) and needs a platform admin."""
    @wraps(view)
    @public_site_only
    def wrapper(*args, **kwargs):
        if current_operator() is None:
            return redirect(url_for("operator.signin"))
        return view(*args, **kwargs)
    return wrapper


def _start_operator_session(user) -> None:
    services.close_session(session.get(OPERATOR_SID))  # whoever was signed in here before
    language = session.get("lang")
    session.clear()  # a fresh session (and CSRF token) on sign-in
    if language:
        session["lang"] = language
    session[OPERATOR_ID] = user.id
    session[OPERATOR_SID] = services.open_session(user)


@bp.route("/signin", methods=["GET", "POST"])
@public_site_only
@limit_password_attempts()
def signin():
    if request.method == "GET" and current_operator() is not None:
        return redirect(url_for("operator.tenants"))
    form = SigninForm()
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data)
        except ServiceError as error:
            show_error(form, error)
        else:
            _start_operator_session(user)
            return redirect(url_for("operator.tenants"))
    return render_template("operator/signin.html", form=form), 401 if request.method == "POST" else 200


@bp.post("/signout")
@public_site_only
def signout():
    if ActionForm().validate_on_submit():
        services.close_session(session.pop(OPERATOR_SID, None))
        session.pop(OPERATOR_ID, None)
    return redirect(url_for("operator.signin"))


def _filters() -> dict:
    """The table's filters from the query string; each unknown value is dropped with its own message."""
    filters = {name: request.args.get(name, "").strip() for name in FILTERS}
    for problem in services.filter_problems(filters["plan"], filters["status"]):
        flash(str(problem.message), "error")
        filters[problem.field] = ""
    return {name: value for name, value in filters.items() if value}


@bp.get("")
@operator_required
def tenants():
    filters = _filters()
    table = services.tenant_table(plan=filters.get("plan"), status=filters.get("status"),
                                  search=filters.get("q"), page=request.args.get("page", 1, type=int))
    return render_template("operator/tenants.html", table=table, filters=filters, plans=catalogue(),
                           statuses=services.STATUSES, action_form=ActionForm(), operator=current_operator())


@bp.post("/tenants/<int:tenant_id>/suspend")
@operator_required
def suspend(tenant_id: int):
    tenant = _change_status(tenant_id, "suspended")
    flash(_("%(name)s is suspended: its address answers “suspended” until you resume it. Nothing was deleted.",
            name=tenant.name), "success")
    return _back_to_table()


@bp.post("/tenants/<int:tenant_id>/resume")
@operator_required
def resume(tenant_id: int):
    tenant = _change_status(tenant_id, "active")
    flash(_("%(name)s is active again.", name=tenant.name), "success")
    return _back_to_table()


def _change_status(tenant_id: int, status: str):
    if not ActionForm().validate_on_submit():  # (CSRFProtect refuses a missing token before this)
        abort(400)
    return services.set_status(tenant_id, status)


def _back_to_table():
    """To the table as it was: the buttons post to a URL that carries its filters and page."""
    kept = {name: value for name, value in request.args.items() if name in FILTERS + ("page",)}
    return redirect(url_for("operator.tenants", **kept))
