"""The plan page (owner and administrators), switching plans, the Stripe Portal, the owner's
billing banner, and Stripe's webhook."""
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import format_date, gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from billing import stripe_provider, webhooks
from billing.models import Status
from billing.plans import catalogue
from billing.services import standing
from saas.auth.forms import ActionForm
from saas.auth.models import Role
from saas.auth.session import current_membership, tenant_required
from saas.documents.services import human_size
from saas.errors import ServiceError
from saas.jobs import enqueue_after_commit
from saas.web.views import service_errors_as_pages
from tenants.db import db

from . import services, tasks

bp = Blueprint("account", __name__)
service_errors_as_pages(bp)  # 403 and 404 pages with the service's reason


@bp.errorhandler(ServiceError)
def refused(error: ServiceError):
    """Any other refusal (already on that plan, the payment service away…): nothing has changed,
    and the plan page says why."""
    db.session.rollback()
    flash(str(error.message), "error")
    return redirect(url_for(".plan"))

STATUS_LABELS = {Status.ACTIVE: _l("Active"), Status.TRIALING: _l("Trial"), Status.PAST_DUE: _l("Past due")}
CHECKOUT_NOTES = {
    "done": _l("Thank you. The plan changes as soon as Stripe confirms the payment, usually within seconds."),
    "cancelled": _l("Checkout was cancelled: nothing has changed and nothing was charged."),
}


def signed_in_page(view):
    """On a company's host, signed in; who may do what is the services' decision (403 with its reason)."""
    return tenant_required(login_required(view))


def is_owner() -> bool:
    membership = current_membership()
    return membership is not None and membership.role == Role.OWNER


def _plan_page_context(view: services.Overview) -> dict:
    return {"view": view, "status_labels": STATUS_LABELS, "owner": is_owner(),
            "trial_days": stripe_provider.trial_days_for(view.subscription) if view.stripe else 0,
            "routes": services.Route, "route_to": lambda plan: services.route(view.subscription, plan)}


def _known_plan(key: str):
    if key not in catalogue():
        abort(404)
    return catalogue()[key]


# --- the plan page -------------------------------------------------------------------------

@bp.get("/settings/plan")
@signed_in_page
def plan():
    view = services.overview(g.tenant, current_membership())
    note = CHECKOUT_NOTES.get(request.args.get("checkout", ""))
    if note:  # back from Stripe Checkout: say what happens next, then show the page without the query
        flash(str(note), "info")
        return redirect(url_for(".plan"))
    return render_template("account/plan.html", **_plan_page_context(view))


@bp.get("/settings/plan/portal")
@signed_in_page
def portal():
    """Stripe's Customer Portal: card, invoices, cancellation (the owner only)."""
    return redirect(services.portal(g.tenant, current_membership()), 303)


@bp.get("/settings/plan/<key>")
@signed_in_page
def confirm(key: str):
    """What switching to `key` changes, spelled out, with the button that does it."""
    target = _known_plan(key)
    view = services.overview(g.tenant, current_membership())
    if services.route(view.subscription, target) in (services.Route.CURRENT, services.Route.ENDING):
        flash(_("The company is already on the %(plan)s plan.", plan=target.name), "info")
        return redirect(url_for(".plan"))
    return render_template("account/confirm.html", option=view.option(target.key), form=ActionForm(),
                           **_plan_page_context(view))


@bp.post("/settings/plan/<key>")
@signed_in_page
def switch(key: str):
    target = _known_plan(key)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    change = services.change_plan(g.tenant, current_membership(), target.key, email=current_user.email)
    if not change.applied:
        return redirect(change.url, 303)  # Stripe Checkout or the Portal; webhooks apply the result
    flash(switched_message(change.route, services.overview(g.tenant, current_membership())), "success")
    return redirect(url_for(".plan"))


def switched_message(route: str, view: services.Overview) -> str:
    """What a switch that has just been applied changed, in figures."""
    ends = view.subscription.current_period_end
    if route == services.Route.CANCEL:
        return _("%(plan)s stays until %(date)s; then the company is on Free.", plan=view.plan.name,
                 date=format_date(ends, "long") if ends else "—")
    if route == services.Route.KEEP:
        return _("%(plan)s continues: it no longer ends with the paid period.", plan=view.plan.name)
    option = view.option(view.plan.key)
    if option.limit is None:
        said = _("The company is on the %(plan)s plan now: storage is unlimited.", plan=option.plan.name)
    else:
        said = _("The company is on the %(plan)s plan now: the storage limit is %(limit)s.", plan=option.plan.name,
                 limit=human_size(option.limit))
    if option.over_by:
        said += " " + _("It stores %(excess)s more than that: nothing is deleted, but new uploads and generated "
                        "documents are refused until %(excess)s is freed.", excess=human_size(option.over_by))
    return said


# --- the owner's billing banner (base.html, every page) ------------------------------------------

@dataclass(frozen=True)
class BillingNotice:
    kind: str  # "past_due" (within the grace period), "limited" (after it) or "ending" (cancelled)
    plan: str  # the plan the company is on
    date: str  # grace end, past-due start or the period's end, formatted for the reader
    portal: bool  # the card can be updated in Stripe's Portal (else the link goes to the plan page)


def billing_notice() -> BillingNotice | None:
    """For the owner: a failed payment (and its deadline), Free's limits after it, or a plan that
    ends at the period's end. One subscription read per request."""
    if "billing_notice" in g:
        return g.billing_notice
    g.billing_notice = None
    membership = current_membership()
    if g.get("tenant") is None or membership is None or membership.role != Role.OWNER:
        return None
    try:
        now = standing(g.tenant.id)
    except SQLAlchemyError:  # an error page after a failed transaction: no banner, not a second error
        return None
    g.billing_notice = _notice_for(now)
    return g.billing_notice


def _notice_for(now) -> BillingNotice | None:
    row = now.subscription
    portal = bool(row.stripe_customer_id)
    if now.status == Status.PAST_DUE and now.grace_until is not None:
        if now.limited:
            return BillingNotice("limited", str(now.plan.name), _date(row.past_due_since), portal)
        return BillingNotice("past_due", str(now.plan.name), _date(now.grace_until), portal)
    if row.cancel_at_period_end and now.plan.paid and row.current_period_end is not None:
        return BillingNotice("ending", str(now.plan.name), _date(row.current_period_end), portal)
    return None


def _date(moment: datetime) -> str:
    return format_date(moment, "long")


# --- Stripe's webhook --------------------------------------------------------------------------

@bp.post("/billing/stripe/webhook")
def stripe_webhook():
    """Stripe's events: verified, stored once by id, processed by a job; answered at once."""
    if not stripe_provider.enabled():
        abort(404)
    try:
        request.max_content_length = 1024 * 1024  # Stripe's events are small; read no more before verifying
        received = webhooks.receive(request.get_data(cache=False), request.headers.get("Stripe-Signature", ""))
    except webhooks.BadSignature as error:
        current_app.logger.warning("refused a Stripe webhook: %s", error)
        return jsonify(error="bad_signature", message="The Stripe-Signature header does not verify."), 400
    if received.event_id is not None:
        enqueue_after_commit(tasks.process_stripe_event, received.event_id, retries=5)
    db.session.commit()
    return jsonify(received=True, duplicate=received.repeat)
