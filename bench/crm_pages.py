"""Benchmark: the deal card, a custom-field-filtered deal list and the deal board at 100k deals.

    python bench/crm_pages.py [--quick] [--explain] [--profile]

Creates and finally drops its own database (dealdocs_bench_<random>) on DATABASE_URL's server
(default postgresql://postgres@127.0.0.1:5432), uses REDIS_URL (default redis://127.0.0.1:6379/0).
Progress goes to stderr; a table of the figures, then the figures as one JSON object on the
last line of stdout. Diagnostics, to stderr, after the timed samples: --explain prints EXPLAIN
(ANALYZE, BUFFERS) of each page's slowest statements, --profile a cProfile of 10 requests per page.

The data
--------
10 tenants through the real sign_up() service (hash precomputed). Each gets, through the real
services: the default deal pipeline (services.pipelines()), a second pipeline "Projects"
(admin.create_pipeline), five deal custom fields (admin.create_custom_field: list "region" with
12 items, number "probability", date "contract_date", money "budget", text "source_note") and
9 more members (users + memberships, like tests/test_people.py add_person). Then set-based SQL
(INSERT … SELECT generate_series, explicit ids, setval) fills its schema t_<id>:
  big tenant (the first)  100k companies, 200k contacts, 100k deals (--quick: a tenth);
  9 others                300 companies, 400 contacts, 200 deals each.
Contacts belong to a company (5% to two); 90% of deals have a company and one or two of its
contacts; 80% of deals are in the default pipeline (stages New 25%, Proposal 20%, Negotiation
15%, Contract 10%, Won 18%, Lost 12%), 20% in "Projects"; responsible ids spread over the 10
members; custom values in `custom` JSONB (region skewed: the commonest item ~29% of deals, the
rarest ~4%; not every deal has every field); line items on ~30% of deals (amount = their total);
audit_log: one "create" per company and contact, per deal a "create" plus 0-3 stage/update
entries, with refs deal:/company:/contact: as the services write them. Then VACUUM ANALYZE of
every seeded table (the machine's PostgreSQL runs with autovacuum off; a production server's
autovacuum would have done both after such inserts), and of public.tenants, users, memberships.

What each figure includes
-------------------------
deal_card_*       GET /deals/<id>, random live deal ids of the big tenant.
deal_list_*       GET /deals?custom.region=<item id>, the 12 items in turn (default sort and page).
board_*           GET /deals/board/<id> of the default pipeline (80% of the deals).
  *_p50_ms/_p95_ms   the page through the real app (create_app on the scratch database), via the
                  Flask test client IN-PROCESS (no HTTP server or socket: WSGI call to the
                  response body read), signed in as the big tenant's owner through the sign-in
                  form; everything the request does: tenant lookup, session, queries, rendering.
  *_bare_p50_ms/_p95_ms  the SAME SQL statements with the same parameters, as the request sent
                  them (captured with SQLAlchemy's before_cursor_execute on the app's engine
                  during that very request), replayed right after it on one raw psycopg
                  connection (search_path = the tenant's schema, public) in one transaction,
                  fetching every row; timed from the first execute to the commit. Not in it:
                  what the event does not see (the pool's pre-ping, BEGIN/COMMIT of the app's
                  own transactions, 2-3 pool checkouts per request): that stays page overhead.
  *_ratio         page p50 / bare p50 (the aim: ≤ 3, and page p95 < 150 ms).
  *_statements    SQL statements per request (median); *_max_repeat the most times one
                  statement text ran in one request (N+1 queries show up there).
Each page gets a few untimed warm-up requests first; samples alternate page, replay.
Samples: 300 cards, 240 lists, 100 boards (--quick: 40, 36, 20).
"""
import argparse
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import event, select, text  # noqa: E402
from tqdm import tqdm  # noqa: E402

SMALL = (300, 400, 200)  # companies, contacts, deals of each of the 9 other tenants
OTHER_TENANTS = 9
MEMBERS = 9  # besides the owner: 10 responsible people
CHUNK = 10_000  # rows per INSERT … SELECT

REGIONS = ["Moscow", "Saint Petersburg", "Novosibirsk", "Yekaterinburg", "Kazan", "Nizhny Novgorod",
           "Chelyabinsk", "Samara", "Omsk", "Rostov-on-Don", "Ufa", "Krasnoyarsk"]
MAIN_STAGE_SHARES = [0.25, 0.20, 0.15, 0.10, 0.18, 0.12]  # New … Contract, Won, Lost
PROJECT_STAGES = [("Brief", "open"), ("Estimate", "open"), ("In work", "open"), ("Done", "won"),
                  ("Cancelled", "lost")]
