"""Sign-up, sign-in, API tokens, invitations and people management.

Everything that changes people or tenants goes through here; pages and the API only call it.
"""
import secrets
import unicodedata
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import get_locale, lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from billing.services import open_subscription
from saas.account.seats import seats_changed
from saas.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from saas.jobs import enqueue_after_commit, redis_connection
from tenants.db import db
from tenants.models import Tenant, TenantRef, slug_problem, utcnow
from tenants.provisioning import create_tenant_schema

from . import tasks
from .models import ApiToken, Invitation, Membership, Role, User
from .links import user_id_for_reset
from .secrets import digest, new_secret
from .passwords import MIN_LENGTH, hash_password, needs_rehash, verify_password

HANDOFF_SECONDS = 60
TOKEN_USE_PRECISION = timedelta(minutes=1)


# --- validation ----------------------------------------------------------------------------

def normalize_email(email: str) -> str:
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise Invalid(_l("Enter a valid email address."), field="email")


def check_password(password: str) -> None:
    if len(password or "") < MIN_LENGTH:
        raise Invalid(_l("Use at least %(n)d characters for the password.", n=MIN_LENGTH), field="password")


def check_slug(slug: str) -> str:
    slug = (slug or "").strip().lower()
    problem = slug_problem(slug)
    if problem == "reserved":
        raise Invalid(_l("“%(slug)s” is reserved. Choose another address.", slug=slug), field="slug")
    if problem:
        raise Invalid(
            _l("Use 1–40 Latin letters, digits or hyphens, not starting or ending with a hyphen."),
            field="slug",
        )
    return slug


def _required(value: str, field: str, label) -> str:
    value = (value or "").strip()
    if not value:
        raise Invalid(_l("%(label)s is required.", label=label), field=field)
    if len(value) > 200:
        raise Invalid(_l("%(label)s is too long (200 characters at most).", label=label), field=field)
    if any(unicodedata.category(ch) == "Cc" for ch in value):  # line breaks would break mail headers
        raise Invalid(_l("%(label)s must be one line, without control characters.", label=label), field=field)
    return value


def _violated_constraint(error: IntegrityError) -> str | None:
    return getattr(getattr(error.orig, "diag", None), "constraint_name", None)


# --- sign-up -------------------------------------------------------------------------------

def sign_up(*, company_name: str, slug: str, email: str, password: str, owner_name: str = "",
            locale: str | None = None) -> tuple[TenantRef, User]:
    """Create a company with its own schema and its owner, in one transaction.

    A person who already has an account (same email) adds a company to it by giving its password.
    """
    company_name = _required(company_name, "company_name", _l("Company name"))
    slug = check_slug(slug)
    email = normalize_email(email)
    check_password(password)
    if db.session.scalar(select(Tenant.id).where(Tenant.slug == slug)):
        raise Conflict(_slug_taken(slug), code="slug_taken", field="slug")
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=(owner_name or "").strip() or email.split("@")[0],
                    password_hash=hash_password(password), locale=locale)
    elif not verify_password(user.password_hash, password):
        raise Conflict(
            _l("An account with this email already exists. Enter its password to add this company to it."),
            code="email_taken", field="email",
        )
    tenant = Tenant(name=company_name, slug=slug)
    db.session.add(tenant)
    try:
        db.session.flush()
        create_tenant_schema(db.session.connection(), tenant.id)
        db.session.add(Membership(user=user, tenant_id=tenant.id, role=Role.OWNER))
        open_subscription(tenant.id)
        enqueue_after_commit(tasks.refill_schema_pool, retries=0)
        db.session.commit()
    except IntegrityError as error:
        db.session.rollback()  # a concurrent sign-up won the race: the loser's schema rolls back too
        if _violated_constraint(error) == "uq_users_email":
            raise Conflict(_l("An account with this email was just created. Sign in, or use its password."),
                           code="email_taken", field="email")
        raise Conflict(_slug_taken(slug), code="slug_taken", field="slug")
    return TenantRef.of(tenant), user


def _slug_taken(slug: str):
    return _l("The address “%(slug)s” is taken. Choose another.", slug=slug)


# --- sign-in -------------------------------------------------------------------------------

