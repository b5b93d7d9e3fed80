"""Reading and writing company settings (one JSON value per key, in the tenant's schema).

Settings and access rules are read on every record a request or an import touches; each is
read from the database once per transaction (a cache in the session that ends with it).
"""
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from tenants.db import db
from tenants.models import utcnow

from .models import CompanySetting

_CACHES = "per_transaction"


def transaction_cache(name: str) -> dict:
    """A dict that lives until the current transaction ends (so a tenant switch never sees it)."""
    return db.session.info.setdefault(_CACHES, {}).setdefault(name, {})


def forget_cache(name: str) -> None:
    db.session.info.get(_CACHES, {}).pop(name, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_caches(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_CACHES, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_caches_on_rollback(session, previous_transaction) -> None:
    session.info.pop(_CACHES, None)  # a savepoint rolled back may have taken cached rows with it


def get_setting(key: str, default=None):
    cache = transaction_cache("settings")
    if key not in cache:
        row = db.session.get(CompanySetting, key)
        cache[key] = None if row is None else row.value
    return default if cache[key] is None else cache[key]


def set_setting(key: str, value) -> None:
    statement = insert(CompanySetting).values(key=key, value=value, updated_at=utcnow())
    db.session.execute(statement.on_conflict_do_update(
        index_elements=[CompanySetting.key], set_={"value": value, "updated_at": utcnow()}))
    forget_cache("settings")
    db.session.expire_all()
