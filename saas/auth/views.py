"""Pages for signing up, signing in, switching company, invitations, people and profile."""
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from saas.errors import Forbidden, NotFound, ServiceError
from saas.auth.limits import limit_password_attempts, limit_signups
from saas.tenancy import find_tenant, tenant_url

from . import services
from .forms import (AcceptInviteForm, ActionForm, FindCompanyForm, ForgotPasswordForm, InviteForm, ProfileForm,
                    ResetPasswordForm, RoleForm,
                    SigninForm, SignupForm)
from .session import current_membership, public_site_only, sign_in, sign_out, tenant_required

bp = Blueprint("auth", __name__)


def show_error(form, error: ServiceError) -> None:
    """Put a service's refusal next to its field, or on top of the form."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = list(field.errors) + [str(error.message)]
    else:
        flash(str(error.message), "error")


def _handoff_redirect(user, tenant, path: str = "/"):
    token = services.handoff_token(user, tenant)
    return redirect(tenant_url(tenant.slug, url_for("auth.handoff", token=token, next=path)))


def _safe_next(target: str | None) -> str:
    r"""A path on this host, or "/": never a way off it.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    "/\evil.example" and "/<TAB>/evil.example" both mean "//evil.example" to them.
    """
    if not target or not target.startswith("/") or "\\" in target:
        return "/"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        return "/"
    parts = urlsplit(target)
    if target.startswith("//") or parts.scheme or parts.netloc:
        return "/"
    return target


# --- public site ---------------------------------------------------------------------------

@bp.route("/signup", methods=["GET", "POST"])
@public_site_only
@limit_signups
@limit_password_attempts()  # an email that has an account must come with its password
def signup():
    form = SignupForm()
    if form.validate_on_submit():
        try:
            tenant, user = services.sign_up(
                company_name=form.company_name.data, slug=form.slug.data, owner_name=form.owner_name.data,
                email=form.email.data, password=form.password.data, locale=session.get("lang"),
            )
        except ServiceError as error:
            show_error(form, error)
        else:
            return _handoff_redirect(user, tenant)
    return render_template("auth/signup.html", form=form), 422 if form.errors else 200


@bp.route("/find", methods=["GET", "POST"])
@public_site_only
def find_company():
    form = FindCompanyForm()
    if form.validate_on_submit():
        slug = form.slug.data.strip().lower()
        if find_tenant(slug):
            return redirect(tenant_url(slug, url_for("auth.signin")))
        form.slug.errors = [_("No company uses this address.")]
    return render_template("auth/find.html", form=form)


# --- either host: forgotten passwords ------------------------------------------------------

@bp.route("/forgot", methods=["GET", "POST"])
@limit_password_attempts()  # also keeps anyone from flooding a mailbox with links
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        services.request_password_reset(g.tenant, form.email.data)
        return render_template("auth/forgot.html", form=form, sent=form.email.data)
    return render_template("auth/forgot.html", form=form, sent=None)


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limit_password_attempts(lambda: None)
def reset_password(token: str):
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user = services.reset_password(token, form.password.data)
        except ServiceError as error:
            show_error(form, error)
            return render_template("auth/reset.html", form=form), error.status
        if g.tenant is not None and services.active_membership(user.id, g.tenant.id):
            sign_in(user)
            flash(_("Your new password is saved."), "success")
            return redirect(url_for("web.index"))
        flash(_("Your new password is saved. Sign in to your company."), "success")
        return redirect(url_for("auth.find_company"))
    return render_template("auth/reset.html", form=form), 422 if form.errors else 200


# --- a company's host ----------------------------------------------------------------------

@bp.route("/signin", methods=["GET", "POST"])
@tenant_required
@limit_password_attempts()
def signin():
    form = SigninForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        try:
            user = services.authenticate(g.tenant, form.email.data, form.password.data)
        except ServiceError as error:
            show_error(form, error)
        else:
            sign_in(user)
            return redirect(_safe_next(form.next.data))
    return render_template("auth/signin.html", form=form), 401 if request.method == "POST" else 200


@bp.post("/signout")
@tenant_required
def signout():
    if ActionForm().validate_on_submit():
        sign_out()
    return redirect(url_for("auth.signin"))


@bp.get("/auth/handoff")
@tenant_required
def handoff():
    try:
        user = services.consume_handoff(request.args.get("token", ""), g.tenant)
    except ServiceError as error:
        flash(str(error.message), "error")
        return redirect(url_for("auth.signin"))
    sign_in(user)
    return redirect(_safe_next(request.args.get("next")))


@bp.get("/switch/<slug>")
@tenant_required
@login_required
def switch(slug: str):
    target = find_tenant(slug)
    if target is None or not target.is_active or services.active_membership(current_user.id, target.id) is None:
        flash(_("You are not a member of that company."), "error")
        return redirect(url_for("web.index"))
    return _handoff_redirect(current_user, target)


def _invitation_email() -> str | None:
    """The account an invitation link is for: accepting it as an existing person checks that
    account's password, so the attempt counts against it as a sign-in would."""
    try:
        invitation, _user = services.open_invitation(g.tenant, (request.view_args or {}).get("token", ""))
    except ServiceError:
        return None  # no valid invitation: the view refuses before any password is checked
    return invitation.email