PROJECT_STAGE_SHARES = [0.25, 0.20, 0.25, 0.20, 0.10]
WORDS = {
    "forms": ["LLC", "JSC", "PJSC", "IE", "CJSC", "Ltd"],
    "company_words": ["Vector", "Alpha", "Granit", "Severstal", "Volga", "Ural", "Baikal", "Polyus", "Orion",
                      "Sibir", "Kama", "Neva", "Atlant", "Zenit", "Meridian", "Avangard", "Kristall",
                      "Progress", "Signal", "Energia", "Tekhnika", "Stroy", "Trans", "Agro", "Med"],
    "cities": REGIONS,
    "streets": ["Lenina", "Mira", "Sadovaya", "Tverskaya", "Pushkina", "Gagarina", "Sovetskaya", "Lesnaya"],
    "first_names": ["Ivan", "Anna", "Sergey", "Olga", "Dmitry", "Elena", "Alexey", "Maria", "Pavel", "Natalia",
                    "Andrey", "Tatiana", "Mikhail", "Irina", "Nikolay", "Svetlana", "Yuri", "Ekaterina"],
    "last_names": ["Ivanov", "Petrova", "Sidorov", "Smirnova", "Kuznetsov", "Popova", "Vasiliev", "Sokolova",
                   "Mikhailov", "Novikova", "Fedorov", "Morozova", "Volkov", "Alekseeva", "Lebedev", "Orlova"],
    "positions": ["Director", "Chief accountant", "Purchasing manager", "Lawyer", "Engineer", "CFO",
                  "Head of sales", "Office manager"],
    "deal_words": ["Supply of equipment", "Annual service contract", "Software licences", "Consulting",
                   "Installation works", "Spare parts", "Logistics services", "Audit", "Training",
                   "Construction materials", "Maintenance", "Pilot project"],
    "products": ["Server rack", "Laptop", "Licence, 1 year", "Installation", "Support hours", "Cable, 100 m",
                 "Printer", "Consulting day", "Delivery", "Training course"],
    "notes": ["Came from the exhibition", "Recommended by a partner", "Call back in a month",
              "Tender on the portal", "Repeat customer", "Asked for a discount"],
}


def pick(name: str) -> str:
    """SQL: a random element of the text array parameter `name`."""
    array = f"%({name})s::text[]"
    return f"({array})[1 + floor(random() * cardinality({array}))::int]"


STAFF = "(%(staff)s::bigint[])[1 + floor(random() * cardinality(%(staff)s::bigint[]))::int]"
RANGE = "generate_series(%(lo)s::bigint, %(hi)s::bigint)"
CREATED = "now() - random() * interval '730 days'"

SQL_COMPANIES = f"""
INSERT INTO companies (id, name, tin, phones, emails, address, website, responsible_id, created_by,
                       created_at, updated_at)
SELECT g, {pick('forms')} || ' «' || {pick('company_words')} || ' ' || g || '»',
       CASE WHEN random() < 0.85 THEN (7700000000 + g)::text END,
       ARRAY['+7495' || lpad(mod(g * 7919, 10000000)::text, 7, '0')],
       ARRAY['info@company' || g || '.example.ru'],
       {pick('cities')} || ', ' || {pick('streets')} || ' st., ' || (1 + mod(g, 120)),
       CASE WHEN random() < 0.6 THEN 'https://company' || g || '.example.ru' END,
       {STAFF}, %(owner)s::bigint, created, created + (now() - created) * random()
FROM (SELECT g, {CREATED} AS created FROM {RANGE} g) s
"""

SQL_CONTACTS = f"""
INSERT INTO contacts (id, first_name, last_name, position, phones, emails, birthday, responsible_id, created_by,
                      created_at, updated_at)
SELECT g, {pick('first_names')}, {pick('last_names')},
       CASE WHEN random() < 0.7 THEN {pick('positions')} END,
       ARRAY['+7916' || lpad(mod(g * 104729, 10000000)::text, 7, '0')],
       ARRAY['person' || g || '@mail.example.ru'],
       CASE WHEN random() < 0.3 THEN date '1960-01-01' + floor(random() * 15000)::int END,
       {STAFF}, %(owner)s::bigint, created, created + (now() - created) * random()
FROM (SELECT g, {CREATED} AS created FROM {RANGE} g) s
"""

