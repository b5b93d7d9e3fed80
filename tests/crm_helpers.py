"""Shared helpers for CRM tests: act as a person inside a company's schema, add people, set rules.

Services are called the way pages and the API call them: inside the tenant's scope, as one
person (their Membership). Nothing here replaces our code; it only opens the scope.
"""
from contextlib import contextmanager

from sqlalchemy import select

from saas.auth.models import Membership
from tenants.db import db
from tenants.registry import lookup_tenant
from tenants.scope import tenant_scope

from .conftest import Company
from .test_people import Person, add_person  # noqa: F401  (re-exported for CRM tests)


@contextmanager
def acting_as(app, company: Company, user_id: int | None = None):
    """`with acting_as(app, company, user_id) as actor:` services run in `company`'s schema as
    that person (the owner by default); the work is committed when the block ends."""
    with app.app_context():
        with tenant_scope(lookup_tenant(tenant_id=company.id)):
            actor = db.session.scalar(select(Membership).where(
                Membership.tenant_id == company.id, Membership.user_id == (user_id or company.owner_id)))
            assert actor is not None, "no such member"
            yield actor
            db.session.commit()


def set_rule(app, company: Company, role: str, entity: str, see: str, edit: str | None = None) -> None:
    from saas.crm import admin

    with acting_as(app, company) as owner:
        admin.set_access_rule(owner, role, entity, see=see, edit=edit or see)
