"""Creating, pooling and dropping tenant schemas.

Sign-up must be fast, so the schema a new tenant gets is normally a ready one from the
pool, renamed (`ALTER SCHEMA … RENAME`, ~1 ms) inside the sign-up transaction. Pool schemas
are built from the models' metadata and stamped at head; `tests/test_provisioning.py` proves
that equals replaying every migration. When the pool is empty the same build runs inline.
"""
import uuid

from sqlalchemy import Connection, Engine, func, select, text

from migrations import PUBLIC, TENANT
from .db import TenantModel
from .migrate import current_revision, head_revision, quote_ident, record_revision, stamp_head
from .models import PooledSchema, schema_name

POOL_PREFIX = "pool_"
_POOL_LOCK = 0x7E4A11  # advisory lock id: one pool filler at a time


def build_schema(connection: Connection, schema: str, location: str = TENANT) -> None:
    """Create `schema` with every tenant table at head, inside the caller's transaction."""
    connection.execute(text(f"CREATE SCHEMA {quote_ident(schema)}"))
    previous = connection.get_execution_options().get("schema_translate_map")
    connection.execution_options(schema_translate_map={None: schema})
    try:
        TenantModel.metadata.create_all(connection, checkfirst=False)
    finally:
        connection.execution_options(schema_translate_map=previous)
    stamp_head(connection, location, schema)


def claim_pooled_schema(connection: Connection, revision: str) -> str | None:
    """Take one ready schema at `revision` out of the pool; concurrent claims never collide."""
    return connection.execute(
        text(
            "DELETE FROM public.schema_pool WHERE name = ("
            " SELECT name FROM public.schema_pool WHERE revision = :revision"
            " ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING name"
        ),
        {"revision": revision},
    ).scalar()


def create_tenant_schema(connection: Connection, tenant_id: int, location: str = TENANT) -> str:
    """Give tenant `tenant_id` its schema at head, in the caller's transaction.

    Returns how: "pool" (a ready schema renamed) or "built" (the pool was empty).
    """
    target, head = schema_name(tenant_id), head_revision(location)
    record_revision(connection, tenant_id, head)
    pooled = claim_pooled_schema(connection, head)
    if pooled:
        connection.execute(text(f"ALTER SCHEMA {quote_ident(pooled)} RENAME TO {quote_ident(target)}"))
        return "pool"
    build_schema(connection, target, location)
    return "built"


def fill_pool(engine: Engine, size: int, location: str = TENANT) -> int:
    """Drop pooled schemas left behind by a migration and top the pool up to `size`.

    Returns how many schemas were built. Safe to call from several processes: only one
    fills at a time, the others return 0 at once.
    """
    head = head_revision(location)
    built = 0
    with engine.connect() as lock_connection:
        if not lock_connection.execute(select(func.pg_try_advisory_lock(_POOL_LOCK))).scalar():
            return 0
        lock_connection.commit()  # the lock is the session's; no transaction stays open meanwhile
        try:
            _drop_stale_pool_schemas(engine, head)
            while _pool_count(engine, head) < size:
                name = f"{POOL_PREFIX}{uuid.uuid4().hex}"
                with engine.begin() as connection:
                    build_schema(connection, name, location)
                    connection.execute(
                        PooledSchema.__table__.insert().values(name=name, revision=head)
                    )
                built += 1
        finally:
            lock_connection.execute(select(func.pg_advisory_unlock(_POOL_LOCK)))
            lock_connection.commit()
    return built


def _pool_count(engine: Engine, revision: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(PooledSchema).where(PooledSchema.revision == revision)
        ).scalar()


def _drop_stale_pool_schemas(engine: Engine, head: str) -> None:
    with engine.begin() as connection:
        stale = connection.execute(
            text("DELETE FROM public.schema_pool WHERE revision <> :head RETURNING name"), {"head": head}
        ).scalars().all()
        for name in stale:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {quote_ident(name)} CASCADE"))


def drop_tenant_schema(connection: Connection, tenant_id: int) -> None:
    connection.execute(text(f"DROP SCHEMA IF EXISTS {quote_ident(schema_name(tenant_id))} CASCADE"))


def everything_at_head(connection: Connection, pool_size: int, public: str = PUBLIC,
                       tenant: str = TENANT) -> bool:
    """Public and every tenant schema at head, and the pool full: `db upgrade` has nothing to do.

    A few cheap queries, so the no-op upgrade can answer before the whole app is loaded.
    """
    if current_revision(connection, "public") != head_revision(public):
        return False
    head = head_revision(tenant)
    return connection.execute(
        text(
            "SELECT NOT EXISTS (SELECT 1 FROM public.tenants WHERE schema_revision IS DISTINCT FROM :head)"
            " AND NOT EXISTS (SELECT 1 FROM public.schema_pool WHERE revision <> :head)"
            " AND (SELECT count(*) FROM public.schema_pool) >= :size"
        ),
        {"head": head, "size": pool_size},
    ).scalar()
