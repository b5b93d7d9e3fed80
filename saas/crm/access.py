"""Who may see and edit which records.

The owner sees and edits everything. For administrators and members an admin sets, per record
type, a scope for seeing and one for editing: all records, their department's (records whose
responsible person shares a department with them, and their own), or only their own. Every
read goes through `visible` and every change through `require_edit`, so pages, the API, export
and later search apply the same rule.
"""
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, true

from saas.auth.models import Membership, Role
from saas.errors import Forbidden, NotFound
from saas.settings.services import transaction_cache
from tenants.db import db

from .models import AccessRule, StaffDepartment

ALL, DEPARTMENT, OWN = "all", "department", "own"
SCOPES = (ALL, DEPARTMENT, OWN)
SCOPE_LABELS = {ALL: _l("All records"), DEPARTMENT: _l("Own and their department's"), OWN: _l("Only their own")}
RULED_ROLES = (Role.ADMIN, Role.MEMBER)


@dataclass(frozen=True)
class Rule:
    see: str = ALL
    edit: str = ALL


def rule(role: str, entity: str) -> Rule:
    if role == Role.OWNER:
        return Rule()
    stored = transaction_cache("access_rules")
    if not stored:
        stored.update({(r.role, r.entity): Rule(r.see, r.edit) for r in db.session.scalars(select(AccessRule))})
        stored["loaded"] = True
    return stored.get((role, entity), Rule())


def rules() -> dict[tuple[str, str], Rule]:
    stored = {(r.role, r.entity): Rule(r.see, r.edit) for r in db.session.scalars(select(AccessRule))}
    from .models import Entity
    return {(role, entity): stored.get((role, entity), Rule()) for role in RULED_ROLES for entity in Entity.ALL}


def colleagues(user_id: int) -> list[int]:
    """The user and everyone in their department."""
    department = select(StaffDepartment.department_id).where(StaffDepartment.user_id == user_id).scalar_subquery()
    others = db.session.scalars(select(StaffDepartment.user_id).where(StaffDepartment.department_id == department))
    return sorted({user_id, *others})


def _scope_clause(model, scope: str, actor: Membership):
    if scope == ALL:
        return true()
    if scope == DEPARTMENT:
        return model.responsible_id.in_(colleagues(actor.user_id))
    return model.responsible_id == actor.user_id


def visible(model, entity: str, actor: Membership):
    """A WHERE clause selecting the live records of `model` the actor may see."""
    return model.deleted_at.is_(None) & _scope_clause(model, rule(actor.role, entity).see, actor)


def _within(record, scope: str, actor: Membership) -> bool:
    if scope == ALL:
        return True
    if scope == DEPARTMENT:
        return record.responsible_id in colleagues(actor.user_id)
    return record.responsible_id == actor.user_id


def can_see(record, entity: str, actor: Membership) -> bool:
    return record.deleted_at is None and _within(record, rule(actor.role, entity).see, actor)


def can_edit(record, entity: str, actor: Membership) -> bool:
    current = rule(actor.role, entity)
    return can_see(record, entity, actor) and _within(record, current.edit, actor)


def require_visible(record, entity: str, actor: Membership):
    """The record, or NotFound: a record one may not see looks exactly like one that is not there."""
    if record is None or not can_see(record, entity, actor):
        raise NotFound(_l("No such record, or it is not yours to see."))
    return record


def require_edit(record, entity: str, actor: Membership):
    require_visible(record, entity, actor)
    if not can_edit(record, entity, actor):
        raise Forbidden(_l("You may look at this record but not change it. Ask an administrator."))
    return record


def may_create_for(responsible_id: int | None, entity: str, actor: Membership) -> bool:
    """One may create a record only for someone whose records one may edit."""
    scope = rule(actor.role, entity).edit
    if scope == ALL:
        return True
    if scope == DEPARTMENT:
        return responsible_id in colleagues(actor.user_id)
    return responsible_id == actor.user_id


def require_manager(actor: Membership) -> None:
    if actor.role not in Role.MANAGERS:
        raise Forbidden(_l("Only the owner and administrators change these settings."))
