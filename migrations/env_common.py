"""Shared env.py body for the alembic CLI (autogenerate against DATABASE_URL)."""
import os

from alembic import context
from sqlalchemy import create_engine, text


def run(metadata, schema: str) -> None:
    url = os.environ.get("DATABASE_URL") or context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    with engine.begin() as connection:
        path = schema if schema == "public" else f'"{schema}", public'
        connection.execute(text("SELECT set_config('search_path', :p, true)"), {"p": path})
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=False,
            include_object=_not_version_table,
        )
        context.run_migrations()


def _not_version_table(obj, name, type_, reflected, compare_to) -> bool:
    # The version table is alembic's own: autogenerate must not offer to drop it.
    return not (type_ == "table" and name == "alembic_version")