def active_membership(user_id: int, tenant_id: int) -> Membership | None:
    return db.session.scalar(
        select(Membership).where(
            Membership.user_id == user_id, Membership.tenant_id == tenant_id, Membership.active.is_(True)
        )
    )


def authenticate(tenant: TenantRef, email: str, password: str) -> User:
    """The user behind these credentials if they may work in `tenant`; else Unauthorized."""
    email = (email or "").strip().lower()
    user = db.session.scalar(select(User).where(User.email == email))
    password_ok = verify_password(user.password_hash if user else None, password or "")
    if not (user and password_ok and active_membership(user.id, tenant.id)):
        raise Unauthorized(_l("Wrong email or password for this company."), code="invalid_credentials")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
    return user


def memberships_of(user: User) -> list[Membership]:
    """The companies a person may switch to, by name."""
    return list(db.session.scalars(
        select(Membership).join(Tenant).where(
            Membership.user_id == user.id, Membership.active.is_(True), Tenant.status == "active"
        ).order_by(Tenant.name)
    ))


def _handoff_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="dealdocs.handoff")


def handoff_token(user: User, tenant: TenantRef) -> str:
    """A one-time, one-minute pass that signs `user` in on `tenant`'s host (cookies are per host)."""
    return _handoff_serializer().dumps({"u": user.id, "t": tenant.id, "n": secrets.token_hex(16)})


def consume_handoff(token: str, tenant: TenantRef) -> User:
    try:
        data = _handoff_serializer().loads(token, max_age=HANDOFF_SECONDS)
    except (BadSignature, SignatureExpired):
        raise Unauthorized(_l("This sign-in link has expired. Please sign in."))
    if data.get("t") != tenant.id:
        raise Unauthorized(_l("This sign-in link is for another company."))
    if not redis_connection().set(f"dealdocs:handoff:{data['n']}", 1, nx=True, ex=HANDOFF_SECONDS * 2):
        raise Unauthorized(_l("This sign-in link was already used. Please sign in."))
    user = db.session.get(User, data["u"])
    if user is None or not active_membership(user.id, tenant.id):
        raise Unauthorized(_l("You are not a member of this company."))
    return user


# --- web sessions (server-side registry) ---------------------------------------------------
#
# The session cookie is signed but stateless, so on its own it could not be taken back: a copy
# made before sign-out, or before a deactivation, would keep working (even again after a
# reactivation). Each sign-in therefore registers a random session id in Redis; the cookie
# counts only while its id is live for that person in that company.

def _session_key(sid: str) -> str:
    return f"dealdocs:session:{sid}"


def _person_sessions_key(user_id: int, tenant_id: int) -> str:
    return f"dealdocs:sessions:{int(tenant_id)}:{int(user_id)}"


def _session_ttl() -> int:
    return int(current_app.permanent_session_lifetime.total_seconds())


def start_session(user_id: int, tenant_id: int) -> str:
    """Register a new web session of `user_id` in `tenant_id`; returns its id for the cookie."""
    sid = secrets.token_urlsafe(24)
    ttl = _session_ttl()
    pipe = redis_connection().pipeline()
    pipe.set(_session_key(sid), f"{int(user_id)}:{int(tenant_id)}", ex=ttl)
    pipe.sadd(_person_sessions_key(user_id, tenant_id), sid)
    pipe.expire(_person_sessions_key(user_id, tenant_id), ttl)
    pipe.execute()
    return sid


def session_is_live(sid: str | None, user_id: int, tenant_id: int) -> bool:
    """True while the session `sid` belongs to this person in this company and was not ended."""
    if not sid:
        return False
    pipe = redis_connection().pipeline(transaction=False)
    pipe.get(_session_key(sid))
    pipe.expire(_session_key(sid), _session_ttl())  # sliding: in use means kept
    owner, _kept = pipe.execute()
    return owner is not None and owner.decode() == f"{int(user_id)}:{int(tenant_id)}"


def end_session(sid: str | None) -> None:
    if not sid:
        return
    connection = redis_connection()
    owner = connection.get(_session_key(sid))
    connection.delete(_session_key(sid))
    if owner:
        user_id, tenant_id = owner.decode().split(":")
        connection.srem(_person_sessions_key(int(user_id), int(tenant_id)), sid)


