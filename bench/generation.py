"""Benchmark: a 2-page contract with 50 line items made through the whole generation pipeline
(click → queue → one forking worker → template → WeasyPrint → S3 → ready) beside WeasyPrint
rendering the same HTML alone, and 100 documents queued at once.

    python bench/generation.py [--quick]
    BENCH_PROFILE=1 python bench/generation.py --quick     # + where the work horse spends its time

Creates and finally drops its own database (dealdocs_bench_<random>) on DATABASE_URL's server
(default postgresql://postgres@127.0.0.1:5432), uses REDIS_URL (default redis://127.0.0.1:6379/0)
with a queue of its own (QUEUE_NAME dealdocs-bench-<random>), starts its own SeaweedFS
(saas.runtime.embedded.start_s3) and ONE real worker process, `python -m saas.cli worker` (it
warms WeasyPrint up, then forks a work horse per job), pointed at all three.

The company is made through the real sign_up(), with its requisites and a logo, a stamp and a
signature (small PNGs). Its deal has a client company, a contact and 50 line items with 20 % VAT.
The template is a supply agreement on the ready English contract's header (logo, our
requisites), footer ("Page N of M") and style sheet: six clauses, the 50-row specification with
net/VAT/total per line and subtotal/VAT/contract price, the price in words, both parties'
requisites and signature blocks with the stamp and signature. The ready contract itself takes 4
pages with 50 lines; this one is denser and is checked to come out as exactly 2 pages. The
worker makes three documents before anything is timed (it is idle and warm then).
Progress goes to stderr; the figures are the last line of stdout, one JSON object.

What each figure includes
-------------------------
pages                   pages of the generated PDF (pypdf); the run stops unless it is 2.
pdf_kb / html_kb        sizes of that PDF and of the HTML it was made from (KB = 1000 bytes).
bare_weasyprint_p50_ms  plain `weasyprint.HTML(string=html).write_pdf()` in this process, warm (one
/ _p95_ms               render first), on the exact HTML the pipeline made (Version.source_html
                        of the first document). Rounds: 20 (--quick 5).
bare_to_pdf_p50_ms      saas.documents.pdf.to_pdf(html, tenant) on the same HTML in this process:
/ _p95_ms               WeasyPrint with the company-only URL fetcher (logo, stamp and signature
                        read from the company's schema), the page limit and the warning check.
pipeline_p50_ms         one document at a time, from the "click" — generation.start() for the deal
/ pipeline_p95_ms       plus the commit (which sends the job to Redis) — until a poll of the
                        document row (every 10 ms, own connection) sees it *ready*: the worker
                        dequeuing the job, forking a work horse, claiming the document, filling
                        the template, taking the number, WeasyPrint, storing the PDF in S3 with
                        the quota ledger, marking it ready. Each round runs the bare renders and
                        then one pipeline document (the two never overlap).
ratio_p50               pipeline_p50_ms / bare_weasyprint_p50_ms (aim: at most 1.3).
stages_p50_ms           a pipeline round cut by this process's clock and RQ's own job timestamps
                        (same host), p50 of each: click = start() + commit; queue_to_start =
                        enqueued → the horse starts the job (dequeue and fork); job = started →
                        ended in the horse (claim, fill, number, WeasyPrint, S3, ready);
                        after_job = the job's end → the poll seeing it ready.
job_profile_ms          the job's body, generation.run, run in THIS warm, unforked process on one
                        document (one made before it; their queued jobs find them made and skip
                        when the worker starts): wall time in _claim, _fill_with_number (of which
                        doc_templates.fill: the template is filled twice, once to check it before
                        a number is taken, once with the number), pdf.to_pdf, _store (PDF to S3,
                        quota ledger, version row, ready) and the rest. The functions are wrapped
                        in stopwatches for that one call; the real code runs. One run.
worker_stages_p50_ms    only with BENCH_PROFILE=1: the worker is started as `dealdocs worker` with
                        the same stopwatches around the job's stages *inside the work horses*
                        (see PROBES), each printing to the worker's log; p50 over the timed
                        rounds of each stage's total per job. Compare with job_profile_ms: what
                        the fork costs each job.
docs_per_s_per_worker   burst_ready / the burst's wall time.
burst_*                 burst_docs documents (100; --quick 30) started at once by
                        generation.start_batch() (one template for burst_docs deals, each with the
                        same 50 items, one transaction), the one worker making them.
                        burst_wall_s = from just before start_batch() until the last document of
                        the batch is seen ready; burst_click_ms = start_batch() + commit;
                        burst_ready = documents of the batch that are ready; burst_lost = started
                        but not ready when the queue has been idle for 2 s (nothing queued,
                        running or scheduled for retry: no job is left that could make them);
                        burst_doubled = documents of the batch beyond those started + versions
                        beyond one per document + PDF blobs in S3 beyond one per stored version;
                        burst_failed_jobs = jobs in RQ's failed registry.
numbers_unique          over every generated document of the company that has a number (the
numbers_gap_free        bench's own, the rounds, the burst): none twice; their counters run 1…n
                        without a hole. unnumbered_documents: generated documents with none.
"""
import contextlib
import io
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
from sqlalchemy import text  # noqa: E402

