"""The OpenAPI 3 description of /api/v1, built from the views' docstrings and schemas."""
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.yaml_utils import load_yaml_from_docstring
from flask import current_app

from . import schemas


def spec() -> dict:
    api = APISpec(
        title="DealDocs API",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Call it on your company's host (https://<slug>.<site>/api/v1). "
                             "Errors are JSON: {\"error\": code, \"message\": text}."},
    )
    api.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name in ("SignupIn", "SignupOut", "TokenIn", "TokenOut", "MeOut", "MemberOut", "InvitationIn",
                 "InvitationOut", "ErrorOut"):
        api.components.schema(name, schema=getattr(schemas, name))
    for rule in current_app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint == "api.openapi":
            continue
        view = current_app.view_functions[rule.endpoint]
        operations = load_yaml_from_docstring(view.__doc__ or "") or {}
        path = rule.rule.replace("<", "{").replace(">", "}")
        api.path(path=path, operations=operations)
    return api.to_dict()
