"""Web forms (Flask-WTF: CSRF on every one). Domain rules live in services, not here."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from .models import Role

# Language names stay in their own language, as people look for them.
LANGUAGE_CHOICES = [SelectChoice("", _l("Browser language")), SelectChoice("en", "English"),
                    SelectChoice("ru", "Русский")]


def role_choices():
    return [SelectChoice(Role.MEMBER, _l("Member")), SelectChoice(Role.ADMIN, _l("Administrator")),
            SelectChoice(Role.OWNER, _l("Owner"))]


class SignupForm(FlaskForm):
    company_name = StringField(_l("Company name"), validators=[DataRequired(), Length(max=200)])
    slug = StringField(_l("Address"), validators=[DataRequired(), Length(max=40)])
    owner_name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("Work email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class SigninForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    next = HiddenField()


class FindCompanyForm(FlaskForm):
    slug = StringField(_l("Company address"), validators=[DataRequired(), Length(max=40)])


class InviteForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    role = SelectField(_l("Role"), choices=role_choices, default=Role.MEMBER)


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=role_choices)


class ActionForm(FlaskForm):
    """A button-only form (deactivate, reactivate, sign out): carries just the CSRF token."""


class AcceptInviteForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[Length(max=200)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class ProfileForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    locale = SelectField(_l("Language"), choices=LANGUAGE_CHOICES)


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired()])