from saas.runtime.embedded import start_s3  # noqa: E402
from uploads import S3_KEYS, bare_client, make_company  # noqa: E402

BUCKET = "dealdocs-bench"
LINES = 50
POLL_EVERY = 0.01  # seconds between looks at the document row
READY_TIMEOUT = 120  # seconds for one document (the job's own timeout)
IDLE_GRACE = 2.0  # seconds the queue stays empty before documents still generating count as lost
PROFILE = bool(os.environ.get("BENCH_PROFILE"))


# --- the company, its deals and its template ---------------------------------------------------

@contextlib.contextmanager
def as_owner(app, tenant_id: int):
    """(tenant, owner's membership) inside the company's scope; committed at the end."""
    from sqlalchemy import select

    from saas.auth.models import Membership, Role
    from tenants.db import db
    from tenants.registry import lookup_tenant
    from tenants.scope import tenant_scope

    with app.app_context():
        tenant = lookup_tenant(tenant_id=tenant_id)
        with tenant_scope(tenant):
            owner = db.session.scalar(select(Membership).where(Membership.tenant_id == tenant_id,
                                                               Membership.role == Role.OWNER))
            yield tenant, owner
            db.session.commit()


def picture(width: int, height: int, draw) -> bytes:
    """A PNG drawn by `draw(ImageDraw)` on a transparent canvas."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (width, height), (255, 255, 255, 0))
    draw(ImageDraw.Draw(canvas))
    out = io.BytesIO()
    canvas.save(out, "PNG")
    return out.getvalue()


COMPANY_IMAGES = {
    "logo": lambda: picture(600, 180, lambda d: (d.rounded_rectangle((0, 20, 160, 160), 30, fill=(22, 93, 160)),
                                                 d.rectangle((190, 50, 590, 90), fill=(40, 40, 40)),
                                                 d.rectangle((190, 110, 480, 130), fill=(120, 120, 120)))),
    "stamp": lambda: picture(400, 400, lambda d: (d.ellipse((10, 10, 390, 390), outline=(30, 60, 170), width=12),
                                                  d.ellipse((70, 70, 330, 330), outline=(30, 60, 170), width=6))),
    "signature": lambda: picture(500, 160, lambda d: d.line([(10 + 12 * n, 80 + (-1) ** n * (20 + n % 5 * 8))
                                                             for n in range(40)], fill=(10, 20, 90), width=4)),
}


def fill_in_company(app, tenant_id: int) -> tuple[int, int]:
    """Our requisites, logo, stamp and signature, a client company and its contact; (client company
    id, contact id)."""
    from saas.crm import services as crm
    from saas.crm.models import Entity
    from saas.settings.requisites import save_image, save_requisites

    with as_owner(app, tenant_id) as (_tenant, owner):
        save_requisites(owner, {
            "legal_name": "Bench Supplies Ltd", "address": "1 Market Street, London EC1A 1AA",
            "tin": "GB123456789", "bank_name": "Barclays", "bank_account": "GB29NWBK60161331926819",
            "bank_swift": "NWBKGB2L", "director": "Jane Smith", "phone": "+44 20 7946 0000",
            "email": "sales@bench.example.com"})
        for name, draw in COMPANY_IMAGES.items():
            save_image(owner, name, draw())
        client = crm.create(Entity.COMPANY, {"name": "Northwind Trading LLC", "tin": "7707083893",
                                             "address": "12 Harbour Road, Bristol BS1 4RN"}, owner)
        contact = crm.create(Entity.CONTACT, {"first_name": "Peter", "last_name": "Brown",
                                              "position": "Procurement Director", "company_ids": [client.id]}, owner)
        return client.id, contact.id


def make_deals(app, tenant_id: int, client_id: int, contact_id: int, count: int) -> list[int]:
    """`count` deals, each with the same 50 line items (20 % VAT), in one transaction."""
    from saas.crm import services as crm
    from saas.crm.models import Entity

    items = [{"name": f"Industrial valve DN{25 + n} with flange kit and gaskets", "quantity": str(1 + n % 7),
              "unit": "pcs", "price": f"{120 + 7.35 * n:.2f}", "vat_rate": "20"} for n in range(LINES)]
    with as_owner(app, tenant_id) as (_tenant, owner):
        return [crm.create(Entity.DEAL, {"title": f"Valves for the Bristol plant #{n + 1}", "currency": "GBP",
                                         "company_id": client_id, "contact_ids": [contact_id],
                                         "line_items": items}, owner).id for n in range(count)]


CONTRACT_BODY = """{% set supplier = our.legal_name or our.name %}
<style>
html { font-size: 9pt; line-height: 1.25; }
h2 { font-size: 9.5pt; margin: 2.5mm 0 1mm; }
p { margin: 0 0 1.3mm; text-align: justify; }
table.items { font-size: 7.5pt; margin: 1.5mm 0 1mm; }
table.items th, table.items td { padding: 0.3mm 1.2mm; }
table.items thead { display: table-header-group; }
.signature-block { margin-top: 2mm; }
.sign-row { margin-top: 10mm; }
</style>
<h1>Supply Agreement No. {{ number }}</h1>
<p class="subtitle">{{ today|date }}</p>