# Contact k works at company ((k - 1) mod companies) + 1, so company c's contacts are c, c + companies, …
SQL_CONTACT_COMPANIES = f"""
INSERT INTO contact_companies (contact_id, company_id)
SELECT g, 1 + mod(g - 1, %(companies)s::bigint) FROM {RANGE} g
UNION ALL
SELECT g, 1 + floor(random() * %(companies)s)::bigint FROM {RANGE} g WHERE random() < 0.05
ON CONFLICT DO NOTHING
"""

SQL_DEALS = f"""
INSERT INTO deals (id, title, amount, currency, pipeline_id, stage_id, company_id, close_date, stage_changed_at,
                   responsible_id, custom, created_by, created_at, updated_at, notes)
SELECT g, {pick('deal_words')} || ' #' || g,
       round((1000 + random() * random() * 3000000)::numeric, 2), 'RUB',
       CASE WHEN main THEN %(main_pipeline)s::bigint ELSE %(second_pipeline)s::bigint END,
       CASE WHEN main THEN (%(main_stages)s::bigint[])[width_bucket(r_stage, %(main_bounds)s::float8[])]
            ELSE (%(second_stages)s::bigint[])[width_bucket(r_stage, %(second_bounds)s::float8[])] END,
       CASE WHEN random() < 0.9 THEN 1 + floor(random() * %(companies)s)::bigint END,
       CASE WHEN random() < 0.8 THEN current_date + (floor(random() * 300)::int - 60) END,
       created + (now() - created) * random() * 0.5,
       {STAFF},
       jsonb_strip_nulls(jsonb_build_object(
           'region', CASE WHEN random() < 0.95 THEN (%(region_items)s::int[])[
                              1 + floor(cardinality(%(region_items)s::int[]) * power(random(), 2))::int] END,
           'probability', CASE WHEN random() < 0.9 THEN (floor(random() * 11) * 10)::int END,
           'contract_date', CASE WHEN random() < 0.6
                                 THEN to_char(current_date - floor(random() * 365)::int, 'YYYY-MM-DD') END,
           'budget', CASE WHEN random() < 0.7
                          THEN to_char(round((random() * 2000000)::numeric, 2), 'FM9999999990.00') END,
           'source_note', CASE WHEN random() < 0.3 THEN {pick('notes')} END)),
       %(owner)s::bigint, created, created + (now() - created) * (0.5 + random() * 0.5),
       CASE WHEN random() < 0.2 THEN {pick('notes')} END
FROM (SELECT g, random() < 0.8 AS main, random() AS r_stage, {CREATED} AS created FROM {RANGE} g) s
"""

# A deal with a company has that company's first contact (90%) and its second (35%), else a random one.
SQL_DEAL_CONTACTS = """
INSERT INTO deal_contacts (deal_id, contact_id)
SELECT id, coalesce(company_id, 1 + floor(random() * %(contacts)s)::bigint)
FROM deals WHERE id BETWEEN %(lo)s::bigint AND %(hi)s::bigint AND random() < 0.9
UNION ALL
SELECT id, company_id + %(companies)s::bigint
FROM deals WHERE id BETWEEN %(lo)s::bigint AND %(hi)s::bigint AND company_id IS NOT NULL
             AND company_id + %(companies)s::bigint <= %(contacts)s::bigint AND random() < 0.35
ON CONFLICT DO NOTHING
"""

SQL_DEAL_ITEMS = f"""
INSERT INTO deal_items (deal_id, position, name, quantity, unit, price, discount, vat_rate)
SELECT d.id, n - 1, {pick('products')}, (1 + floor(random() * 10))::numeric, 'pcs',
       round((500 + random() * 50000)::numeric, 2), CASE WHEN random() < 0.2 THEN 10 ELSE 0 END, 20
FROM (SELECT id, 1 + floor(random() * 4)::int AS lines FROM deals
      WHERE id BETWEEN %(lo)s::bigint AND %(hi)s::bigint AND random() < 0.3) d
CROSS JOIN LATERAL generate_series(1, d.lines) n
"""

# Net = quantity × price less the discount, VAT on top (services.item_totals), rounded per line.
SQL_AMOUNTS_FROM_ITEMS = """
UPDATE deals d SET amount = t.total
FROM (SELECT deal_id, sum(net + round(net * vat_rate / 100, 2)) AS total
      FROM (SELECT deal_id, vat_rate, round(quantity * price * (100 - discount) / 100, 2) AS net
            FROM deal_items WHERE deal_id BETWEEN %(lo)s::bigint AND %(hi)s::bigint) lines
      GROUP BY deal_id) t
WHERE d.id = t.deal_id
"""

