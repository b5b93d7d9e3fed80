"""Benchmark: tenant provisioning and HTTP sign-up with N existing tenants.

    python bench/provisioning.py [--quick] [--tenants N]

Creates and finally drops its own database (dealdocs_bench_<random>) on DATABASE_URL's server
(default postgresql://postgres@127.0.0.1:5432), uses REDIS_URL (default redis://127.0.0.1:6379/0).
Progress goes to stderr; the figures are the last line of stdout, one JSON object.

What each figure includes
-------------------------
existing_tenants        tenants in the registry (each with its t_<id> schema at head) before
                        the timed samples begin; every sample adds one more.
seed_s                  creating them: the real sign_up() service in a loop, password hash
                        precomputed (see _common.precomputed_password_hash), pool empty so each
                        schema is built inline from metadata; one transaction per tenant.
provision_p50/p95_ms    ONE TRANSACTION mirroring sign_up()'s: INSERT tenant (flush), claim a
                        pooled schema + ALTER SCHEMA … RENAME (tenants.provisioning.
                        create_tenant_schema), INSERT user (precomputed Argon2id hash) +
                        membership, COMMIT, on a fresh Flask-SQLAlchemy session (pool checkout,
                        pre-ping, search_path). sign_up() takes no precomputed hash, so this
                        transaction is written here with the same models and calls, and does
                        not include sign_up()'s e-mail validation, its two look-up SELECTs or the
                        Redis enqueue of the refill job (those are in provision_signup_service_*).
                        The pool is refilled to TENANT_POOL_SIZE (fill_pool) after every sample,
                        outside the timing: steady state.
provision_built_*       the same transaction with the pool empty: create_tenant_schema falls
                        back to building the schema from metadata (create_all + alembic stamp).
provision_signup_service_*  the real saas.auth.services.sign_up() call, pool kept full, with
                        its hash_password swapped for a precomputed hash (everything else real:
                        validation, look-ups, transaction, commit, enqueue of the refill job).
signup_http_p50/p95_ms  POST /api/v1/signup with JSON to a real waitress server (thread in this
                        process, 127.0.0.1, free port, one keep-alive client connection), timed
                        on the client: Argon2id hashing, the sign-up transaction, the API token
                        commit, rate limiting in Redis, the job enqueue, JSON out. The pool is
                        refilled synchronously between requests, outside the timing (no worker
                        runs; the queued refill jobs are discarded at the end).
password_hash_p50_ms    hash_password() alone (Argon2id, m=46 MiB t=1 p=1), for reference.
replay_ms               p50 of: CREATE SCHEMA + tenants.migrate.upgrade_schema(connection,
                        migrations.TENANT, schema) + COMMIT in one transaction (engine.begin),
                        samples taken half before and half after the other measurements.
"""
import http.client
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
from sqlalchemy import text  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drain_pool(app) -> None:
    from tenants.db import db

    with app.app_context(), db.engine.begin() as connection:
        for name in connection.execute(text("DELETE FROM public.schema_pool RETURNING name")).scalars():
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))


def refill(app) -> None:
    from tenants.db import db
    from tenants.provisioning import fill_pool

    with app.app_context():
        fill_pool(db.engine, app.config["TENANT_POOL_SIZE"])


def check_tenant(app, tenant_id: int, slug: str, email: str, sign_in: bool) -> None:
    """Outside the timing: the schema is at head, the owner is a member (and can sign in)."""
    from migrations import TENANT
    from saas.auth.services import authenticate
    from tenants.db import db
    from tenants.migrate import head_revision
    from tenants.models import TenantRef

    with app.app_context():
        with db.engine.connect() as connection:
            version = connection.execute(text(f'SELECT version_num FROM "t_{tenant_id}".alembic_version')).scalar()
            member = connection.execute(text(
                "SELECT count(*) FROM public.memberships m JOIN public.users u ON u.id = m.user_id "
                "WHERE m.tenant_id = :t AND u.email = :e AND m.role = 'owner' AND m.active"),
                {"t": tenant_id, "e": email}).scalar()
        assert version == head_revision(TENANT), (tenant_id, version)
        assert member == 1, (tenant_id, member)
        if sign_in:
            ref = TenantRef(tenant_id, None, "", slug, "active")
            authenticate(ref, email, c.PASSWORD)  # raises Unauthorized if the owner cannot sign in
            db.session.remove()