<p><strong>{{ supplier }}</strong>{% if our.address %}, {{ our.address }}{% endif %} (the “Supplier”),
represented by its Director {{ our.director }}, and <strong>{{ company.name }}</strong>{% if company.address %},
{{ company.address }}{% endif %} (the “Customer”), represented by {{ contact.full_name }}, {{ contact.position }},
have agreed as follows.</p>

<h2>1. Subject of the Agreement</h2>
<p>1.1. The Supplier shall deliver the goods listed in the specification below (the “Goods”) for the project
“{{ deal.title }}”, and the Customer shall accept and pay for them on the terms of this Agreement.</p>
<p>1.2. The Goods shall be new, unused, of the make and specification stated, and accompanied by the
manufacturer's certificates of conformity and a packing list for each consignment.</p>
<table class="items">
  <thead><tr><th>#</th><th>Description</th><th>Qty</th><th>Unit</th><th>Unit price</th><th>VAT</th>
    <th>Net</th><th>Total</th></tr></thead>
  <tbody>
  {% for item in items %}
    <tr><td class="pos">{{ item.position }}</td><td>{{ item.name }}</td><td class="n">{{ item.quantity|number }}</td>
      <td>{{ item.unit }}</td><td class="n">{{ item.price|money }}</td><td class="n">{{ item.vat_rate|number }}%</td>
      <td class="n">{{ item.net|money }}</td><td class="n">{{ item.total|money }}</td></tr>
  {% endfor %}
  </tbody>
</table>
<table class="totals">
  <tr><th>Subtotal:</th><td>{{ totals.net|money }}</td></tr>
  <tr><th>VAT:</th><td>{{ totals.vat|money }}</td></tr>
  <tr class="grand"><th>Contract price:</th><td>{{ totals.total|money }}</td></tr>
</table>

<h2>2. Price and Payment</h2>
<p>2.1. The contract price is {{ totals.total|money }} ({{ totals.total|in_words }}), including VAT of
{{ totals.vat|money }}. The price includes packing, marking and delivery to the Customer's site.</p>
<p>2.2. The Customer shall pay 30% of the contract price in advance within 5 business days of signature and the
balance within 14 days of the date of the Supplier's invoice, by bank transfer to the account stated below.</p>

<h2>3. Delivery and Acceptance</h2>
<p>3.1. The Supplier shall deliver the Goods within 20 business days of receiving the advance payment.
Title and risk pass to the Customer on signature of the delivery note.</p>
<p>3.2. The Customer shall inspect the Goods for quantity and visible defects on delivery and notify the Supplier
in writing of any shortfall or defect within 5 business days; the Supplier shall replace them at its own cost.</p>

<h2>4. Warranty</h2>
<p>4.1. The Supplier warrants the Goods against defects in materials and workmanship for 24 months from
delivery. Defective Goods shall be repaired or replaced within 15 business days of notice.</p>

<h2>5. Liability</h2>
<p>5.1. For late delivery the Supplier shall pay 0.1% of the price of the late Goods per day, and for late payment
the Customer shall pay 0.1% of the overdue amount per day, in each case capped at 10% of the contract price.</p>

<h2>6. Disputes and Final Provisions</h2>
<p>6.1. Disputes not settled by negotiation within 30 days shall be referred to the competent court at the
Supplier's place of business. This Agreement takes effect on signature and remains in force until the Parties
have performed their obligations. Amendments are valid only in writing signed by both Parties.</p>

