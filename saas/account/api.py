"""REST API v1 for the company's plan: read it (owner and administrators), change it (owner)."""
from flask import Blueprint, g

from saas.api.views import json_body, register_error_handlers, token_required

from . import services
from .schemas import BillingOut, PlanChangeOut, PlanIn, billing_data

bp = Blueprint("account_api", __name__, url_prefix="/api/v1")
register_error_handlers(bp)


@bp.get("/billing")
@token_required
def billing():
    """The company's plan, seats, storage and payment status.
    ---
    get:
      tags: [Billing]
      summary: The plan, seats, storage against the limit, status and period end (owner and administrators)
      security: [{bearer: []}]
      responses:
        200: {description: "The billing standing", content: {application/json: {schema: BillingOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        403: {description: "Only the owner and administrators", content: {application/json: {schema: ErrorOut}}}
    """
    return BillingOut().dump(billing_data(services.overview(g.tenant, g.api_membership)))


@bp.post("/billing/plan")
@token_required
@json_body(PlanIn)
def change_plan(data):
    """Switch plans.
    ---
    post:
      tags: [Billing]
      summary: Switch plans (owner). Offline the plan changes at once; with Stripe the answer is the Checkout or Portal page to visit
      security: [{bearer: []}]
      requestBody: {required: true, content: {application/json: {schema: PlanIn}}}
      responses:
        200: {description: "Switched, or where to continue", content: {application/json: {schema: PlanChangeOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        403: {description: "Only the owner", content: {application/json: {schema: ErrorOut}}}
        409: {description: "Already on this plan", content: {application/json: {schema: ErrorOut}}}
        422: {description: "Unknown plan", content: {application/json: {schema: ErrorOut}}}
        502: {description: "The payment service did not answer", content: {application/json: {schema: ErrorOut}}}
    """
    change = services.change_plan(g.tenant, g.api_membership, data["plan"], email=g.api_user.email)
    body = {"applied": change.applied, "url": change.url, "kind": None if change.applied else change.route,
            "billing": billing_data(services.overview(g.tenant, g.api_membership)) if change.applied else None}
    return PlanChangeOut().dump(body)