def end_all_sessions(user_id: int, tenant_id: int) -> None:
    """Sign a person out of a company everywhere (every browser, every copy of the cookie)."""
    connection = redis_connection()
    key = _person_sessions_key(user_id, tenant_id)
    sids = [sid.decode() for sid in connection.smembers(key)]
    connection.delete(key, *(_session_key(sid) for sid in sids))


# --- forgotten passwords -------------------------------------------------------------------

def request_password_reset(tenant: TenantRef | None, email: str) -> None:
    """Mail a reset link when the address has an account (a member's, on a company's host).

    The answer is the same either way, so nobody learns which addresses have accounts.
    """
    user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None or (tenant is not None and active_membership(user.id, tenant.id) is None):
        return
    enqueue_after_commit(tasks.send_password_reset, user.id, str(get_locale() or "en"))
    db.session.commit()


def reset_password(token: str, password: str) -> User:
    """Set a new password from a mailed link; every session and API token of the person ends."""
    user_id = user_id_for_reset(token, lambda uid: db.session.scalar(
        select(User.password_hash).where(User.id == uid)))
    if user_id is None:
        raise Invalid(_l("This link has expired or was already used. Ask for a new one."), code="expired")
    check_password(password)
    user = db.session.get(User, user_id)
    user.password_hash = hash_password(password)
    db.session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                       .values(revoked_at=utcnow()))
    db.session.commit()
    for membership in user.memberships:  # whoever knew the old password is out everywhere
        end_all_sessions(user.id, membership.tenant_id)
    end_all_sessions(user.id, 0)  # and the platform's operator sessions (tenant id 0)
    return user


# --- API tokens ----------------------------------------------------------------------------

def issue_api_token(user: User, tenant: TenantRef) -> str:
    token, token_hash = new_secret("dd_")
    db.session.add(ApiToken(token_hash=token_hash, user_id=user.id, tenant_id=tenant.id))
    db.session.commit()
    return token


def user_for_api_token(token: str, tenant: TenantRef) -> User:
    """The token's user, if the token belongs to this tenant and the person is still active here."""
    row = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None))
    )
    if row is None or row.tenant_id != tenant.id or not active_membership(row.user_id, tenant.id):
        raise Unauthorized(_l("Invalid or revoked API token for this company."), code="invalid_token")
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > TOKEN_USE_PRECISION:
        row.last_used_at = now  # when a token was last used, to the minute: no write per request
        db.session.commit()
    return db.session.get(User, row.user_id)


# --- people --------------------------------------------------------------------------------

def people(tenant: TenantRef) -> list[Membership]:
    return list(db.session.scalars(
        select(Membership).join(User).where(Membership.tenant_id == tenant.id)
        .order_by(Membership.active.desc(), User.name)
    ))


def pending_invitations(tenant: TenantRef) -> list[Invitation]:
    return list(db.session.scalars(
        select(Invitation).where(
            Invitation.tenant_id == tenant.id, Invitation.accepted_at.is_(None), Invitation.expires_at > utcnow()
        ).order_by(Invitation.created_at.desc())
    ))


def _require_manager(actor: Membership) -> None:
    if actor is None or not actor.active or actor.role not in Role.MANAGERS:
        raise Forbidden(_l("Only the owner and administrators can manage people."))


def _check_role(role: str) -> str:
    if role not in Role.ALL:
        raise Invalid(_l("Unknown role."), field="role")
    return role