SQL_AUDIT_COMPANIES = """
INSERT INTO audit_log (at, user_id, entity, record_id, action, title, changes, refs)
SELECT created_at, created_by, 'company', id, 'create', name,
       jsonb_build_object('name', jsonb_build_array(NULL, name), 'tin', jsonb_build_array(NULL, tin)),
       ARRAY['company:' || id]
FROM companies WHERE id BETWEEN %(lo)s::bigint AND %(hi)s::bigint
"""

SQL_AUDIT_CONTACTS = """
INSERT INTO audit_log (at, user_id, entity, record_id, action, title, changes, refs)
SELECT created_at, created_by, 'contact', id, 'create', first_name || ' ' || last_name,
       jsonb_build_object('first_name', jsonb_build_array(NULL, first_name),
                          'last_name', jsonb_build_array(NULL, last_name)),
       ARRAY['contact:' || id, 'company:' || (1 + mod(id - 1, %(companies)s::bigint))]
FROM contacts WHERE id BETWEEN %(lo)s::bigint AND %(hi)s::bigint
"""

_DEAL_REFS = """
FROM deals d LEFT JOIN LATERAL (SELECT min(contact_id) AS contact_id FROM deal_contacts WHERE deal_id = d.id) dc ON true
"""
_DEAL_REF_ARRAY = "array_remove(ARRAY['deal:' || d.id, 'company:' || d.company_id, 'contact:' || dc.contact_id], NULL)"

SQL_AUDIT_DEALS = f"""
INSERT INTO audit_log (at, user_id, entity, record_id, action, title, changes, refs)
SELECT d.created_at, d.created_by, 'deal', d.id, 'create', d.title,
       jsonb_build_object('title', jsonb_build_array(NULL, d.title), 'amount', jsonb_build_array(NULL, d.amount::text),
                          'pipeline_id', jsonb_build_array(NULL, d.pipeline_id),
                          'responsible_id', jsonb_build_array(NULL, d.responsible_id)),
       {_DEAL_REF_ARRAY}
{_DEAL_REFS}
WHERE d.id BETWEEN %(lo)s::bigint AND %(hi)s::bigint
UNION ALL
SELECT d.created_at + (d.updated_at - d.created_at) * (n / 4.0)::float8, d.responsible_id, 'deal', d.id,
       CASE WHEN mod(n, 2) = 1 THEN 'stage' ELSE 'update' END, d.title,
       CASE WHEN mod(n, 2) = 1
            THEN jsonb_build_object('stage_id', jsonb_build_array(
                     (CASE WHEN d.pipeline_id = %(main_pipeline)s::bigint THEN %(main_stages)s::bigint[]
                           ELSE %(second_stages)s::bigint[] END)[1], d.stage_id))
            ELSE jsonb_build_object('amount', jsonb_build_array(round(d.amount * 0.8, 2)::text, d.amount::text),
                                    'close_date', jsonb_build_array(NULL, d.close_date)) END,
       {_DEAL_REF_ARRAY}
FROM (SELECT *, floor(random() * 4)::int AS events FROM deals
      WHERE id BETWEEN %(lo)s::bigint AND %(hi)s::bigint) d
LEFT JOIN LATERAL (SELECT min(contact_id) AS contact_id FROM deal_contacts WHERE deal_id = d.id) dc ON true
CROSS JOIN LATERAL generate_series(1, d.events) n
"""

SEEDED_TABLES = ("companies", "contacts", "contact_companies", "deals", "deal_contacts", "deal_items", "audit_log",
                 "pipelines", "stages", "custom_fields")


# --- the tenants ---------------------------------------------------------------------------

@dataclass
class Sizes:
    companies: int
    contacts: int
    deals: int


@dataclass
class CrmTenant:
    id: int
    slug: str
    owner_email: str
    owner_id: int
    staff: list[int] = field(default_factory=list)
    main_pipeline: int = 0
    second_pipeline: int = 0
    main_stages: list[int] = field(default_factory=list)
    second_stages: list[int] = field(default_factory=list)
    list_key: str = "region"
    region_items: list[int] = field(default_factory=list)

    @property
    def schema(self) -> str:
        return f"t_{self.id}"


def seeded_tenants(app) -> list[CrmTenant]:
    from tenants.db import db

    with app.app_context(), db.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT t.id, t.slug, u.email, u.id AS user_id FROM public.tenants t "
            "JOIN public.memberships m ON m.tenant_id = t.id AND m.role = 'owner' "
            "JOIN public.users u ON u.id = m.user_id ORDER BY t.id"))
        return [CrmTenant(row.id, row.slug, row.email, row.user_id) for row in rows]


