"""The OpenAPI 3 description of /api/v1, built from the views and the marshmallow schemas.

A view describes its operations in its docstring (YAML after `---`) or, when it is made for
several record types, in its `openapi` attribute.
"""
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.yaml_utils import load_yaml_from_docstring
from flask import current_app

from saas.account import schemas as account_schemas
from saas.crm import schemas as crm_schemas
from saas.documents import schemas as document_schemas

from . import schemas

BLUEPRINTS = ("api", "crm_api", "documents_api", "account_api")
DEFAULT_TAG = "Account"
TAGS = {  # in the order the docs page shows them
    DEFAULT_TAG: "Sign-up, tokens, the token's person and their company's people",
    "Companies": "Companies (organisations) in the CRM", "Contacts": "People, linked to companies",
    "Deals": "Deals with their line items, moved along a pipeline's stages",
    "Leads": "Leads, their stage bar and their conversion", "Pipelines": "Deal pipelines and the lead stage bar",
    "Custom fields": "Fields the company added to leads, contacts, companies and deals",
    "Documents": "Files on deal, company and contact cards: their cards, versions, bytes and the storage quota",
    "Templates": "Document templates (HTML with placeholders), their versions and previews; documents made from them, "
                 "one or many at once",
    "Billing": "The company's plan, seats, storage limit and payment status; switching plans",
}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
NOT_DESCRIBED = {"api.openapi", "crm_api.docs"}
ACCOUNT_SCHEMAS = ("SignupIn", "SignupOut", "TokenIn", "TokenOut", "MeOut", "MemberOut", "InvitationIn",
                   "InvitationOut", "ErrorOut")
_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")  # <int:deal_id> → {deal_id}

DESCRIPTION = """Call it on your company's host (https://<slug>.<site>/api/v1) with a bearer token from
POST /api/v1/tokens. Errors are JSON: {"error": code, "message": text}; a 422 names each failing
field under "fields" (per target for a lead conversion). A record you may not see answers 404,
like one that does not exist. A person reads this description at /api/v1/docs."""


def spec() -> dict:
    api = APISpec(
        title="DealDocs API",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": DESCRIPTION},
    )
    api.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for tag, description in TAGS.items():
        api.tag({"name": tag, "description": description})
    for name in ACCOUNT_SCHEMAS:
        api.components.schema(name, schema=getattr(schemas, name))
    for schema in (*crm_schemas.COMPONENTS, *document_schemas.COMPONENTS, *account_schemas.COMPONENTS):
        api.components.schema(schema.__name__, schema=schema)
    for rule in sorted(current_app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint.partition(".")[0] not in BLUEPRINTS or rule.endpoint in NOT_DESCRIBED:
            continue
        view = current_app.view_functions[rule.endpoint]
        operations = getattr(view, "openapi", None) or load_yaml_from_docstring(view.__doc__ or "") or {}
        for operation in operations.values():
            operation.setdefault("tags", [DEFAULT_TAG])
        api.path(path=_ARGUMENT.sub(r"{\1}", rule.rule), operations=operations, parameters=_path_parameters(rule))
    return api.to_dict()


def _path_parameters(rule) -> list[dict]:
    """Every <…> of a rule is a required path parameter: an integer id, unless its converter says otherwise."""
    from werkzeug.routing import IntegerConverter

    return [{"in": "path", "name": name, "required": True,
             "schema": {"type": "integer" if isinstance(rule._converters.get(name), IntegerConverter) else "string"}}
            for name in sorted(rule.arguments)]


def operations_by_tag(document: dict) -> list[tuple[str, str, list[dict]]]:
    """(tag, its description, its operations with their path parameters) in the tags' order: the docs page."""
    groups = {}
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method not in item:
                continue
            operation = item[method]
            groups.setdefault(operation["tags"][0], []).append({
                **operation, "method": method, "path": path,
                "anchor": re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-"),
                "parameters": [*item.get("parameters", []), *operation.get("parameters", [])]})
    described = {tag["name"]: tag.get("description", "") for tag in document.get("tags", [])}
    order = list(described)
    return [(tag, described.get(tag, ""), operations) for tag, operations in
            sorted(groups.items(), key=lambda group: order.index(group[0]) if group[0] in order else len(order))]
