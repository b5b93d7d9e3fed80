"""Flask extensions, created once and bound in create_app."""
from flask import current_app
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from tenants.db import db  # noqa: F401  (re-exported: the one SQLAlchemy handle)

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def signup_limit() -> str:
    """Sign-ups per client address (web and API), from the config so tests and operators set it."""
    return current_app.config["SIGNUP_RATE_LIMIT"]


def signin_limit() -> str:
    """Password attempts per client address (web sign-in and API tokens)."""
    return current_app.config["SIGNIN_RATE_LIMIT"]
