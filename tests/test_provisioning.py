"""Tenant schemas: the fast path equals replaying migrations; sign-up is all-or-nothing."""
import threading
import time

from sqlalchemy import create_engine, text

from migrations import TENANT
from saas.auth.services import sign_up
from saas.errors import Conflict
from tenants.db import TenantModel, db
from tenants.migrate import upgrade_schema
from tenants.provisioning import build_schema, fill_pool

from .conftest import PASSWORD, unique_slug

CATALOG = """
SELECT 'column', c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
       || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = :schema AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v')
UNION ALL
SELECT 'constraint', c.relname || ' ' || k.conname || ' ' || replace(pg_get_constraintdef(k.oid), :schema || '.', '')
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :schema
UNION ALL
SELECT 'index', replace(pg_get_indexdef(i.indexrelid), :schema || '.', '')
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :schema
UNION ALL
SELECT 'relation', c.relkind::text || ' ' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema
UNION ALL
SELECT 'version', version_num FROM {schema}.alembic_version
ORDER BY 1, 2
"""


def catalog(connection, schema: str) -> list[tuple[str, str]]:
    return [tuple(r) for r in connection.execute(text(CATALOG.replace("{schema}", schema)), {"schema": schema})]


def test_fast_path_yields_exactly_the_replayed_schema(app):
    with app.app_context(), db.engine.begin() as connection:
        build_schema(connection, "cmp_fast")
        connection.execute(text("CREATE SCHEMA cmp_replay"))
        applied = upgrade_schema(connection, TENANT, "cmp_replay")
        assert applied, "replay applied no migration"
        fast, replay = catalog(connection, "cmp_fast"), catalog(connection, "cmp_replay")
        connection.execute(text("DROP SCHEMA cmp_fast CASCADE; DROP SCHEMA cmp_replay CASCADE"))
    assert len(fast) > 3
    assert fast == replay


def test_a_schema_from_the_pool_is_exactly_the_replayed_schema(app):
    """What sign-up actually hands out: a pooled schema, renamed to t_<id>."""
    with app.app_context():
        fill_pool(db.engine, 2)
        tenant, _ = sign_up(company_name="From pool", slug=unique_slug(), email=f"{unique_slug()}@example.com",
                            password=PASSWORD)
        with db.engine.begin() as connection:
            connection.execute(text("CREATE SCHEMA cmp_replay2"))
            upgrade_schema(connection, TENANT, "cmp_replay2")
            pooled, replay = catalog(connection, tenant.schema), catalog(connection, "cmp_replay2")
            connection.execute(text("DROP SCHEMA cmp_replay2 CASCADE"))
    assert pooled == replay


def test_public_models_match_public_migrations(app):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tenants.db import PublicModel

    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        diff = compare_metadata(context, PublicModel.metadata)
    # Reflection names public foreign keys without their (default) schema: the same constraint
    # then shows as a remove + add pair. Anything else is real drift.
    fk_pairs = {("remove_fk", d[1].name) for d in diff if d[0] == "add_fk"}
    drift = [d for d in diff if not (isinstance(d, tuple) and d[0] in ("remove_fk", "add_fk")
                                     and ("remove_fk", d[1].name) in fk_pairs)]
    assert drift == []


def _schemas(connection) -> set[str]:
    return set(connection.execute(text("SELECT nspname FROM pg_namespace")).scalars())


def test_sign_up_takes_a_pooled_schema_and_the_pool_refills(app, run_jobs):
    with app.app_context():
        fill_pool(db.engine, 2)
        with db.engine.connect() as connection:
            pooled = set(connection.execute(text("SELECT name FROM public.schema_pool")).scalars())
        tenant, _ = sign_up(company_name="Pooled", slug=unique_slug(), email=f"{unique_slug()}@example.com",
                            password=PASSWORD)
        with db.engine.connect() as connection:
            left = set(connection.execute(text("SELECT name FROM public.schema_pool")).scalars())
            schemas = _schemas(connection)
        assert len(pooled - left) == 1 and (pooled - left).isdisjoint(schemas)  # renamed, not copied
        assert tenant.schema in schemas
    run_jobs()  # the sign-up queued a refill
    with app.app_context(), db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM public.schema_pool")).scalar() == 2


def test_sign_up_builds_the_schema_when_the_pool_is_empty(app):
    with app.app_context():
        with db.engine.begin() as connection:
            for name in connection.execute(text("DELETE FROM public.schema_pool RETURNING name")).scalars():
                connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        tenant, _ = sign_up(company_name="Built", slug=unique_slug(), email=f"{unique_slug()}@example.com",
                            password=PASSWORD)
        with db.engine.connect() as connection:
            tables = connection.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s ORDER BY 1"),
                {"s": tenant.schema}).scalars().all()
        assert tables == sorted(["alembic_version", *(t.name for t in TenantModel.metadata.sorted_tables)])


def _a_backend_waits_on_a_lock(connection, seconds: float = 10) -> bool:
    """True once another session of this database waits on a lock (our sign-up, after its schema)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        waiting = connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")).scalar()
        if waiting:
            return True
        time.sleep(0.05)
    return False


def test_a_failed_sign_up_leaves_no_half_made_tenant(app, database_url):
    """Two sign-ups race for one slug: the loser's schema, tenant row and user all roll back."""
    slug = unique_slug()
    with app.app_context():
        fill_pool(db.engine, 2)
        with db.engine.connect() as connection:
            before = _schemas(connection)
            pool_before = connection.execute(text("SELECT count(*) FROM public.schema_pool")).scalar()

    # Another session holds an uncommitted tenant row with the slug; our sign-up blocks on the
    # unique index after creating its schema, then fails when that row commits.
    other = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1)).connect()
    other.execute(text("INSERT INTO public.tenants (uuid, name, slug, status, created_at) "
                       "VALUES (gen_random_uuid(), 'Winner', :slug, 'active', now())"), {"slug": slug})
    errors = []

    def loser():
        with app.app_context():
            try:
                sign_up(company_name="Loser", slug=slug, email="loser@example.com", password=PASSWORD)
            except Conflict as error:
                errors.append(error)

    thread = threading.Thread(target=loser)
    thread.start()
    assert _a_backend_waits_on_a_lock(other), "the sign-up never reached the slug's unique index"
    other.commit()
    thread.join(10)
    other.close()

    assert errors and errors[0].code == "slug_taken"
    with app.app_context(), db.engine.connect() as connection:
        assert _schemas(connection) == before
        assert connection.execute(text("SELECT count(*) FROM public.schema_pool")).scalar() == pool_before
        assert connection.execute(text("SELECT count(*) FROM public.users WHERE email = 'loser@example.com'")
                                  ).scalar() == 0
        assert connection.execute(text("SELECT name FROM public.tenants WHERE slug = :s"), {"s": slug}
                                  ).scalar() == "Winner"
        connection.execute(text("DELETE FROM public.tenants WHERE slug = :s"), {"s": slug})
        connection.commit()
