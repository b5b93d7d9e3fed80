"""The audit log: who did what to which record, field by field, shown on cards' timelines."""
from sqlalchemy import select

from tenants.db import db

from .fields import to_json
from .models import AuditEntry


def ref(entity: str, record_id: int) -> str:
    return f"{entity}:{record_id}"


def _plain(value):
    value = to_json(value)
    return None if value in ("", []) else value  # "" and [] are "empty", as None is


def diff(before: dict, after: dict) -> dict:
    """{field: [old, new]} for every field whose value changed (keys gone from `after` became empty)."""
    names = dict.fromkeys([*before, *after])
    return {name: [_plain(before.get(name)), _plain(after.get(name))]
            for name in names if _plain(before.get(name)) != _plain(after.get(name))}


def write(entity: str, record, action: str, user_id: int | None, *, title: str, changes: dict | None = None,
          related: tuple[str, ...] = ()) -> AuditEntry:
    """Log one event on `record`, shown on its own card and on the `related` ones."""
    entry = AuditEntry(user_id=user_id, entity=entity, record_id=record.id, action=action, title=title[:300],
                       changes=to_json(changes or {}), refs=list(dict.fromkeys([ref(entity, record.id), *related])))
    db.session.add(entry)
    return entry


def timeline(entity: str, record_id: int, limit: int = 200) -> list[AuditEntry]:
    return list(db.session.scalars(
        select(AuditEntry).where(AuditEntry.refs.contains([ref(entity, record_id)]))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)))
