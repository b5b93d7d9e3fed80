"""The database handle and the two declarative bases: public tables and per-tenant tables."""
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class PublicModel(DeclarativeBase):
    """Tables shared by all tenants; always schema-qualified as `public.<table>`."""

    metadata = MetaData(schema="public", naming_convention=NAMING)


class TenantModel(DeclarativeBase):
    """Tables that exist once per tenant schema.

    They carry no schema: the tenant's transaction resolves them through its search_path
    (see tenants.scope), so a query made outside a tenant scope finds no such table and fails.
    """

    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=PublicModel)
