"""The home page of each host, the shared template context and the error pages."""
from flask import Blueprint, current_app, g, render_template, request
from flask_babel import get_locale, gettext as _
from flask_login import current_user
from werkzeug import exceptions
from werkzeug.exceptions import HTTPException

from saas.auth.forms import ActionForm, SignupForm
from saas.auth.services import memberships_of
from saas.auth.session import current_membership, is_manager
from saas.crm.fields import format_phone
from saas.tenancy import public_url, tenant_url

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    if g.tenant is None:
        return render_template("web/landing.html", form=SignupForm())
    if not current_user.is_authenticated:
        from flask import redirect, url_for
        return redirect(url_for("auth.signin"))
    return render_template("web/dashboard.html")


def template_globals() -> dict:
    def companies():
        if g.get("tenant") is None or not current_user.is_authenticated:
            return []
        return memberships_of(current_user)

    return {
        "tenant": g.get("tenant"),
        "membership": current_membership,
        "is_manager": is_manager,
        "companies": companies,
        "signout_form": ActionForm,
        "public_url": public_url,
        "tenant_url": tenant_url,
        "get_locale": get_locale,
        "format_phone": format_phone,
        "billing_notice": _billing_notice,
    }


def _billing_notice():
    """The owner's billing banner (saas.account.views decides; imported late: it imports this module)."""
    from saas.account.views import billing_notice

    return billing_notice()


def register_error_pages(app) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        message = _error_message(error)
        if request.path.startswith("/api/"):
            from saas.api.views import json_error
            return json_error(error.code, _error_code(error), message)
        return render_template("web/error.html", error=error, message=message), error.code


def _error_code(error: HTTPException) -> str:
    return (error.name or "error").lower().replace(" ", "_")


def _error_message(error: HTTPException) -> str:
    """What a person reads: for a 403 the reason we gave abort(), else a message for the status.

    Other descriptions come from libraries (rate limits, CSRF) in English and for developers.
    """
    if error.code == 403 and error.description != type(error).description:
        if error.description == "suspended":
            return _("This company's account is suspended. Its owner can contact support to restore it.")
        return error.description
    by_status = {
        400: _("The form could not be read (it may have expired). Go back, reload the page and try again."),
        403: _("You do not have access to this page."),
        404: _("There is nothing at this address. Check the link, or the company's address."),
        405: _("This address does not accept that kind of request."),
        429: _("Too many attempts. Wait a while and try again."),
    }
    return by_status.get(error.code, _("Something went wrong on our side. Please try again."))


def service_errors_as_pages(blueprint) -> None:
    """In a blueprint's pages, a service's NotFound is the 404 page and its Forbidden the 403
    page with the service's reason (the API turns them into JSON instead)."""
    from saas.errors import Forbidden, NotFound

    @blueprint.errorhandler(NotFound)
    def not_found(error: NotFound):
        return current_app.handle_http_exception(exceptions.NotFound())

    @blueprint.errorhandler(Forbidden)
    def forbidden(error: Forbidden):
        return current_app.handle_http_exception(exceptions.Forbidden(description=str(error.message)))