def invite(tenant: TenantRef, actor: Membership, email: str, role: str = Role.MEMBER) -> Invitation:
    """Invite `email` into the company; the link goes out by mail after commit."""
    _require_manager(actor)
    email = normalize_email(email)
    role = _check_role(role)
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise Forbidden(_l("Only an owner can invite another owner."))
    existing = db.session.scalar(
        select(Membership).join(User).where(Membership.tenant_id == tenant.id, User.email == email)
    )
    if existing is not None:
        message = (_l("%(email)s is already a member.", email=email) if existing.active
                   else _l("%(email)s was deactivated; reactivate them in the list instead.", email=email))
        raise Conflict(message, code="already_member", field="email")
    # A new invitation replaces a pending one for the same address.
    db.session.execute(delete(Invitation).where(
        Invitation.tenant_id == tenant.id, Invitation.email == email, Invitation.accepted_at.is_(None)
    ))
    # The link's secret is made by the mail job itself, so it never waits in the queue.
    invitation = Invitation(
        tenant_id=tenant.id, email=email, role=role, invited_by=actor.user_id,
        expires_at=utcnow() + timedelta(days=current_app.config["INVITATION_DAYS"]),
    )
    db.session.add(invitation)
    db.session.flush()
    enqueue_after_commit(tasks.send_invitation, invitation.id, str(get_locale() or "en"))
    db.session.commit()
    return invitation


def open_invitation(tenant: TenantRef, token: str, *, lock: bool = False) -> tuple[Invitation, User | None]:
    """The pending invitation behind `token` for this tenant, and the account its email already has.

    With `lock`, the invitation row stays locked until commit, so two accepts cannot both pass.
    """
    query = select(Invitation).where(Invitation.token_hash == digest(token))
    invitation = db.session.scalar(query.with_for_update() if lock else query)
    if invitation is None or invitation.tenant_id != tenant.id:
        raise NotFound(_l("This invitation link is not valid."))
    if invitation.accepted_at is not None:
        raise Conflict(_l("This invitation was already accepted. Please sign in."))
    if invitation.expires_at <= utcnow():
        raise Invalid(_l("This invitation has expired. Ask for a new one."), code="expired")
    return invitation, db.session.scalar(select(User).where(User.email == invitation.email))


def accept_invitation(tenant: TenantRef, token: str, *, password: str, name: str = "",
                      locale: str | None = None) -> User:
    """Join the company: a new person sets name and password, an existing one proves theirs."""
    invitation, user = open_invitation(tenant, token, lock=True)
    if user is None:
        check_password(password)
        user = User(email=invitation.email, name=_required(name, "name", _l("Name")),
                    password_hash=hash_password(password), locale=locale)
        db.session.add(user)
    elif not verify_password(user.password_hash, password):
        raise Unauthorized(_l("Wrong password for %(email)s.", email=user.email), field="password")
    db.session.add(Membership(user=user, tenant_id=tenant.id, role=invitation.role))
    invitation.accepted_at = utcnow()
    seats_changed(tenant)
    db.session.commit()
    return user


def _managed_membership(tenant: TenantRef, actor: Membership, membership_id: int) -> Membership:
    _require_manager(actor)
    target = db.session.get(Membership, membership_id)
    if target is None or target.tenant_id != tenant.id:
        raise NotFound(_l("No such person in this company."))
    if target.id == actor.id:
        raise Forbidden(_l("You cannot change your own role or access."))
    if target.role == Role.OWNER and actor.role != Role.OWNER:
        raise Forbidden(_l("Only an owner can change another owner."))
    return target


def set_role(tenant: TenantRef, actor: Membership, membership_id: int, role: str) -> Membership:
    target = _managed_membership(tenant, actor, membership_id)
    role = _check_role(role)
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise Forbidden(_l("Only an owner can make someone an owner."))
    target.role = role
    db.session.commit()
    return target


def set_active(tenant: TenantRef, actor: Membership, membership_id: int, active: bool) -> Membership:
    """Deactivate (signed out at once, tokens stop working) or reactivate a person."""
    target = _managed_membership(tenant, actor, membership_id)
    target.active = active
    seats_changed(tenant)
    if not active:
        db.session.execute(update(ApiToken).where(
            ApiToken.user_id == target.user_id, ApiToken.tenant_id == tenant.id, ApiToken.revoked_at.is_(None)
        ).values(revoked_at=utcnow()))
    db.session.commit()
    if not active:
        end_all_sessions(target.user_id, tenant.id)  # a later reactivation does not revive old cookies
    return target


def update_profile(user: User, *, name: str, locale: str | None) -> User:
    user.name = _required(name, "name", _l("Name"))
    user.locale = locale if locale in current_app.config["LANGUAGES"] else None
    db.session.commit()
    return user