<h2>7. Parties and Signatures</h2>
<table class="parties">
  <tr>
    <td><div class="party">Supplier</div>{{ supplier }}<br>{{ our.address }}<br>Tax ID: {{ our.tin }} · SWIFT: {{ our.bank_swift }}<br>
      Account / IBAN: {{ our.bank_account }}, {{ our.bank_name }}<br>
      {{ our.phone }}, {{ our.email }}
      <div class="signature-block"><div class="role">For the Supplier</div>
        <div class="sign-row stamp-beside"><span class="signature-line"></span>
          {% if our.signature %}<img class="signature" src="{{ our.signature }}" alt="">{% endif %}
          {% if our.stamp %}<img class="stamp" src="{{ our.stamp }}" alt="">{% endif %}</div>
        <div class="small">{{ our.director }}, Director</div></div></td>
    <td><div class="party">Customer</div>{{ company.name }}<br>{{ company.address }}<br>Tax ID: {{ company.tin }}
      <div class="signature-block"><div class="role">For the Customer</div>
        <div class="sign-row"><span class="signature-line"></span></div>
        <div class="small">{{ contact.full_name }}, {{ contact.position }}</div></div></td>
  </tr>
</table>
"""


def contract_template(app, tenant_id: int) -> int:
    """The supply agreement (CONTRACT_BODY) behind the ready contract's header, footer and style sheet."""
    from saas.documents import doc_templates

    with as_owner(app, tenant_id) as (_tenant, owner):
        ready = next(t for t in doc_templates.all_templates("deal")
                     if t.document_type == "contract" and t.language == "en")
        style = re.match(r"\s*<style>.*?</style>", ready.body_html, re.S).group(0)
        return doc_templates.create(owner, {
            "name": "Supply agreement (bench)", "document_type": "contract", "applies_to": "deal",
            "language": "en", "page_size": "A4", "margin_top": ready.margin_top, "margin_right": ready.margin_right,
            "margin_bottom": ready.margin_bottom, "margin_left": ready.margin_left,
            "header_html": ready.header_html, "footer_html": ready.footer_html,
            "body_html": style + "\n" + CONTRACT_BODY}).id


# --- the worker --------------------------------------------------------------------------------

# (module, attribute, stage): stopwatches a profiled worker puts around the job's stages.
PROBES = (
    ("saas.jobs", "_AppContextMixin.perform_job", "horse_perform_job"),  # the horse's whole job, RQ's part included
    ("saas.documents.generation", "run", "job_body"),
    ("saas.documents.generation", "_claim", "claim"),
    ("saas.documents.generation", "_fill_with_number", "fill_and_number"),
    ("saas.documents.doc_templates", "fill", "template_fills"),
    ("saas.documents.pdf", "to_pdf", "to_pdf"),
    ("weasyprint", "HTML.render", "weasyprint_layout"),
    ("weasyprint.document", "Document.write_pdf", "weasyprint_write_pdf"),
    ("saas.documents.generation", "_store", "store"),
    ("saas.documents.services", "write_blob", "store_write_blob"),
    ("saas.documents.services", "blob_store", "store_blob_store_client"),
)
_STAGE = "BENCH-STAGE"


def run_profiled_worker() -> None:
    """`dealdocs worker`, with every PROBES function wrapped in a stopwatch that prints
    "BENCH-STAGE <pid> <stage> <ms>" to stderr (the real functions run)."""
    import importlib

    for module_name, attribute, stage in PROBES:
        owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, _stopwatch(getattr(owner, name), stage))
    from saas.cli import main

    sys.argv = ["dealdocs", "worker"]
    main()


def _stopwatch(function, stage: str):
    def timed_call(*args, **kwargs):
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            print(f"{_STAGE} {os.getpid()} {stage} {(time.perf_counter() - began) * 1000:.3f}", file=sys.stderr,
                  flush=True)
    return timed_call


def worker_stages(log: Path, offset: int) -> dict:
    """p50 over jobs (one work horse each) of each stage's total per job, from the log after `offset`."""
    per_job = defaultdict(lambda: defaultdict(float))
    with open(log, "rb") as lines:
        lines.seek(offset)
        for line in lines.read().decode(errors="replace").splitlines():
            if line.startswith(_STAGE + " "):
                _tag, pid, stage, spent = line.split()
                per_job[pid][stage] += float(spent) / 1000
    jobs = [stages for stages in per_job.values() if "job_body" in stages]
    return {stage: c.ms(c.p50(job.get(stage, 0.0) for job in jobs)) for _m, _a, stage in PROBES} if jobs else {}


