"""Benchmark: `dealdocs db upgrade` across N tenant schemas.

    python bench/db_upgrade.py [--quick] [--tenants N]

Creates and finally drops its own database (dealdocs_bench_<random>) on DATABASE_URL's server
(default postgresql://postgres@127.0.0.1:5432), uses REDIS_URL (default redis://127.0.0.1:6379/0).
Progress goes to stderr; the figures are the last line of stdout, one JSON object.

What each figure includes
-------------------------
tenants                 tenant schemas at head (seeded through the real sign_up() service,
                        hash precomputed, one transaction each; seed_s is that time).
upgrade_noop_s          median of 3 wall-clock runs of the real console script
                        `<venv>/bin/dealdocs db upgrade` as a subprocess with nothing to apply
                        (DATABASE_URL = the scratch database, REDIS_URL, dummy STORAGE_URL,
                        SECRET_KEY set so nothing is written to an instance folder): Python
                        start-up, imports, create_app, public tree check, reading every tenant's
                        revision, the pool clean-up, exit. upgrade_noop_runs_s lists the three.
python_startup_s        median of 3 `python -c pass` (the interpreter floor of the above).
import_cli_s            median of 3 `python -c "import saas.cli"` (start-up + the imports the
                        command needs before it does any work).
upgrade_noop_inprocess_s  median of 3 saas.maintenance.upgrade_everything() calls in this
                        process (app already created, modules imported, engine warm).
upgrade_one_migration_s ONE new tenant migration (op.add_column("settings", bench_note Text))
                        applied to all N schemas. The `dealdocs db upgrade` command has no way to
                        point at another migrations location, so this calls what it calls,
                        directly: tenants.migrate.pending_tenants +
                        upgrade_tenant_schemas(url, <temp copy of migrations/tenant with the new
                        revision>, pending, jobs=MIGRATION_JOBS default = 2 x CPUs), timed from
                        reading the pending list to the worker pool having shut down (includes
                        spawning the workers). Not included: Python start-up / create_app / the
                        public tree / the pool clean-up (see upgrade_noop_* for those).
upgrade_per_tenant_ms   upgrade_one_migration_s / tenants.
upgrade_first_result_s  from the start of that timing to the first schema reported done
                        (≈ worker spawn + first chunk), and upgrade_steady_per_tenant_ms the
                        rate after it.
upgrade_one_migration_cli_s  extra: a second new migration (bench_note2) applied by the real
                        `dealdocs` CLI entry point (saas.cli.main, `db upgrade`) in a subprocess,
                        end to end, with migrations.TENANT pointed at a second temp copy before
                        the app is imported (the only change from the console script).
baseline_add_column_s   bare PostgreSQL: one psycopg connection, autocommit, one
                        `ALTER TABLE "t_X".settings ADD COLUMN bench_bare text` per schema,
                        sequentially (no version bookkeeping). ratio_vs_bare_alter =
                        upgrade_one_migration_s / baseline_add_column_s.
baseline_add_column_with_version_s  extra: the same, but each schema in its own transaction
                        with an UPDATE of its alembic_version row too (what a migration writes).
"""
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402

VENV_BIN = Path(sys.executable).parent
DEALDOCS = VENV_BIN / "dealdocs"

# The real CLI entry point, with the tenant migrations location swapped before anything
# imports it (saas.maintenance reads migrations.TENANT at import time).
CLI_WITH_LOCATION = textwrap.dedent("""
    import sys
    import migrations
    migrations.TENANT = sys.argv.pop(1)
    from saas.cli import main
    sys.argv[0] = "dealdocs"
    main()
""")

REVISION_FILE = '''"""Benchmark-only: {doc}

Revision ID: {revision}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("settings", sa.Column("{column}", sa.Text))


def downgrade() -> None:
    op.drop_column("settings", "{column}")
'''