def provision_once(app, label: str, i: int, password_hash: str, expect: str) -> float:
    """The sign-up transaction (mirroring sign_up(), hash precomputed); returns seconds."""
    from saas.auth.models import Membership, Role, User
    from tenants.db import db
    from tenants.models import Tenant
    from tenants.provisioning import create_tenant_schema

    slug = f"{label}-{i}-{c.RUN_ID}"
    email = f"owner@{slug}.example.com"
    with app.app_context():
        db.session.remove()  # a fresh session, as each request gets
        started = time.perf_counter()
        tenant = Tenant(name=f"Bench {label} {i}", slug=slug)
        db.session.add(tenant)
        db.session.flush()
        tenant_id = tenant.id
        how = create_tenant_schema(db.session.connection(), tenant_id)
        user = User(email=email, name=f"Owner {i}", password_hash=password_hash, locale=None)
        db.session.add(user)
        db.session.add(Membership(user=user, tenant_id=tenant_id, role=Role.OWNER))
        db.session.commit()
        elapsed = time.perf_counter() - started
        db.session.remove()
    assert how == expect, (how, expect)
    check_tenant(app, tenant_id, slug, email, sign_in=i in (0,))
    return elapsed


def sign_up_service_once(app, i: int) -> float:
    from saas.auth.services import sign_up
    from tenants.db import db

    slug = f"svc-{i}-{c.RUN_ID}"
    email = f"owner@{slug}.example.com"
    with app.app_context():
        db.session.remove()
        started = time.perf_counter()
        tenant, _user = sign_up(company_name=f"Svc {i}", slug=slug, email=email, password=c.PASSWORD,
                                owner_name=f"Owner {i}")
        elapsed = time.perf_counter() - started
        db.session.remove()
    check_tenant(app, tenant.id, slug, email, sign_in=False)
    return elapsed


def replay_once(app, i: int) -> float:
    from migrations import TENANT
    from tenants.db import db
    from tenants.migrate import upgrade_schema

    name = f"bench_replay_{i}_{c.RUN_ID}"
    with app.app_context():
        started = time.perf_counter()
        with db.engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
            applied = upgrade_schema(connection, TENANT, name)
        elapsed = time.perf_counter() - started
        with db.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    assert applied, "replay applied no migration"
    return elapsed


class Server:
    """The app under waitress on 127.0.0.1 in a daemon thread (like `dealdocs serve`)."""

    def __init__(self, app, port: int):
        from waitress import create_server

        self.port = port
        self.server = create_server(app, host="127.0.0.1", port=port, threads=8, ident="DealDocs")
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def close(self):
        self.server.close()


