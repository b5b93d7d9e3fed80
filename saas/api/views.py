"""REST API v1: JSON in and out, bearer tokens bound to one tenant's host."""
from functools import wraps

from flask import Blueprint, g, jsonify, request
from flask_babel import gettext as _
from marshmallow import ValidationError

from saas.auth import services
from saas.errors import ServiceError
from saas.auth.limits import limit_password_attempts, limit_signups

from .schemas import (InvitationIn, InvitationOut, MemberOut, MeOut, SignupIn, SignupOut, TokenIn,
                      TokenOut)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def json_error(status: int, code: str, message, fields: dict | None = None):
    body = {"error": code, "message": str(message)}
    if fields:
        body["fields"] = fields
    return jsonify(body), status


def _service_error(error: ServiceError):
    return json_error(error.status, error.code, error.message, error.fields)


def _validation_error(error: ValidationError):
    return json_error(422, "invalid", _("Some fields are missing or invalid."), error.messages)


def register_error_handlers(blueprint: Blueprint) -> None:
    """Service and validation errors become JSON errors (every API blueprint answers alike)."""
    blueprint.register_error_handler(ServiceError, _service_error)
    blueprint.register_error_handler(ValidationError, _validation_error)


register_error_handlers(bp)


def _body(schema):
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not _is_text(data):
        return None
    return schema.load(data)


def _is_text(value) -> bool:
    """JSON may carry lone surrogates (\\ud800) that no database can store: refuse them up front."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_is_text(k) and _is_text(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_text(v) for v in value)
    return True


def json_body(schema_class):
    """Parse the JSON body with `schema_class` (400 if it is not a JSON object, 422 if invalid)."""
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            data = _body(schema_class())
            if data is None:
                return json_error(400, "bad_request",
                                  _("Send a JSON object of valid UTF-8 text with Content-Type: application/json."))
            return view(data, *args, **kwargs)
        return wrapper
    return decorator


def tenant_host(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if g.tenant is None:
            return json_error(404, "not_found", _("Use your company's address, e.g. https://acme.<site>/api/v1/…"))
        return view(*args, **kwargs)
    return wrapper


def token_required(view):
    """Bearer token only: the API never accepts the web session cookie (no CSRF exposure).

    A token is bound to one company: on the public site, as on another company's host, it is 401.
    """
    @wraps(view)
    def wrapper(*args, **kwargs):
        if g.tenant is None:
            return json_error(401, "unauthorized", _("Use your company's address, e.g. https://acme.<site>/api/v1/…"))
        scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return json_error(401, "unauthorized", _("Send an API token: Authorization: Bearer <token>."))
        g.api_user = services.user_for_api_token(token.strip(), g.tenant)
        # Its own name on `g`: the web's user loader sets g.membership from a session cookie
        # whenever anything (e.g. the locale selector) touches current_user.
        g.api_membership = services.active_membership(g.api_user.id, g.tenant.id)
        return view(*args, **kwargs)
    return wrapper


@bp.post("/signup")
@limit_signups
@limit_password_attempts()  # an email that has an account must come with its password
@json_body(SignupIn)
def signup(data):
    """Create a company and its owner.
    ---
    post:
      summary: Sign up a new company (on the main host)
      requestBody:
        content:
          application/json:
            schema: SignupIn
      responses:
        201: {description: "The company, and an API token for its owner", content: {application/json: {schema: SignupOut}}}
        409: {description: "The address is taken, or the email has an account with another password", content: {application/json: {schema: ErrorOut}}}
        422: {description: "Missing or invalid fields", content: {application/json: {schema: ErrorOut}}}
    """
    if g.tenant is not None:
        return json_error(404, "not_found", _("Sign up on the main address, not a company's."))
    tenant, user = services.sign_up(**data)
    token = services.issue_api_token(user, tenant)
    return SignupOut().dump({"tenant": tenant, "token": token}), 201


@bp.post("/tokens")
@tenant_host
@limit_password_attempts()
@json_body(TokenIn)
def create_token(data):
    """Exchange email and password for an API token of this company.
    ---
    post:
      summary: Get an API token (on the company's host)
      requestBody:
        content:
          application/json:
            schema: TokenIn
      responses:
        201: {description: "A new API token", content: {application/json: {schema: TokenOut}}}
        401: {description: "Wrong email or password for this company", content: {application/json: {schema: ErrorOut}}}
    """
    user = services.authenticate(g.tenant, data["email"], data["password"])
    return TokenOut().dump({"token": services.issue_api_token(user, g.tenant)}), 201


@bp.get("/me")
@token_required
def me():
    """The token's person, company and role.
    ---
    get:
      security: [{bearer: []}]
      responses:
        200: {description: "The token's person, company and role", content: {application/json: {schema: MeOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
    """
    return MeOut().dump({"user": g.api_user, "tenant": g.tenant, "role": g.api_membership.role})


@bp.get("/people")
@token_required
def people():
    """Everyone in the company.
    ---
    get:
      security: [{bearer: []}]
      responses:
        200: {description: "Everyone in the company", content: {application/json: {schema: {type: array, items: MemberOut}}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
    """
    return jsonify(MemberOut(many=True).dump(services.people(g.tenant)))


@bp.post("/invitations")
@token_required
@json_body(InvitationIn)
def invite(data):
    """Invite a person by email (owner and administrators).
    ---
    post:
      security: [{bearer: []}]
      requestBody:
        content:
          application/json:
            schema: InvitationIn
      responses:
        201: {description: "The invitation (the link goes out by email)", content: {application/json: {schema: InvitationOut}}}
        403: {description: "Only the owner and administrators invite", content: {application/json: {schema: ErrorOut}}}
        409: {description: "Already a member", content: {application/json: {schema: ErrorOut}}}
    """
    invitation = services.invite(g.tenant, g.api_membership, data["email"], data["role"])
    return InvitationOut().dump(invitation), 201


@bp.get("/openapi.json")
def openapi():
    from .openapi import spec

    return jsonify(spec())
