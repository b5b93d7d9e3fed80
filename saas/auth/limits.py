"""Rate limits on the routes that check passwords or create companies.

Every route that checks a password draws on the same two budgets, whichever route it is:
one per client address and one per account (the submitted email), so neither switching
routes nor switching addresses buys more guesses.
"""
import hashlib

from flask import current_app, g, request

from saas.errors import ServiceError
from saas.extensions import limiter

from .services import normalize_email

PASSWORD_SCOPE = "password-attempts"  # per client address
ACCOUNT_SCOPE = "password-attempts-account"  # per account (the email), from any address
SIGNUP_SCOPE = "signups"  # companies created per client address, web and API together


def signup_limit() -> str:
    """Sign-ups per client address (web and API), from the config so tests and operators set it."""
    return current_app.config["SIGNUP_RATE_LIMIT"]


def signin_limit() -> str:
    """Password attempts per client address, shared by every route that checks a password."""
    return current_app.config["SIGNIN_RATE_LIMIT"]


def account_limit() -> str:
    """Password attempts per account (submitted email), whatever address they come from."""
    return current_app.config["SIGNIN_ACCOUNT_RATE_LIMIT"]


def submitted_email() -> str | None:
    """The email a POST names, read the way the view will read it: a form (Flask-WTF also
    accepts a JSON body on the web forms) or the API's JSON object."""
    if request.form:
        values = [v for v in request.form.getlist("email") if isinstance(v, str)]
        return values[0] if values else None
    data = request.get_json(silent=True)
    value = data.get("email") if isinstance(data, dict) else None
    if isinstance(value, list):  # Flask-WTF reads a JSON list as several values, and takes the first
        value = value[0] if value else None
    return value if isinstance(value, str) else None


def account_key(email: str) -> str:
    """One counter per account, however the email is spelled (case, spaces, Unicode forms);
    hashed so the limiter's storage holds no addresses."""
    try:
        email = normalize_email(email)
    except (ServiceError, ValueError):
        email = email.strip().lower()
    return "account:" + hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def limit_password_attempts(account_email=submitted_email):
    """Decorate a view that checks a password on POST: it spends one attempt from the client
    address's budget (SIGNIN_RATE_LIMIT, shared with every such route) and one from the
    named account's (SIGNIN_ACCOUNT_RATE_LIMIT, keyed on `account_email()`).

    Attempts count when made, not when they fail: the counter is atomic, so a burst of
    parallel guesses cannot slip past it.
    """
    def key() -> str | None:
        if "password_account_key" not in g:
            g.password_account_key = None
            if request.method == "POST":
                # Never raise into the limiter: it takes any error for a storage failure and
                # lets the request through unlimited.
                try:
                    email = account_email()
                    if email and email.strip():
                        g.password_account_key = account_key(email)
                except Exception:  # noqa: BLE001
                    current_app.logger.exception("could not tell which account a password attempt is for")
        return g.password_account_key

    def decorator(view):
        limited = limiter.shared_limit(account_limit, scope=ACCOUNT_SCOPE, key_func=lambda: key() or "",
                                       exempt_when=lambda: key() is None, methods=["POST"])(view)
        return limiter.shared_limit(signin_limit, scope=PASSWORD_SCOPE, methods=["POST"])(limited)
    return decorator


def limit_signups(view):
    """Companies created per client address (SIGNUP_RATE_LIMIT), one budget for web and API."""
    return limiter.shared_limit(signup_limit, scope=SIGNUP_SCOPE, methods=["POST"])(view)