def migrations_copy(source: str, target: Path, added: list[tuple[str, str]]) -> str:
    """Copy a migrations location and append revisions (revision id, column) after its head."""
    from alembic.script import ScriptDirectory

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    down = ScriptDirectory(source).get_current_head()
    for n, (revision, column) in enumerate(added, start=2):
        (target / "versions" / f"{n:04d}_{revision}.py").write_text(REVISION_FILE.format(
            doc=f"add settings.{column}", revision=revision, down=down, column=column))
        down = revision
    return str(target)


def wall(command: list[str], env: dict, cwd: Path, expect: str | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    output = result.stdout + result.stderr
    if result.returncode != 0 or (expect and expect not in output):
        raise RuntimeError(f"{command[:3]} exited {result.returncode}, expected {expect!r}:\n{output[-2000:]}")
    return elapsed, output


def schema_list(app) -> list[str]:
    from tenants.db import db
    from tenants.models import schema_name

    with app.app_context(), db.engine.connect() as connection:
        return [schema_name(i) for i in connection.execute(text("SELECT id FROM public.tenants ORDER BY id")).scalars()]


def bare_alter(database_url: str, schemas: list[str], column: str, with_version: bool) -> float:
    with psycopg.connect(database_url, autocommit=True) as connection:
        started = time.perf_counter()
        for schema in schemas:
            if with_version:
                with connection.transaction():
                    connection.execute(f'ALTER TABLE "{schema}".settings ADD COLUMN {column} text')
                    connection.execute(f'UPDATE "{schema}".alembic_version SET version_num = version_num')
            else:
                connection.execute(f'ALTER TABLE "{schema}".settings ADD COLUMN {column} text')
        return time.perf_counter() - started


def count_columns(app, column: str) -> int:
    from tenants.db import db

    with app.app_context(), db.engine.connect() as connection:
        return connection.execute(text(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema LIKE 't\\_%' "
            "AND table_name = 'settings' AND column_name = :c"), {"c": column}).scalar()


def revisions_at(app, location: str, schemas: list[str]) -> int:
    from tenants.db import db
    from tenants.migrate import pending_tenants

    with app.app_context(), db.engine.connect() as connection:
        return len(schemas) - len(pending_tenants(connection, location))


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[1])
    c.sigterm_as_exit()
    quick = args.quick
    tenants = args.tenants or (150 if quick else 1000)
    run_started = time.perf_counter()
    load_start = c.loadavg()
    figures: dict = {}

    with c.temp_dir() as tmp, c.scratch_database() as database_url:
        tmp = Path(tmp)
        app = c.make_bench_app(database_url, tmp)
        from migrations import TENANT
        from saas.maintenance import upgrade_everything
        from tenants.db import db
        from tenants.migrate import pending_tenants, upgrade_tenant_schemas

        log = c.log
        try:
            jobs = app.config["MIGRATION_JOBS"]
            log(f"mode={'quick' if quick else 'full'} tenants={tenants} MIGRATION_JOBS={jobs} (cpus={os.cpu_count()})")
            c.upgrade_public(app)
            log(f"seeding {tenants} tenants through sign_up() (hash precomputed)…")
            seed_s = c.seed_tenants(app, tenants)
            schemas = schema_list(app)
            assert len(schemas) == tenants
            log(f"seeded in {seed_s:.1f} s")
            env = c.cli_env(database_url, tmp)

            log("python start-up and CLI import floors × 3…")
            startup = [wall([sys.executable, "-c", "pass"], env, tmp)[0] for _ in range(3)]
            imports = [wall([sys.executable, "-c", "import saas.cli"], env, tmp)[0] for _ in range(3)]

            log("`dealdocs db upgrade` once to settle (seeding left the schema pool empty)…")
            wall([str(DEALDOCS), "db", "upgrade"], env, tmp)
            log("`dealdocs db upgrade` with nothing to apply × 3 (subprocess)…")
            noop_runs = []
            for _ in range(3):
                elapsed, output = wall([str(DEALDOCS), "db", "upgrade"], env, tmp,
                                       expect="Nothing to upgrade")
                noop_runs.append(elapsed)
                log(f"  {elapsed:.2f} s: {output.strip().splitlines()[-1]}")

            log("upgrade_everything() in-process, nothing to apply × 3…")
            inproc = []
            with app.app_context():
                for _ in range(3):
                    started = time.perf_counter()
                    failed = upgrade_everything(jobs, echo=lambda message: log(f"  {message}"))
                    inproc.append(time.perf_counter() - started)
                    assert not failed

            log(f"bare baseline: ALTER TABLE … ADD COLUMN over one connection × {tenants} schemas…")
            baseline = bare_alter(database_url, schemas, "bench_bare", with_version=False)
            log(f"  {baseline:.2f} s")

            revision_a, revision_b = f"bench_{c.RUN_ID}_a", f"bench_{c.RUN_ID}_b"
            location_a = migrations_copy(TENANT, tmp / "tenant_a", [(revision_a, "bench_note")])
            location_b = migrations_copy(TENANT, tmp / "tenant_b",
                                         [(revision_a, "bench_note"), (revision_b, "bench_note2")])

            log(f"one new migration across {tenants} tenants (pending_tenants + upgrade_tenant_schemas, "
                f"jobs={jobs})…")
            url = None
            done_at: list[float] = []
            with app.app_context():
                url = db.engine.url.render_as_string(hide_password=False)
                started = time.perf_counter()
                with db.engine.connect() as connection:
                    pending = pending_tenants(connection, location_a)
                summary = upgrade_tenant_schemas(
                    url, location_a, pending, jobs=jobs,
                    on_progress=lambda schema, error: done_at.append(time.perf_counter()))
                one = time.perf_counter() - started
            assert len(pending) == tenants and not summary.failed, (len(pending), summary.failed)
            assert len(summary.upgraded) == tenants
            assert count_columns(app, "bench_note") == tenants
            assert revisions_at(app, location_a, schemas) == tenants
            first_result = done_at[0] - started
            steady = (done_at[-1] - done_at[0]) / max(1, len(done_at) - 1)
            log(f"  {one:.2f} s ({one / tenants * 1000:.2f} ms/tenant; first result after {first_result:.2f} s)")

            log("extra: bare baseline with the version row, one transaction per schema…")
            baseline_v = bare_alter(database_url, schemas, "bench_bare2", with_version=True)
            log(f"  {baseline_v:.2f} s")

            log("extra: a second migration through the real CLI entry point (location swapped)…")
            cli_one, output = wall([sys.executable, "-c", CLI_WITH_LOCATION, location_b, "db", "upgrade"],
                                   env, tmp, expect=f"{tenants} upgraded, 0 failed")
            assert count_columns(app, "bench_note2") == tenants
            assert revisions_at(app, location_b, schemas) == tenants
            log(f"  {cli_one:.2f} s: {output.strip().splitlines()[-1]}")

            figures = {
                "mode": "quick" if quick else "full",
                "tenants": tenants,
                "jobs": jobs,
                "seed_s": c.rnd(seed_s, 2),
                "upgrade_one_migration_s": c.rnd(one),
                "upgrade_per_tenant_ms": c.ms(one / tenants),
                "upgrade_first_result_s": c.rnd(first_result),
                "upgrade_steady_per_tenant_ms": c.ms(steady),
                "upgrade_one_migration_cli_s": c.rnd(cli_one),
                "upgrade_noop_s": c.rnd(c.p50(noop_runs)),
                "upgrade_noop_runs_s": [c.rnd(x) for x in noop_runs],
                "upgrade_noop_inprocess_s": c.rnd(c.p50(inproc)),
                "python_startup_s": c.rnd(c.p50(startup)),
                "import_cli_s": c.rnd(c.p50(imports)),
                "baseline_add_column_s": c.rnd(baseline),
                "baseline_add_column_with_version_s": c.rnd(baseline_v),
                "ratio_vs_bare_alter": c.rnd(one / baseline, 2),
                "cpus": os.cpu_count(),
                "loadavg_start": load_start,
                "loadavg_end": c.loadavg(),
                "postgres": c.server_settings(app),
            }
        finally:
            c.release_app(app)
    c.finish(figures, run_started)


if __name__ == "__main__":
    main()
