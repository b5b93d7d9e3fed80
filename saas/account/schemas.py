"""Marshmallow schemas of the billing API."""
from marshmallow import Schema, fields, validate

from billing.plans import KEYS as PLAN_KEYS


class BillingOut(Schema):
    plan = fields.String(metadata={"description": "The plan the company is on", "enum": list(PLAN_KEYS)})
    limits_plan = fields.String(metadata={"description": "The plan whose limits apply now: free while a payment "
                                                         "is overdue past the grace period", "enum": list(PLAN_KEYS)})
    seats = fields.Integer(metadata={"description": "Active people: the seats in use"})
    seats_paid = fields.Integer(metadata={"description": "Seats on the subscription"})
    limit_bytes = fields.Integer(allow_none=True, metadata={"description": "Storage limit now; null when unlimited"})
    used_bytes = fields.Integer()
    over_limit_bytes = fields.Integer(metadata={"description": "Bytes to free before uploads are accepted again"})
    status = fields.String(metadata={"enum": ["active", "trialing", "past_due"]})
    grace_until = fields.DateTime(allow_none=True, metadata={"description": "While past due: when Free's limits start"})
    period_end = fields.DateTime(allow_none=True, metadata={"description": "End of the paid period (Stripe)"})
    cancel_at_period_end = fields.Boolean(metadata={"description": "The plan returns to Free at period_end"})
    next_invoice = fields.Dict(allow_none=True, metadata={"description": "{date, amount, currency}, or null"})
    provider = fields.String(metadata={"enum": ["offline", "stripe"]})


class PlanIn(Schema):
    plan = fields.String(required=True, validate=validate.OneOf(PLAN_KEYS))


class PlanChangeOut(Schema):
    applied = fields.Boolean(metadata={"description": "True: the plan changed now (offline provider)"})
    url = fields.String(allow_none=True, metadata={"description": "With Stripe: the Checkout or Portal page to visit"})
    kind = fields.String(allow_none=True, metadata={"enum": ["checkout", "portal"]})
    billing = fields.Nested(BillingOut, allow_none=True)


COMPONENTS = (BillingOut, PlanIn, PlanChangeOut)


def billing_data(view) -> dict:
    """The API's view of an account.services.Overview (to dump with BillingOut)."""
    row = view.subscription
    invoice = view.next_invoice
    return {
        "plan": view.plan.key, "limits_plan": view.standing.limits.key, "seats": view.seats_in_use,
        "seats_paid": view.seats_paid, "limit_bytes": view.limit, "used_bytes": view.used,
        "over_limit_bytes": view.over_by, "status": view.standing.status, "grace_until": view.standing.grace_until,
        "period_end": row.current_period_end, "cancel_at_period_end": row.cancel_at_period_end,
        "next_invoice": ({"date": invoice[0].isoformat(), "amount": str(invoice[1]), "currency": row.currency}
                         if invoice else None),
        "provider": row.provider,
    }
