"""Marshmallow schemas: what the API accepts and what each response shows."""
from marshmallow import EXCLUDE, Schema, fields, validate

from saas.auth.models import Role


class _In(Schema):
    class Meta:
        unknown = EXCLUDE


class SignupIn(_In):
    company_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    slug = fields.String(required=True, validate=validate.Length(min=1, max=40))
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, load_only=True)
    owner_name = fields.String(load_default="")


class TokenIn(_In):
    email = fields.String(required=True)
    password = fields.String(required=True, load_only=True)


class InvitationIn(_In):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    role = fields.String(load_default=Role.MEMBER, validate=validate.OneOf(Role.ALL))


class NewTenantOut(Schema):
    id = fields.Integer()
    slug = fields.String()


class TenantOut(NewTenantOut):
    name = fields.String()


class SignupOut(Schema):
    tenant = fields.Nested(NewTenantOut)
    token = fields.String()


class TokenOut(Schema):
    token = fields.String()


class UserOut(Schema):
    id = fields.Integer()
    email = fields.String()
    name = fields.String()


class MeOut(Schema):
    user = fields.Nested(UserOut)
    tenant = fields.Nested(TenantOut)
    role = fields.String()


class MemberOut(Schema):
    id = fields.Integer(metadata={"description": "membership id"})
    user = fields.Nested(UserOut)
    role = fields.String()
    active = fields.Boolean()


class InvitationOut(Schema):
    id = fields.Integer()
    email = fields.String()
    role = fields.String()
    expires_at = fields.DateTime()


class ErrorOut(Schema):
    error = fields.String(metadata={"description": "machine-readable code"})
    message = fields.String(metadata={"description": "what went wrong, for a person"})
    fields_ = fields.Dict(data_key="fields", metadata={"description": "per-field problems (422)"})
