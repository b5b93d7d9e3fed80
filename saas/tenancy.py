"""Which tenant a request is for: resolved from the host, once, and put on `g`.

`<slug>.<SERVER_NAME>` is a tenant host; `<SERVER_NAME>` itself is the public site (sign-up).
Nothing else in the code parses hosts.
"""
from flask import abort, current_app, g, request
from tenants.db import db
from tenants.models import TenantRef
from tenants.registry import lookup_tenant
from tenants.scope import enter_tenant, leave_tenant


def slug_from_host(host: str, server_name: str) -> str | None:
    """The tenant slug in `host`, "" for the public site itself, None for a foreign host."""
    host, server_name = host.lower(), server_name.lower()
    if host == server_name:
        return ""
    suffix = "." + server_name
    if host.endswith(suffix):
        slug = host[: -len(suffix)]
        return slug if "." not in slug else None
    return None


def find_tenant(slug: str) -> TenantRef | None:
    return lookup_tenant(slug=slug)


def tenant_url(slug: str, path: str = "/") -> str:
    scheme = current_app.config["PREFERRED_URL_SCHEME"]
    return f"{scheme}://{slug}.{current_app.config['SERVER_NAME']}{path}"


def public_url(path: str = "/") -> str:
    return f"{current_app.config['PREFERRED_URL_SCHEME']}://{current_app.config['SERVER_NAME']}{path}"


def resolve_tenant() -> None:
    """before_request: set g.tenant (None on the public site) and scope the database to it."""
    g.tenant = None
    if request.endpoint in current_app.config.get("HOST_AGNOSTIC_ENDPOINTS", ()):
        return
    slug = slug_from_host(request.host, current_app.config["SERVER_NAME"])
    if slug is None:
        abort(404)
    if slug:
        tenant = find_tenant(slug)
        if tenant is None:
            abort(404)
        if not tenant.is_active:
            abort(403, description="suspended")
        g.tenant = tenant
    g._tenant_token = enter_tenant(g.tenant)


def release_tenant(exc=None) -> None:
    """teardown_request: the session is gone (Flask-SQLAlchemy removes it); drop the scope."""
    token = g.pop("_tenant_token", None)
    if token is not None:
        db.session.remove()
        leave_tenant(token)