def add_members(tenant: CrmTenant, password_hash: str) -> None:
    """Nine more people in the company (as tests/test_people.py add_person does), one an admin."""
    from saas.auth.models import Membership, Role, User
    from tenants.db import db

    tenant.staff = [tenant.owner_id]
    for i in range(1, MEMBERS + 1):
        user = User(email=f"manager{i}@{tenant.slug}.example.com", name=f"Manager {i:02d}",
                    password_hash=password_hash)
        db.session.add(user)
        db.session.add(Membership(user=user, tenant_id=tenant.id, role=Role.ADMIN if i == 1 else Role.MEMBER))
        db.session.flush()
        tenant.staff.append(user.id)


def prepare_crm(app, tenant: CrmTenant, password_hash: str) -> None:
    """Members, pipelines and deal custom fields through the real services, as the owner."""
    from saas.auth.models import Membership
    from saas.crm import admin, services
    from saas.crm.models import Entity
    from tenants.db import db
    from tenants.registry import lookup_tenant
    from tenants.scope import tenant_scope

    with app.app_context(), tenant_scope(lookup_tenant(tenant_id=tenant.id)):
        owner = db.session.scalar(select(Membership).where(
            Membership.tenant_id == tenant.id, Membership.user_id == tenant.owner_id))
        add_members(tenant, password_hash)
        main = services.pipelines(Entity.DEAL)[0]
        services.pipelines(Entity.LEAD)  # created on first use otherwise: not inside a timed GET
        second = admin.create_pipeline(owner, "Projects", [{"name": n, "kind": k} for n, k in PROJECT_STAGES])
        region = admin.create_custom_field(owner, Entity.DEAL, label="Region", type="list", items=REGIONS,
                                           key="region")
        admin.create_custom_field(owner, Entity.DEAL, label="Probability, %", type="number", key="probability")
        admin.create_custom_field(owner, Entity.DEAL, label="Contract date", type="date", key="contract_date")
        admin.create_custom_field(owner, Entity.DEAL, label="Budget", type="money", key="budget")
        admin.create_custom_field(owner, Entity.DEAL, label="Source note", type="text", key="source_note")
        db.session.flush()
        db.session.refresh(second)
        tenant.main_pipeline, tenant.second_pipeline = main.id, second.id
        tenant.main_stages = [stage.id for stage in main.stages]
        tenant.second_stages = [stage.id for stage in second.stages]
        tenant.region_items = [item["id"] for item in region.options["items"]]
        db.session.commit()
    assert len(tenant.main_stages) == len(MAIN_STAGE_SHARES), tenant.main_stages
    assert len(tenant.second_stages) == len(PROJECT_STAGE_SHARES), tenant.second_stages


def lower_bounds(shares: list[float]) -> list[float]:
    """width_bucket() thresholds: the lower bound of each share's bucket in [0, 1)."""
    bounds, total = [], 0.0
    for share in shares:
        bounds.append(round(total, 6))
        total += share
    return bounds


def seed_rows(database_url: str, tenant: CrmTenant, sizes: Sizes, progress: bool) -> dict:
    """Fill the tenant's schema with set-based SQL, chunk by chunk; returns seconds per step."""
    params = {**WORDS, "staff": tenant.staff, "owner": tenant.owner_id, "companies": sizes.companies,
              "contacts": sizes.contacts, "main_pipeline": tenant.main_pipeline,
              "second_pipeline": tenant.second_pipeline, "main_stages": tenant.main_stages,
              "second_stages": tenant.second_stages, "main_bounds": lower_bounds(MAIN_STAGE_SHARES),
              "second_bounds": lower_bounds(PROJECT_STAGE_SHARES), "region_items": tenant.region_items}
    steps = [("companies", sizes.companies, [SQL_COMPANIES]),
             ("contacts", sizes.contacts, [SQL_CONTACTS, SQL_CONTACT_COMPANIES]),
             ("deals", sizes.deals, [SQL_DEALS, SQL_DEAL_CONTACTS, SQL_DEAL_ITEMS, SQL_AMOUNTS_FROM_ITEMS]),
             ("audit: companies", sizes.companies, [SQL_AUDIT_COMPANIES]),
             ("audit: contacts", sizes.contacts, [SQL_AUDIT_CONTACTS]),
             ("audit: deals", sizes.deals, [SQL_AUDIT_DEALS])]
    seconds = {}
    with psycopg.connect(database_url, options=f"-c search_path={tenant.schema},public") as connection:
        connection.execute("SET synchronous_commit = off")
        connection.execute("SELECT setseed(%s)", [(tenant.id % 1000) / 1000])
        for table in ("companies", "contacts", "deals"):
            assert connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
        for name, total, statements in steps:
            started = time.perf_counter()
            with tqdm(total=total, desc=f"{tenant.schema} {name}", unit="rows", disable=not progress,
                      file=sys.stderr, leave=True) as bar:
                for lo in range(1, total + 1, CHUNK):
                    hi = min(total, lo + CHUNK - 1)
                    for statement in statements:
                        connection.execute(statement, {**params, "lo": lo, "hi": hi})
                    connection.commit()
                    bar.update(hi - lo + 1)
            seconds[name] = time.perf_counter() - started
        for table in ("companies", "contacts", "deals"):
            connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
        connection.commit()
    return seconds


