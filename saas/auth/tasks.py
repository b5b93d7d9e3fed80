"""Job bodies for people and tenants (run by the worker inside the job's tenant scope)."""
from flask import current_app, render_template
from flask_babel import force_locale, gettext as _

from saas import mail
from saas.tenancy import tenant_url
from tenants.db import db
from tenants.provisioning import fill_pool
from tenants.scope import current_tenant


def refill_schema_pool() -> int:
    """Top up the pool of ready tenant schemas so the next sign-ups only rename one."""
    return fill_pool(db.engine, current_app.config["TENANT_POOL_SIZE"])


def send_invitation(invitation_id: int, token: str, locale: str = "en") -> bool:
    """Mail the invitation link, in the language the inviter was using.

    Idempotent: an accepted or withdrawn invitation is not sent.
    """
    from .models import Invitation, User

    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.accepted_at is not None:
        return False
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
    return True
