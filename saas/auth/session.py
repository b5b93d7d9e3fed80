"""Web sessions: Flask-Login, bound to the tenant the person signed in to."""
from functools import wraps

from flask import abort, g, session
from flask_login import current_user, login_user, logout_user

from saas.extensions import login_manager
from tenants.db import db

from .models import Membership, Role, User
from .services import active_membership, end_session, session_is_live, start_session


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    # A session cookie counts only on the host of the tenant it was issued for, only while its
    # server-side record is live (not signed out, not ended by a deactivation), and only while
    # the person is still an active member there.
    tenant = g.get("tenant")
    if tenant is None or session.get("tenant_id") != tenant.id:
        return None
    if not session_is_live(session.get("sid"), int(user_id), tenant.id):
        return None
    membership = active_membership(int(user_id), tenant.id)
    if membership is None:
        return None
    g.membership = membership
    return db.session.get(User, int(user_id))


def sign_in(user: User) -> None:
    end_session(session.get("sid"))  # whoever was signed in on this browser before
    session.clear()  # a fresh session on sign-in (no fixation)
    login_user(user)
    session["tenant_id"] = g.tenant.id
    session["sid"] = start_session(user.id, g.tenant.id)


def sign_out() -> None:
    end_session(session.get("sid"))  # copies of this cookie stop working too
    logout_user()
    session.clear()


def current_membership() -> Membership | None:
    return g.get("membership") if current_user.is_authenticated else None


def tenant_required(view):
    """The view exists only on a company's host (404 on the public site)."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if g.get("tenant") is None:
            abort(404)
        return view(*args, **kwargs)
    return wrapper


def public_site_only(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if g.get("tenant") is not None:
            abort(404)
        return view(*args, **kwargs)
    return wrapper


def is_manager() -> bool:
    membership = current_membership()
    return membership is not None and membership.role in Role.MANAGERS


login_manager.login_view = "auth.signin"
login_manager.login_message = None
login_manager.session_protection = "basic"