def vacuum_analyze(database_url: str, tenants: list[CrmTenant]) -> float:
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as connection:
        for tenant in tqdm(tenants, desc="VACUUM ANALYZE", unit="schema", file=sys.stderr):
            for table in SEEDED_TABLES:
                connection.execute(f'VACUUM (ANALYZE) "{tenant.schema}".{table}')
        connection.execute("VACUUM (ANALYZE) public.tenants, public.users, public.memberships")
    return time.perf_counter() - started


def row_counts(database_url: str, tenant: CrmTenant) -> dict:
    with psycopg.connect(database_url) as connection:
        return {table: connection.execute(f'SELECT count(*) FROM "{tenant.schema}".{table}').fetchone()[0]
                for table in ("companies", "contacts", "contact_companies", "deals", "deal_contacts", "deal_items",
                              "audit_log")}


# --- pages and their statements ------------------------------------------------------------

class Capture:
    """Every statement the app's engine sends while recording (before_cursor_execute)."""

    def __init__(self, engine):
        self.engine, self.statements = engine, None
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if self.statements is not None:
            self.statements.append((statement, parameters, executemany))

    def start(self) -> None:
        self.statements = []

    def stop(self) -> list:
        statements, self.statements = self.statements, None
        return statements

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


def signed_in_client(app, tenant: CrmTenant):
    base_url = f"http://{tenant.slug}.{app.config['SERVER_NAME']}"
    client = app.test_client()
    page = client.get("/signin", base_url=base_url).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, "no CSRF token on the sign-in page"
    response = client.post("/signin", base_url=base_url, data={
        "csrf_token": token.group(1), "email": tenant.owner_email, "password": c.PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client, base_url


def route_exists(app, path: str) -> bool:
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    try:
        app.url_map.bind(app.config["SERVER_NAME"]).match(path, method="GET")
        return True
    except (NotFound, MethodNotAllowed):
        return False


@dataclass
class Sample:
    page_s: float
    bare_s: float
    statements: list  # (sql, params, executemany)
    statement_s: list  # seconds of each in the replay


@dataclass
class PageResult:
    name: str
    label: str
    samples: list[Sample] = field(default_factory=list)
    problem: str | None = None  # why the page could not be measured (not built yet, an error)

    def figures(self) -> dict:
        if self.problem or not self.samples:
            return {f"{self.name}_{key}": None for key in ("p50_ms", "p95_ms", "bare_p50_ms", "bare_p95_ms", "ratio",
                                                           "statements", "max_repeat")}
        page = [s.page_s for s in self.samples]
        bare = [s.bare_s for s in self.samples]
        counts = [len(s.statements) for s in self.samples]
        repeats = [max(Counter(sql for sql, _p, _m in s.statements).values()) for s in self.samples]
        return {f"{self.name}_p50_ms": c.ms(c.p50(page)), f"{self.name}_p95_ms": c.ms(c.p95(page)),
                f"{self.name}_bare_p50_ms": c.ms(c.p50(bare)), f"{self.name}_bare_p95_ms": c.ms(c.p95(bare)),
                f"{self.name}_ratio": c.rnd(c.p50(page) / c.p50(bare), 2),
                f"{self.name}_statements": int(c.p50(counts)), f"{self.name}_max_repeat": max(repeats)}

    def within_aim(self) -> bool | None:
        """Within 3× of its bare queries and p95 under 150 ms (the issue's aim)."""
        if self.problem or not self.samples:
            return None
        f = self.figures()
        return f[f"{self.name}_ratio"] <= 3 and f[f"{self.name}_p95_ms"] < 150

    def slowest_statements(self, top: int = 4) -> list[tuple[float, float, str, tuple]]:
        """(median ms per execution, executions per request, sql, one (params, many)) by time per request."""
        times, examples = defaultdict(list), {}
        for sample in self.samples:
            for (sql, params, many), seconds in zip(sample.statements, sample.statement_s):
                times[sql].append(seconds)
                examples.setdefault(sql, (params, many))
        rows = [(c.p50(t) * 1000, len(t) / len(self.samples), sql, examples[sql]) for sql, t in times.items()]
        return sorted(rows, key=lambda row: row[0] * row[1], reverse=True)[:top]


def replay(connection: psycopg.Connection, statements: list) -> tuple[float, list[float]]:
    """The request's statements on a bare connection, every row fetched; one transaction."""
    each = []
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for sql, params, many in statements:
            t0 = time.perf_counter()
            if many:
                cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
                if cursor.description is not None:
                    cursor.fetchall()
            each.append(time.perf_counter() - t0)
    connection.commit()
    return time.perf_counter() - started, each


def measure(client, base_url: str, capture: Capture, bare: psycopg.Connection, result: PageResult,
            paths: list[str], warmup: list[str]) -> None:
    """Warm-up requests, then each path: the page (statements captured), then its bare replay.

    A page answering anything but 200 (not built yet, or failing) is reported, not measured.
    """
    def refused(path: str, status: int) -> None:
        result.problem = f"GET {path} answered {status}"
        result.samples.clear()
        c.log(f"{result.label}: {result.problem}; not measured")

    for path in warmup:
        response = client.get(path, base_url=base_url)
        if response.status_code != 200:
            return refused(path, response.status_code)
    for path in tqdm(paths, desc=result.label, unit="req", file=sys.stderr):
        capture.start()
        started = time.perf_counter()
        response = client.get(path, base_url=base_url)
        response.get_data()
        page_s = time.perf_counter() - started
        statements = capture.stop()
        if response.status_code != 200:
            return refused(path, response.status_code)
        bare_s, each = replay(bare, statements)
        result.samples.append(Sample(page_s, bare_s, statements, each))


def explain(bare: psycopg.Connection, result: PageResult) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the page's slowest SELECTs, rolled back, to stderr."""
    for ms_each, per_request, sql, (params, many) in result.slowest_statements(3):
        if many or not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        plan = bare.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
        bare.rollback()
        c.log(f"--- {result.label}: {ms_each:.2f} ms × {per_request:g}/request\n{_short(sql, 1500)}\n"
              f"{_short(repr(params), 300)}\n" + "\n".join(_short(row[0], 300) for row in plan))


def _short(text_: str, limit: int) -> str:
    return text_ if len(text_) <= limit else text_[:limit] + " …"


def profile(client, base_url: str, result: PageResult, paths: list[str]) -> None:
    """cProfile of a few requests of the page: where the Python time goes (stderr)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for path in paths:
        client.get(path, base_url=base_url).get_data()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
    c.log(f"--- profile of {len(paths)} × {result.label}\n{out.getvalue()}")


def table(results: list[PageResult]) -> str:
    lines = [f"{'page':<44}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'bare p50':>10}{'bare p95':>10}{'ratio':>7}"
             f"{'stmts':>7}{'max rep':>8}"]
    for result in results:
        f = result.figures()
        if result.problem:
            lines.append(f"{result.label:<44} not measured: {result.problem}")
            continue
        n = result.name
        lines.append(f"{result.label:<44}{len(result.samples):>5}{f[n + '_p50_ms']:>9.1f}{f[n + '_p95_ms']:>9.1f}"
                     f"{f[n + '_bare_p50_ms']:>10.1f}{f[n + '_bare_p95_ms']:>10.1f}{f[n + '_ratio']:>7.2f}"
                     f"{f[n + '_statements']:>7}{f[n + '_max_repeat']:>8}")
    lines.append("")
    lines.append("slowest statements in the replay (median ms per execution × executions per request):")
    for result in results:
        if result.problem:
            continue
        lines.append(f"  {result.label}")
        for ms_each, per_request, sql, _example in result.slowest_statements():
            lines.append(f"    {ms_each:7.2f} ms × {per_request:<4g} {' '.join(sql.split())[:150]}")
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, fewer samples (under a minute)")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest statements (stderr)")
    parser.add_argument("--profile", action="store_true", help="cProfile a few requests of each page (stderr)")
    return parser.parse_args()


def seed(app, database_url: str, big: Sizes) -> tuple[CrmTenant, list[CrmTenant], dict]:
    """All the tenants and their rows; returns the big one, the others, and the seeding times."""
    started = time.perf_counter()
    c.seed_tenants(app, 1 + OTHER_TENANTS, prefix="crm")
    tenants = seeded_tenants(app)
    with c.precomputed_password_hash() as password_hash:
        for tenant in tqdm(tenants, desc="pipelines, fields, members", unit="tenant", file=sys.stderr):
            prepare_crm(app, tenant, password_hash)
    setup_s = time.perf_counter() - started
    steps = seed_rows(database_url, tenants[0], big, progress=True)
    started = time.perf_counter()
    for tenant in tqdm(tenants[1:], desc="other tenants' rows", unit="tenant", file=sys.stderr):
        seed_rows(database_url, tenant, Sizes(*SMALL), progress=False)
    others_s = time.perf_counter() - started
    vacuum_s = vacuum_analyze(database_url, tenants)
    return tenants[0], tenants[1:], {
        "setup_s": c.rnd(setup_s, 1), "seed_s": {name: c.rnd(seconds, 1) for name, seconds in steps.items()},
        "seed_others_s": c.rnd(others_s, 1), "vacuum_analyze_s": c.rnd(vacuum_s, 1)}


def page_paths(tenant: CrmTenant, big: Sizes, rng: random.Random, n_card: int, n_list: int, n_board: int) -> list:
    """(timed paths, warm-up paths) of the card, the filtered list and the board."""
    cards = [f"/deals/{i}" for i in rng.sample(range(1, big.deals + 1), n_card + 5)]
    items = tenant.region_items
    lists = [f"/deals?custom.{tenant.list_key}={items[i % len(items)]}" for i in range(n_list)]
    rng.shuffle(lists)
    board = [f"/deals/board/{tenant.main_pipeline}"] * n_board
    return [(cards[5:], cards[:5]), (lists, lists[:3]), (board, board[:3])]


def main() -> None:
    args = parse_args()
    c.sigterm_as_exit()
    quick = args.quick
    big = Sizes(10_000, 20_000, 10_000) if quick else Sizes(100_000, 200_000, 100_000)
    n_card, n_list, n_board = (40, 36, 20) if quick else (300, 240, 100)
    run_started = time.perf_counter()
    load_start = c.loadavg()
    rng = random.Random(42)
    figures: dict = {}
    log = c.log

    with c.temp_dir() as tmp, c.scratch_database() as database_url:
        tmp = Path(tmp)
        app = c.make_bench_app(database_url, tmp)
        capture = bare = None
        try:
            from tenants.db import db

            log(f"mode={'quick' if quick else 'full'} big tenant {big}, {OTHER_TENANTS} others {SMALL}")
            c.upgrade_public(app)
            main_tenant, others, seed_figures = seed(app, database_url, big)
            counts = row_counts(database_url, main_tenant)
            log(f"big tenant {main_tenant.schema}: {counts}")
            results = [PageResult("deal_card", "deal card  GET /deals/<id>"),
                       PageResult("deal_list", f"deal list  GET /deals?custom.{main_tenant.list_key}=<item>"),
                       PageResult("board", "board      GET /deals/board/<main pipeline>")]
            plans = zip(results, page_paths(main_tenant, big, rng, n_card, n_list, n_board))

            with app.app_context():
                capture = Capture(db.engine)
            client, base_url = signed_in_client(app, main_tenant)
            bare = psycopg.connect(database_url, options=f"-c search_path={main_tenant.schema},public")
            for result, (paths, warmup) in plans:
                if not route_exists(app, paths[0].split("?")[0]):
                    result.problem = "no such route yet"
                    log(f"{result.label}: no such route yet, skipped")
                    continue
                measure(client, base_url, capture, bare, result, paths, warmup)
                if args.explain and not result.problem:
                    explain(bare, result)
                if args.profile and not result.problem:
                    profile(client, base_url, result, paths[:10])

            print(table(results), flush=True)
            figures = {"mode": "quick" if quick else "full"}
            for result in results:
                figures.update(result.figures())
            figures["within_aim"] = {r.name: r.within_aim() for r in results}
            figures["not_measured"] = {r.name: r.problem for r in results if r.problem}
            figures.update({
                "companies": counts["companies"], "contacts": counts["contacts"], "deals": counts["deals"],
                "contact_companies": counts["contact_companies"], "deal_contacts": counts["deal_contacts"],
                "deal_items": counts["deal_items"], "audit_log": counts["audit_log"],
                "other_tenants": len(others), "other_tenant_sizes": dict(zip(("companies", "contacts", "deals"), SMALL)),
                "samples": {"deal_card": n_card, "deal_list": n_list, "board": n_board},
                "client": "flask test client in-process (no HTTP)",
                **seed_figures,
                "cpus": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": c.loadavg(),
                "postgres": c.server_settings(app),
            })
        finally:
            if capture is not None:
                capture.close()
            if bare is not None:
                bare.close()
            c.release_app(app)
    c.finish(figures, run_started)


if __name__ == "__main__":
    main()
