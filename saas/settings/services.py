"""Reading and writing company settings (one JSON value per key, in the tenant's schema)."""
from sqlalchemy.dialects.postgresql import insert

from tenants.db import db
from tenants.models import utcnow

from .models import CompanySetting


def get_setting(key: str, default=None):
    row = db.session.get(CompanySetting, key)
    return default if row is None or row.value is None else row.value


def set_setting(key: str, value) -> None:
    statement = insert(CompanySetting).values(key=key, value=value, updated_at=utcnow())
    db.session.execute(statement.on_conflict_do_update(
        index_elements=[CompanySetting.key], set_={"value": value, "updated_at": utcnow()}))
    db.session.expire_all()
