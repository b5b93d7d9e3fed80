"""Job bodies for people and tenants (run by the worker inside the job's tenant scope)."""
from flask import current_app, render_template
from flask_babel import force_locale, gettext as _

from saas import mail
from saas.tenancy import public_url, tenant_url
from tenants.db import db
from tenants.provisioning import fill_pool
from tenants.models import utcnow
from tenants.scope import current_tenant

from .models import Invitation, User
from .links import password_reset_token
from .secrets import new_secret


def refill_schema_pool() -> int:
    """Top up the pool of ready tenant schemas so the next sign-ups only rename one."""
    return fill_pool(db.engine, current_app.config["TENANT_POOL_SIZE"])


def send_invitation(invitation_id: int, locale: str = "en") -> bool:
    """Make the invitation's link and mail it, in the language the inviter was using.

    The link's secret is made here and only its digest stored, so the queue never holds it.
    A retry makes a new link (the earlier one was never delivered). Nothing is sent for an
    invitation that was accepted or withdrawn meanwhile.
    """
    invitation = db.session.get(Invitation, invitation_id, with_for_update=True)
    if invitation is None or invitation.accepted_at is not None:
        return False
    token, invitation.token_hash = new_secret()
    db.session.commit()  # before sending: a mailed link must always be one we know
    tenant = current_tenant()
    inviter = db.session.get(User, invitation.invited_by) if invitation.invited_by else None
    with force_locale(locale):
        body = render_template(
            "auth/invitation_email.txt",
            company=tenant.name,
            inviter=inviter.name if inviter else None,
            link=tenant_url(tenant.slug, f"/invite/{token}"),
            days=current_app.config["INVITATION_DAYS"],
        )
        subject = _("%(company)s invites you to DealDocs", company=tenant.name)
    mail.send(mail.build_message(invitation.email, subject, body))
    invitation.sent_at = utcnow()  # what the people page shows: sent, or not (yet)
    db.session.commit()
    return True


def send_password_reset(user_id: int, locale: str = "en") -> bool:
    """Mail a password reset link (made here: the queue holds only the id)."""
    user = db.session.get(User, user_id)
    if user is None:
        return False
    tenant = current_tenant()
    path = f"/reset/{password_reset_token(user)}"
    with force_locale(locale):
        body = render_template("auth/password_reset_email.txt", name=user.name,
                               link=tenant_url(tenant.slug, path) if tenant else public_url(path))
        subject = _("Reset your DealDocs password")
    mail.send(mail.build_message(user.email, subject, body))
    return True
