"""The plan page (owner and administrators), switching plans, the Stripe Portal, and Stripe's webhook."""
from flask import Blueprint, abort, current_app, g, jsonify, render_template, request

from billing import stripe_provider, webhooks
from saas.auth.session import current_membership, tenant_required
from saas.jobs import enqueue_after_commit
from saas.web.views import service_errors_as_pages
from tenants.db import db

from . import services, tasks

bp = Blueprint("account", __name__)
service_errors_as_pages(bp)


@bp.get("/settings/plan")
@tenant_required
def plan():
    view = services.overview(g.tenant, current_membership())
    return render_template("account/plan.html", view=view)


@bp.post("/billing/stripe/webhook")
def stripe_webhook():
    """Stripe's events: verified, stored once by id, processed by a job; answered at once."""
    if not stripe_provider.enabled():
        abort(404)
    try:
        event_id = webhooks.receive(request.get_data(cache=False), request.headers.get("Stripe-Signature", ""))
    except webhooks.BadSignature as error:
        current_app.logger.warning("refused a Stripe webhook: %s", error)
        return jsonify(error="bad_signature", message="The Stripe-Signature header does not verify."), 400
    if event_id is not None:
        enqueue_after_commit(tasks.process_stripe_event, event_id, retries=5)
    db.session.commit()
    return jsonify(received=True, duplicate=event_id is None)