def start_worker(env: dict, logs: Path) -> subprocess.Popen:
    """`python -m saas.cli worker` (profiled: the same through run_profiled_worker) in a session of its own."""
    command = ([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                                      "import generation; generation.run_profiled_worker()"]
               if PROFILE else [sys.executable, "-m", "saas.cli", "worker"])
    with open(logs, "ab") as out:
        return subprocess.Popen(command, env=env, cwd=c.REPO, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(process: subprocess.Popen) -> None:
    from saas.cli import _stop_process

    _stop_process(process, warm=5, cold=5)


def log_tail(path: Path, lines: int = 60) -> None:
    c.log(f"the worker's log, last {lines} lines:")
    for line in path.read_text(errors="replace").splitlines()[-lines:]:
        print("    " + line, file=sys.stderr)


def queue_idle(app) -> bool:
    """Nothing queued, running or waiting to be retried: no job is left that could make a document."""
    from rq import Queue
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    from saas.jobs import redis_connection

    with app.app_context():
        connection, name = redis_connection(), app.config["QUEUE_NAME"]
        return (Queue(name, connection=connection).count == 0
                and StartedJobRegistry(name, connection=connection).count == 0
                and ScheduledJobRegistry(name, connection=connection).count == 0)


# --- watching documents --------------------------------------------------------------------------

class Watcher:
    """Looks at documents' rows on a connection of its own (autocommit: every look is fresh)."""

    def __init__(self, app, tenant_id: int):
        from tenants.db import db

        self.app = app
        with app.app_context():
            self.connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.schema = f'"t_{tenant_id}"'

    def states(self, ids) -> dict[int, tuple[str, str | None]]:
        rows = self.connection.execute(text(
            f"SELECT id, generation, generation_error FROM {self.schema}.documents WHERE id = ANY(:ids)"),
            {"ids": list(ids)})
        return {row.id: (row.generation, row.generation_error) for row in rows}

    def wait(self, ids, timeout: float) -> tuple[dict[int, tuple[str, str | None]], dict[int, float]]:
        """Poll until none of `ids` is generating, the queue has been idle for IDLE_GRACE, or the
        timeout: their last states, and when (perf_counter) each was first seen done."""
        deadline, done = time.perf_counter() + timeout, {}
        idle_since, next_idle_look = None, time.perf_counter() + 0.5
        while True:
            states = self.states(ids)
            now = time.perf_counter()
            for document_id, (state, _error) in states.items():
                if state != "generating":
                    done.setdefault(document_id, now)
            if len(done) == len(states) or now > deadline:
                return states, done
            if now >= next_idle_look:
                next_idle_look = now + 0.5
                idle_since = (idle_since or now) if queue_idle(self.app) else None
                if idle_since is not None and now - idle_since >= IDLE_GRACE:
                    return states, done
            time.sleep(POLL_EVERY)

    def scalar(self, sql: str, **params):
        return self.connection.execute(text(sql.replace("{s}", self.schema)), params).scalar()

    def close(self) -> None:
        self.connection.close()


def require_ready(states: dict) -> None:
    bad = {i: s for i, s in states.items() if s[0] != "ready"}
    if bad:
        raise RuntimeError(f"documents not ready: {bad}")


# --- the measurements --------------------------------------------------------------------------

def click(app, tenant_id: int, template_id: int, deal_id: int) -> tuple[int, float, float]:
    """generation.start() + commit; (document id, when it began, how long it took)."""
    from saas.crm.models import Entity
    from saas.documents import generation
    from tenants.db import db

    with as_owner(app, tenant_id) as (tenant, owner):
        began = time.perf_counter()
        document = generation.start(tenant, template_id, Entity.DEAL, deal_id, owner, locale="en")
        db.session.commit()
        return document.id, began, time.perf_counter() - began


def generate_one(app, watcher: Watcher, tenant_id: int, template_id: int, deal_id: int) -> dict:
    """One document through the worker: its id and timings (seconds; began_wall on the epoch clock)."""
    document_id, began, click_s = click(app, tenant_id, template_id, deal_id)
    began_wall = time.time() - (time.perf_counter() - began)
    states, done = watcher.wait([document_id], READY_TIMEOUT)
    require_ready(states)
    return {"id": document_id, "click": click_s, "total": done[document_id] - began, "began_wall": began_wall}


def job_stages(app, round_: dict) -> dict | None:
    """A round cut by RQ's timestamps of the job that made its document (None if not found)."""
    from rq.job import Job
    from rq.registry import FinishedJobRegistry

    from saas.jobs import redis_connection

    with app.app_context():
        connection = redis_connection()
        registry = FinishedJobRegistry(app.config["QUEUE_NAME"], connection=connection)
        jobs = [job for job in Job.fetch_many(registry.get_job_ids(), connection=connection)
                if job is not None and job.args and job.args[0] == round_["id"]]
    if len(jobs) != 1:
        return None
    enqueued, started, ended = (_epoch(t) for t in (jobs[0].enqueued_at, jobs[0].started_at, jobs[0].ended_at))
    return {"click": round_["click"], "queue_to_start": started - enqueued, "job": ended - started,
            "after_job": round_["began_wall"] + round_["total"] - ended}


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def pdf_of(app, tenant_id: int, document_id: int) -> tuple[bytes, str]:
    """The stored PDF and the HTML it was made from."""
    from saas.blobs import blob_store
    from saas.documents.models import Document
    from tenants.db import db

    with as_owner(app, tenant_id):
        version = db.session.get(Document, document_id).current
        return b"".join(blob_store().open(version.blob_key)), version.source_html


def page_count(pdf: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)


def bare_weasyprint(html: str) -> float:
    import weasyprint

    began = time.perf_counter()
    weasyprint.HTML(string=html).write_pdf()
    return time.perf_counter() - began


def with_images_inline(app, tenant_id: int, html: str) -> str:
    """The same page for plain WeasyPrint: our logo, stamp and signature (`dealdocs:…`, which only
    our fetcher resolves) as data: URIs, so both renders decode the same images."""
    import base64

    from saas.settings.requisites import images

    with as_owner(app, tenant_id):
        for name, image in images().items():
            html = html.replace(f"dealdocs:{name}",
                                f"data:{image.content_type};base64,{base64.b64encode(image.data).decode()}")
    return html


def bare_to_pdf(app, tenant_id: int, html: str) -> float:
    from saas.documents.pdf import to_pdf

    with as_owner(app, tenant_id) as (tenant, _owner):
        began = time.perf_counter()
        to_pdf(html, tenant)
        return time.perf_counter() - began


@contextlib.contextmanager
def timed(spent: dict, owner, name: str, label: str):
    """While open, owner.<name> is the same function inside a stopwatch adding to spent[label]."""
    real = getattr(owner, name)

    def stopwatch(*args, **kwargs):
        began = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - began

    setattr(owner, name, stopwatch)
    try:
        yield
    finally:
        setattr(owner, name, real)


def profile_job(app, tenant_id: int, template_id: int, deal_id: int) -> dict:
    """One document made in this process by generation.run (the job's body), with the wall time
    of each of its parts (ms). Its queued job finds it made and skips it when the worker starts."""
    from saas.crm.models import Entity
    from saas.documents import doc_templates, generation, pdf
    from saas.documents.models import Document
    from tenants.db import db

    spent: dict = {}
    with as_owner(app, tenant_id) as (tenant, owner):
        document_id = generation.start(tenant, template_id, Entity.DEAL, deal_id, owner, locale="en").id
        db.session.commit()
        with contextlib.ExitStack() as stack:
            for module, name, label in ((generation, "_claim", "claim"),
                                        (generation, "_fill_with_number", "fill_and_number"),
                                        (doc_templates, "fill", "of_which_template_fills"),
                                        (pdf, "to_pdf", "to_pdf"),
                                        (generation, "_store", "store")):
                stack.enter_context(timed(spent, module, name, label))
            began = time.perf_counter()
            outcome = generation.run(tenant, document_id, f"bench-{document_id}", locale="en", last_try=True)
            spent["total"] = time.perf_counter() - began
            if outcome != "ready":
                raise RuntimeError(f"the in-process job ended {outcome}: "
                                   f"{db.session.get(Document, document_id).generation_error}")
    parts = ("claim", "fill_and_number", "to_pdf", "store")
    spent["other"] = spent["total"] - sum(spent[name] for name in parts)
    return {name: c.ms(value) for name, value in spent.items()}


def burst(app, watcher: Watcher, tenant_id: int, template_id: int, deal_ids: list[int]) -> dict:
    """Every deal's contract started in one batch; wait until all are ready (or lost), then count."""
    from saas.documents import generation
    from tenants.db import db

    with as_owner(app, tenant_id) as (tenant, owner):
        began = time.perf_counter()
        batch_id, started, skipped = generation.start_batch(tenant, template_id, deal_ids, owner, locale="en")
        db.session.commit()
        click_s = time.perf_counter() - began
        ids = [d.id for d in started]
    if skipped:
        raise RuntimeError(f"the batch skipped deals: {skipped}")
    c.log(f"  {len(ids)} queued in {click_s * 1000:.0f} ms; waiting…")
    states, done = watcher.wait(ids, READY_TIMEOUT + 3 * len(ids))
    ready_ids = [i for i, (state, _error) in states.items() if state == "ready"]
    not_ready = {i: s for i, s in states.items() if s[0] != "ready"}
    if not_ready:
        c.log(f"  not ready: {not_ready}")
        describe_jobs(app, not_ready)
    in_batch = watcher.scalar("SELECT count(*) FROM {s}.documents WHERE batch_id = :b", b=batch_id)
    extra_versions = watcher.scalar(
        "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {s}.document_versions v "
        "JOIN {s}.documents d ON d.id = v.document_id WHERE d.batch_id = :b GROUP BY v.document_id) per",
        b=batch_id)
    return {"ids": ids, "click": click_s, "ready": len(ready_ids), "lost": len(ids) - len(ready_ids),
            "wall": max(done[i] for i in ready_ids) - began if ready_ids else float("nan"),
            "doubled": (in_batch - len(ids)) + int(extra_versions)}


def describe_jobs(app, document_ids) -> None:
    """Log what RQ knows of the jobs for these documents (for a run that lost some)."""
    from rq import Queue
    from rq.job import Job
    from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

    from saas.jobs import redis_connection

    with app.app_context():
        connection, name = redis_connection(), app.config["QUEUE_NAME"]
        job_ids = set(Queue(name, connection=connection).job_ids)
        for registry in (FinishedJobRegistry, FailedJobRegistry, StartedJobRegistry):
            job_ids.update(registry(name, connection=connection).get_job_ids())
        for job in Job.fetch_many(list(job_ids), connection=connection):
            if job is not None and job.args and job.args[0] in document_ids:
                c.log(f"  job for document {job.args[0]}: {job.get_status()}, returned {job.return_value()!r}, "
                      f"enqueued {job.enqueued_at:%H:%M:%S.%f}, started {job.started_at:%H:%M:%S.%f} "
                      f"{(job.exc_info or '')[-300:]}")


def stored_pdfs(prefix: str, s3) -> int:
    """Objects in S3 under the company's prefix."""
    paginator = s3.get_paginator("list_objects_v2")
    return sum(page.get("KeyCount", 0) for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix))


