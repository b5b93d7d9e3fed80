"""Running the two Alembic trees: public once, tenant once per schema, in parallel.

Migrations run through MigrationContext directly (no env.py round trip per schema): the
script directory is loaded once per process and each schema costs one transaction.
"""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text

VERSION_TABLE = "alembic_version"


@lru_cache(maxsize=8)
def script_directory(location: str) -> ScriptDirectory:
    return ScriptDirectory(location)


def head_revision(location: str) -> str:
    return script_directory(location).get_current_head()


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def scope_search_path(connection: Connection, schema: str) -> None:
    """Point the current transaction (only) at `schema`, with public behind it for extensions."""
    path = schema if schema == "public" else f"{quote_ident(schema)}, public"
    connection.execute(text("SELECT set_config('search_path', :path, true)"), {"path": path})


def upgrade_schema(connection: Connection, location: str, schema: str) -> list[str]:
    """Upgrade `schema` to head inside the caller's transaction; returns the revisions applied."""
    script = script_directory(location)
    scope_search_path(connection, schema)
    applied: list[str] = []
    context = MigrationContext.configure(
        connection,
        opts={
            "script": script,
            "version_table_schema": schema,
            "fn": lambda heads, ctx: script._upgrade_revs("head", heads),
            "on_version_apply": [lambda ctx, step, heads, run_args: applied.append(step.up_revision_id)],
        },
    )
    with Operations.context(context):
        context.run_migrations()
    return applied


def stamp_head(connection: Connection, location: str, schema: str) -> None:
    context = MigrationContext.configure(connection, opts={"version_table_schema": schema})
    context.stamp(script_directory(location), "head")


def schema_revisions(connection: Connection, schemas: list[str]) -> dict[str, str | None]:
    """Each schema's recorded revision, read in a few round trips whatever the count."""
    revisions: dict[str, str | None] = dict.fromkeys(schemas)
    for start in range(0, len(schemas), 500):
        chunk = schemas[start : start + 500]
        query = " UNION ALL ".join(
            f"SELECT {i} AS i, version_num FROM {quote_ident(s)}.{VERSION_TABLE}"
            for i, s in enumerate(chunk)
        )
        for i, version in connection.execute(text(query)):
            revisions[chunk[i]] = version
    return revisions


@dataclass
class UpgradeSummary:
    upgraded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


# --- parallel tenant upgrades -------------------------------------------------------------
# Alembic's `op` is a process-wide proxy, so parallel upgrades need processes, not threads.
# Workers are spawned (not forked) so they never inherit the parent's pooled connections.

_worker_engine = None
_worker_location = None


def _init_worker(url: str, location: str) -> None:
    global _worker_engine, _worker_location
    _worker_engine = create_engine(url, pool_size=1, max_overflow=0)
    _worker_location = location
    script_directory(location)


def _upgrade_one(schema: str) -> tuple[str, str | None]:
    try:
        with _worker_engine.begin() as connection:
            upgrade_schema(connection, _worker_location, schema)
        return schema, None
    except Exception as exc:  # one tenant's failure must not stop the others
        return schema, f"{type(exc).__name__}: {exc}".strip()


def pending_schemas(connection: Connection, location: str, schemas: list[str]) -> list[str]:
    """The schemas whose recorded revision is not the head of `location`."""
    head = head_revision(location)
    return [s for s, revision in schema_revisions(connection, schemas).items() if revision != head]


def upgrade_tenant_schemas(
    url: str,
    location: str,
    pending: list[str],
    *,
    jobs: int,
    on_progress: Callable[[str, str | None], None] = lambda schema, error: None,
) -> UpgradeSummary:
    """Upgrade `pending` schemas in parallel processes, one transaction each.

    A failure is recorded and the others go on; rerunning resumes with what is left.
    """
    summary = UpgradeSummary()
    jobs = max(1, min(jobs, len(pending)))
    chunksize = max(1, min(16, len(pending) // (jobs * 4)))
    with ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(url, location),
    ) as pool:
        for schema, error in pool.map(_upgrade_one, pending, chunksize=chunksize):
            if error:
                summary.failed[schema] = error
            else:
                summary.upgraded.append(schema)
            on_progress(schema, error)
    return summary
