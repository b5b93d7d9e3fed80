"""DealDocs: the Flask application factory."""
import os

from flask import Flask, request, session
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from .config import load_config


def create_app(overrides: dict | None = None, instance_path: str | None = None) -> Flask:
    instance_path = os.path.abspath(instance_path or os.environ.get("DEALDOCS_INSTANCE", "instance"))
    app = Flask(__name__, instance_path=instance_path)
    app.config.update(load_config(instance_path))
    app.config.update(overrides or {})
    # Stripe calls one address for every company: the webhook answers on any host.
    app.config.setdefault("HOST_AGNOSTIC_ENDPOINTS", ("health.healthz", "static", "account.stripe_webhook"))
    if app.config.get("PROXY_FIX", 0) > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_FIX"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        raise RuntimeError("DATABASE_URL is not set (`dealdocs serve` starts an embedded PostgreSQL for you)")

    from billing.stripe_provider import check_config

    check_config(app.config)
    from . import models  # noqa: F401  (every table registered before anything builds schemas)
    from .extensions import babel, csrf, db, limiter, login_manager

    db.init_app(app)
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)

    from .tenancy import release_tenant, resolve_tenant

    app.before_request(resolve_tenant)
    app.teardown_request(release_tenant)

    app.url_map.converters["int"] = RecordIdConverter
    from .account.api import bp as account_api_bp
    from .account.views import bp as account_bp, stripe_webhook
    from .api.views import bp as api_bp
    from .auth.views import bp as auth_bp
    from .health import bp as health_bp
    from .web.views import bp as web_bp, register_error_pages
    from .crm.admin_views import bp as crm_admin_bp
    from .crm.api import bp as crm_api_bp
    from .crm.import_views import bp as crm_import_bp
    from .crm.flow_views import bp as crm_flow_bp
    from .crm.views import bp as crm_bp
    from .documents.api import bp as documents_api_bp
    from .documents.views import bp as documents_bp
    from .documents.template_views import bp as templates_bp
    from .settings.views import bp as company_settings_bp
    from .operator.views import bp as operator_bp

    for blueprint in (health_bp, web_bp, auth_bp, api_bp, crm_bp, crm_flow_bp, crm_admin_bp, crm_import_bp, crm_api_bp,
                      documents_bp, documents_api_bp, templates_bp, company_settings_bp, account_bp, account_api_bp,
                      operator_bp):
        app.register_blueprint(blueprint)
    for blueprint in (api_bp, crm_api_bp, documents_api_bp, account_api_bp):
        csrf.exempt(blueprint)  # the API authenticates by bearer token only, never by cookie
    csrf.exempt(stripe_webhook)  # signed by Stripe instead
    register_error_pages(app)
    from .web.views import template_globals

    app.context_processor(template_globals)
    return app


def select_locale() -> str | None:
    """The signed-in person's language, else the one picked on the page, else the browser's."""
    from flask import current_app, has_request_context

    if not has_request_context():
        return None  # CLI and jobs: the default, unless they force one
    languages = current_app.config["LANGUAGES"]
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    if session.get("lang") in languages:
        return session["lang"]
    return request.accept_languages.best_match(languages)


class RecordIdConverter(IntegerConverter):
    """<int:…> in every URL: ids are PostgreSQL bigints, so a larger number is a 404, not a 500."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2 ** 63 - 1)
        super().__init__(map, *args, **kwargs)