@bp.route("/invite/<token>", methods=["GET", "POST"])
@tenant_required
@limit_password_attempts(_invitation_email)
def accept_invite(token: str):
    try:
        invitation, existing_user = services.open_invitation(g.tenant, token)
    except ServiceError as error:
        return render_template("auth/invite_invalid.html", message=str(error.message)), error.status
    form = AcceptInviteForm()
    if form.validate_on_submit():
        try:
            user = services.accept_invitation(g.tenant, token, name=form.name.data, password=form.password.data,
                                              locale=session.get("lang"))
        except ServiceError as error:
            show_error(form, error)
        else:
            sign_in(user)
            flash(_("Welcome to %(company)s!", company=g.tenant.name), "success")
            return redirect(url_for("web.index"))
    return render_template("auth/accept_invite.html", form=form, invitation=invitation,
                           existing_user=existing_user)


@bp.get("/people")
@tenant_required
@login_required
def people():
    return render_template(
        "auth/people.html",
        members=services.people(g.tenant),
        invitations=services.pending_invitations(g.tenant),
        invite_form=InviteForm(),
        me=current_membership(),
        role_form_for=lambda m: RoleForm(role=m.role, prefix=f"m{m.id}"),
        action_form=ActionForm(),
    )


@bp.post("/people/invite")
@tenant_required
@login_required
def invite():
    form = InviteForm()
    if form.validate_on_submit():
        try:
            invitation = services.invite(g.tenant, current_membership(), form.email.data, form.role.data)
        except ServiceError as error:
            return _refused(error)
        flash(_("Invitation sent to %(email)s.", email=invitation.email), "success")
    else:
        flash(_("Enter a valid email address."), "error")
    return redirect(url_for("auth.people"))


@bp.post("/people/<int:membership_id>/role")
@tenant_required
@login_required
def change_role(membership_id: int):
    form = RoleForm(prefix=f"m{membership_id}")
    return _manage(lambda: services.set_role(g.tenant, current_membership(), membership_id, form.role.data),
                   form, _("Role changed."))


@bp.post("/people/<int:membership_id>/deactivate")
@tenant_required
@login_required
def deactivate(membership_id: int):
    return _manage(lambda: services.set_active(g.tenant, current_membership(), membership_id, False),
                   ActionForm(), _("Access removed. Their data stays in the company."))


@bp.post("/people/<int:membership_id>/reactivate")
@tenant_required
@login_required
def reactivate(membership_id: int):
    return _manage(lambda: services.set_active(g.tenant, current_membership(), membership_id, True),
                   ActionForm(), _("Access restored."))


def _manage(action, form, success_message: str):
    if not form.validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(url_for("auth.people"))
    try:
        action()
    except ServiceError as error:
        return _refused(error)
    flash(success_message, "success")
    return redirect(url_for("auth.people"))


def _refused(error: ServiceError):
    if isinstance(error, Forbidden):
        abort(403, description=str(error.message))
    if isinstance(error, NotFound):  # e.g. another company's membership id: nothing here by that id
        abort(404)
    flash(str(error.message), "error")
    return redirect(url_for("auth.people"))


@bp.route("/profile", methods=["GET", "POST"])
@tenant_required
@login_required
def profile():
    form = ProfileForm(obj=current_user) if request.method == "GET" else ProfileForm()
    if request.method == "GET":
        form.locale.data = current_user.locale or ""
    if form.validate_on_submit():
        try:
            services.update_profile(current_user, name=form.name.data, locale=form.locale.data or None)
        except ServiceError as error:
            show_error(form, error)
        else:
            flash(_("Profile saved."), "success")
            return redirect(url_for("auth.profile"))
    return render_template("auth/profile.html", form=form)


@bp.get("/lang/<code>")
def set_language(code: str):
    from flask import current_app
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(_safe_next(request.args.get("next")))