def numbering_checks(watcher: Watcher) -> tuple[bool, bool, int]:
    """(unique, gap-free, generated documents without a number) over the company's generated documents."""
    numbers = [row[0] for row in watcher.connection.execute(text(
        f"SELECT number FROM {watcher.schema}.documents WHERE template_id IS NOT NULL"))]
    given = [n for n in numbers if n]
    counters = sorted(int(re.search(r"(\d+)\D*$", n).group(1)) for n in given)
    return len(set(given)) == len(given), counters == list(range(1, len(given) + 1)), len(numbers) - len(given)


def failed_jobs(app) -> int:
    from rq.registry import FailedJobRegistry

    from saas.jobs import redis_connection

    with app.app_context():
        return FailedJobRegistry(app.config["QUEUE_NAME"], connection=redis_connection()).count


def tenant_prefix(app, tenant_id: int) -> str:
    from tenants.registry import lookup_tenant

    with app.app_context():
        return lookup_tenant(tenant_id=tenant_id).blob_prefix


# --- the run -------------------------------------------------------------------------------------

def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    c.sigterm_as_exit()
    quick = args.quick
    rounds, burst_docs = (5, 30) if quick else (20, 100)
    run_started = time.perf_counter()
    load_start = c.loadavg()
    figures: dict = {}

    with c.temp_dir() as tmp, c.scratch_database() as database_url:
        tmp = Path(tmp)
        logs = tmp / "worker.log"
        s3_service = start_s3(tmp / "s3", bucket=BUCKET, **S3_KEYS)
        worker = watcher = app = None
        try:
            c.log(f"mode={'quick' if quick else 'full'} rounds={rounds} burst={burst_docs} profile={PROFILE}; "
                  f"S3 {s3_service.url}")
            storage = dict(STORAGE_URL=s3_service.url, S3_ACCESS_KEY=S3_KEYS["access_key"],
                           S3_SECRET_KEY=S3_KEYS["secret_key"])
            app = c.make_bench_app(database_url, tmp, TENANT_POOL_SIZE=1, **storage)
            c.upgrade_public(app)
            tenant_id, _slug, _email, _deals = make_company(app, "gen", "extended", deals=0)
            client_id, contact_id = fill_in_company(app, tenant_id)
            c.log(f"making {1 + burst_docs} deals with {LINES} line items each…")
            [deal_id] = make_deals(app, tenant_id, client_id, contact_id, 1)
            burst_deals = make_deals(app, tenant_id, client_id, contact_id, burst_docs)
            template_id = contract_template(app, tenant_id)

            c.log("the job's body in this process, timed by part (a warm-up document first)…")
            profile_job(app, tenant_id, template_id, deal_id)
            profile = profile_job(app, tenant_id, template_id, deal_id)
            c.log(f"  {profile}")

            env = c.cli_env(database_url, tmp)
            env.update(TENANT_POOL_SIZE="1", SERVER_NAME=app.config["SERVER_NAME"], **storage)
            c.log(f"starting one worker ({'profiled ' if PROFILE else ''}python -m saas.cli worker)…")
            worker = start_worker(env, logs)
            watcher = Watcher(app, tenant_id)

            c.log("warm-up: three documents through the worker…")
            first = generate_one(app, watcher, tenant_id, template_id, deal_id)
            made, html = pdf_of(app, tenant_id, first["id"])
            pages = page_count(made)
            c.log(f"  the first ready in {first['total'] * 1000:.0f} ms: {pages} pages, {len(made) / 1000:.0f} KB "
                  f"of PDF from {len(html) / 1000:.0f} KB of HTML")
            if pages != 2:
                raise RuntimeError(f"the contract came out as {pages} pages, not 2")
            for _n in range(2):
                generate_one(app, watcher, tenant_id, template_id, deal_id)
            plain_html = with_images_inline(app, tenant_id, html)
            bare_weasyprint(plain_html)
            bare_to_pdf(app, tenant_id, html)

            log_offset = logs.stat().st_size
            bare, wrapped, pipeline = [], [], []
            for n in range(rounds):
                bare.append(bare_weasyprint(plain_html))
                wrapped.append(bare_to_pdf(app, tenant_id, html))
                pipeline.append(generate_one(app, watcher, tenant_id, template_id, deal_id))
                c.log(f"round {n + 1}: bare WeasyPrint {bare[-1] * 1000:.0f} ms, to_pdf {wrapped[-1] * 1000:.0f} ms, "
                      f"pipeline {pipeline[-1]['total'] * 1000:.0f} ms")
            stages = [s for s in (job_stages(app, r) for r in pipeline) if s]
            in_horse = worker_stages(logs, log_offset) if PROFILE else None
            if in_horse:
                c.log(f"  in the work horse: {in_horse}")

            c.log(f"burst: {burst_docs} documents queued at once…")
            outcome = burst(app, watcher, tenant_id, template_id, burst_deals)
            c.log(f"  {outcome['ready']} ready in {outcome['wall']:.1f} s, {outcome['lost']} lost")

            versions = watcher.scalar("SELECT count(*) FROM {s}.document_versions")
            blobs = stored_pdfs(tenant_prefix(app, tenant_id), bare_client(s3_service.url))
            unique, gap_free, unnumbered = numbering_checks(watcher)

            bare_p50 = c.p50(bare)
            pipeline_p50, pipeline_p95 = (c.ms(f([r["total"] for r in pipeline])) for f in (c.p50, c.p95))
            figures = {
                "mode": "quick" if quick else "full",
                "rounds": rounds,
                "pages": pages,
                "pdf_kb": c.rnd(len(made) / 1000, 1),
                "html_kb": c.rnd(len(html) / 1000, 1),
                "bare_weasyprint_p50_ms": c.ms(bare_p50),
                "bare_weasyprint_p95_ms": c.ms(c.p95(bare)),
                "bare_to_pdf_p50_ms": c.ms(c.p50(wrapped)),
                "bare_to_pdf_p95_ms": c.ms(c.p95(wrapped)),
                "pipeline_p50_ms": pipeline_p50,
                "pipeline_p95_ms": pipeline_p95,
                "ratio_p50": c.rnd(pipeline_p50 / c.ms(bare_p50), 2),
                "stages_p50_ms": {key: c.ms(c.p50([s[key] for s in stages])) for key in stages[0]} if stages else None,
                "job_profile_ms": profile,
                **({"worker_stages_p50_ms": in_horse} if PROFILE else {}),
                "docs_per_s_per_worker": c.rnd(outcome["ready"] / outcome["wall"], 2),
                "burst_docs": len(outcome["ids"]),
                "burst_ready": outcome["ready"],
                "burst_lost": outcome["lost"],
                "burst_doubled": outcome["doubled"] + max(0, blobs - versions),
                "burst_failed_jobs": failed_jobs(app),
                "burst_click_ms": c.ms(outcome["click"]),
                "burst_wall_s": c.rnd(outcome["wall"], 2),
                "numbers_unique": unique,
                "numbers_gap_free": gap_free,
                "unnumbered_documents": unnumbered,
                "cpus": os.cpu_count(),
                "loadavg_start": load_start,
                "loadavg_end": c.loadavg(),
            }
        finally:
            if watcher is not None:
                watcher.close()
            if worker is not None:
                stop_worker(worker)
                if not figures or figures["burst_lost"] or figures["burst_doubled"]:
                    log_tail(logs)
            s3_service.stop()
            if app is not None:
                c.release_app(app)
    c.finish(figures, run_started)


if __name__ == "__main__":
    main()