def http_sign_up(connection: http.client.HTTPConnection, host: str, i: int) -> tuple[float, dict]:
    slug = f"http-{i}-{c.RUN_ID}"
    body = json.dumps({"company_name": f"Http {i}", "slug": slug, "email": f"owner@{slug}.example.com",
                       "password": c.PASSWORD, "owner_name": f"Owner {i}"})
    started = time.perf_counter()
    connection.request("POST", "/api/v1/signup", body=body,
                       headers={"Host": host, "Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 201:
        raise RuntimeError(f"sign-up answered {response.status}: {payload[:300]!r}")
    return elapsed, json.loads(payload)


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[1])
    c.sigterm_as_exit()
    quick = args.quick
    tenants = args.tenants or (100 if quick else 1000)
    n_pool = 30 if quick else 200
    n_built = 10 if quick else 40
    n_service = 15 if quick else 100
    n_http = 15 if quick else 100
    n_replay = 8 if quick else 20
    n_hash = 5 if quick else 20
    run_started = time.perf_counter()
    load_start = c.loadavg()
    port = free_port()
    figures: dict = {}

    with c.temp_dir() as tmp, c.scratch_database() as database_url:
        tmp = Path(tmp)
        app = c.make_bench_app(database_url, tmp, SERVER_NAME=f"localhost:{port}")
        server = None
        try:
            from migrations import TENANT
            from saas.auth.passwords import hash_password
            from tenants.migrate import head_revision

            log = c.log
            log(f"mode={'quick' if quick else 'full'} tenants={tenants} pool_size={app.config['TENANT_POOL_SIZE']}")
            c.upgrade_public(app)
            log(f"seeding {tenants} tenants through sign_up() (hash precomputed, schemas built inline)…")
            seed_s = c.seed_tenants(app, tenants)
            existing = c.tenant_count(app)
            assert existing == tenants, (existing, tenants)
            log(f"seeded in {seed_s:.1f} s ({seed_s / tenants * 1000:.1f} ms/tenant); head {head_revision(TENANT)}")

            replay: list[float] = []
            log(f"replay × {n_replay // 2} (first half)…")
            replay_once(app, -1)  # warm-up: loads the script directory, not counted
            for i in range(n_replay // 2):
                replay.append(replay_once(app, i))

            password_hash = hash_password(c.PASSWORD)
            hashing = []
            for _ in range(n_hash):
                started = time.perf_counter()
                hash_password(c.PASSWORD)
                hashing.append(time.perf_counter() - started)

            log(f"provisioning from the pool × {n_pool} (refilled after each, untimed)…")
            refill(app)
            provision_once(app, "warm", 0, password_hash, "pool")  # warm-up, not counted
            refill(app)
            pooled = []
            for i in range(n_pool):
                pooled.append(provision_once(app, "pool", i, password_hash, "pool"))
                refill(app)
            log(f"  pool p50 {c.p50(pooled) * 1000:.1f} ms, p95 {c.p95(pooled) * 1000:.1f} ms")

            log(f"provisioning with an empty pool (built from metadata) × {n_built}…")
            drain_pool(app)
            built = [provision_once(app, "built", i, password_hash, "built") for i in range(n_built)]
            log(f"  built p50 {c.p50(built) * 1000:.1f} ms")

            log(f"sign_up() service, hash precomputed, pool full × {n_service}…")
            refill(app)
            service = []
            with c.precomputed_password_hash():
                for i in range(n_service):
                    service.append(sign_up_service_once(app, i))
                    refill(app)
            log(f"  service p50 {c.p50(service) * 1000:.1f} ms")

            log(f"HTTP sign-up × {n_http} against waitress on 127.0.0.1:{port}…")
            refill(app)
            server = Server(app, port)
            host = f"localhost:{port}"
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            first, _ = http_sign_up(connection, host, -1)  # warm-up (lazy init), not counted
            refill(app)
            http_times = []
            for i in range(n_http):
                elapsed, payload = http_sign_up(connection, host, i)
                assert payload["token"].startswith("dd_") and payload["tenant"]["id"], payload
                http_times.append(elapsed)
                if i in (0, n_http - 1):
                    check_tenant(app, payload["tenant"]["id"], payload["tenant"]["slug"],
                                 f"owner@{payload['tenant']['slug']}.example.com", sign_in=True)
                refill(app)
            connection.close()
            log(f"  http p50 {c.p50(http_times) * 1000:.1f} ms (first request {first * 1000:.0f} ms)")

            log(f"replay × {n_replay - n_replay // 2} (second half)…")
            for i in range(n_replay // 2, n_replay):
                replay.append(replay_once(app, i))
            replay_ms = c.p50(replay) * 1000

            figures = {
                "mode": "quick" if quick else "full",
                "existing_tenants": existing,
                "tenants_at_end": c.tenant_count(app),
                "seed_s": c.rnd(seed_s, 2),
                "seed_per_tenant_ms": c.ms(seed_s / tenants),
                "provision_p50_ms": c.ms(c.p50(pooled)),
                "provision_p95_ms": c.ms(c.p95(pooled)),
                "provision_built_p50_ms": c.ms(c.p50(built)),
                "provision_built_p95_ms": c.ms(c.p95(built)),
                "provision_signup_service_p50_ms": c.ms(c.p50(service)),
                "provision_signup_service_p95_ms": c.ms(c.p95(service)),
                "signup_http_p50_ms": c.ms(c.p50(http_times)),
                "signup_http_p95_ms": c.ms(c.p95(http_times)),
                "signup_http_first_ms": c.ms(first),
                "password_hash_p50_ms": c.ms(c.p50(hashing)),
                "replay_ms": round(replay_ms, 2),
                "provision_ratio_vs_replay": c.rnd(c.p50(pooled) * 1000 / replay_ms),
                "provision_built_ratio_vs_replay": c.rnd(c.p50(built) * 1000 / replay_ms),
                "signup_ratio_vs_replay": c.rnd(c.p50(http_times) * 1000 / replay_ms),
                "samples": {"provision": n_pool, "built": n_built, "service": n_service, "http": n_http,
                            "replay": n_replay},
                "pool_size": app.config["TENANT_POOL_SIZE"],
                "pool_refill": "synchronous fill_pool() between samples, untimed",
                "cpus": os.cpu_count(),
                "loadavg_start": load_start,
                "loadavg_end": c.loadavg(),
                "postgres": c.server_settings(app),
            }
        finally:
            if server is not None:
                server.close()
            c.release_app(app)
    c.finish(figures, run_started)


if __name__ == "__main__":
    main()
