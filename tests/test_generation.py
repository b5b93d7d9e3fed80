"""Documents made from templates: the job end to end with a real worker, numbers, idempotency,
the sweeper, and one company never reaching another's templates, records or files."""
import io
import os
import re
import threading
import time
import unicodedata
from datetime import date, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select, update

from saas.crm import services as crm
from saas.crm.models import Entity
from saas.documents import doc_templates, generation, numbering, services, tasks
from saas.documents.models import Document, Generation, Version
from saas.errors import Forbidden, Invalid, NotFound
from storage import ledger
from tenants.db import db
from tenants.models import utcnow
from tenants.registry import lookup_tenant
from tenants.scope import tenant_scope

from .crm_helpers import acting_as, add_person

YEAR = date.today().year
FREE_LIMIT = 200 * 1024 * 1024
CONTRACT = """<h1>Contract {{ number }}</h1>
<p>{{ company.name }} (TIN {{ company.tin }}) buys from {{ our.name }}.</p>
<table>{% for item in items %}<tr><td>{{ item.position }}</td><td>{{ item.name }}</td>
<td>{{ item.total|money }}</td></tr>{% endfor %}</table>
<p>Total: {{ totals.total|money }} ({{ totals.total|in_words }})</p>"""


def pdf_text(data: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def make_deal(app, company, *, lines=2, title="Boiler delivery"):
    with acting_as(app, company) as owner:
        client = crm.create(Entity.COMPANY, {"name": "Northwind LLC", "tin": "7707083893"}, owner)
        deal = crm.create(Entity.DEAL, {
            "title": title, "currency": "USD", "company_id": client.id,
            "line_items": [{"name": f"Item {n}", "quantity": "2", "price": "100.25", "vat_rate": "20"}
                           for n in range(1, lines + 1)]}, owner)
        return deal.id


def make_template(app, company, body=CONTRACT, **fields):
    with acting_as(app, company) as owner:
        return doc_templates.create(owner, {"name": "Supply contract", "document_type": "contract",
                                            "applies_to": "deal", "language": "en", "body_html": body,
                                            **fields}).id


def generate(app, company, template_id, deal_id):
    with acting_as(app, company) as owner:
        return generation.start(lookup_tenant(tenant_id=company.id), template_id, Entity.DEAL, deal_id, owner,
                                locale="en").id


def document(app, company, document_id) -> Document:
    with acting_as(app, company):
        found = db.session.get(Document, document_id)
        db.session.expunge(found)
        return found


def pdf_of(app, company, document_id) -> bytes:
    from saas.blobs import blob_store

    with acting_as(app, company):
        found = db.session.get(Document, document_id)
        return b"".join(blob_store().open(found.current.blob_key))


def tenant_ref(app, company):
    with app.app_context():
        return lookup_tenant(tenant_id=company.id)


def versions_of(app, company, document_id) -> list[Version]:
    with acting_as(app, company):
        found = list(db.session.scalars(select(Version).where(Version.document_id == document_id)))
        db.session.expunge_all()
        return found


def blob_keys(app, company) -> list[str]:
    from saas.blobs import blob_store

    with app.app_context():
        return [key for key, _size in blob_store().keys(lookup_tenant(tenant_id=company.id).blob_prefix)]


def storage_usage(app, company) -> tuple[int, int]:
    with app.app_context():
        return ledger.usage(company.id)


def set_storage_used(app, company, used: int) -> None:
    with app.app_context():
        ledger.set_used(company.id, used)
        db.session.commit()


def next_number(app, company, document_type="contract") -> str:
    with acting_as(app, company):
        return numbering.peek(document_type, date.today())


def set_document(app, company, document_id, **values) -> None:
    with acting_as(app, company):
        db.session.execute(update(Document).where(Document.id == document_id).values(**values))


def sweep(app, company) -> dict:
    with acting_as(app, company):
        return generation.sweep()


def assert_made_once(app, company, document_id, number: str) -> Version:
    """Ready, with `number`, one version whose blob is the company's only one and counted once."""
    made = document(app, company, document_id)
    assert (made.generation, made.generation_error, made.generation_claim) == (Generation.READY, None, None)
    assert made.number == number
    versions = versions_of(app, company, document_id)
    assert len(versions) == 1
    assert blob_keys(app, company) == [versions[0].blob_key]
    assert storage_usage(app, company) == (versions[0].size, 0)
    return versions[0]


def jobs_of(jobs, company, document_id) -> list:
    """Those of `jobs` that make this document of this company."""
    return [job for job in jobs if job.func_name.endswith(".generate_document") and job.args[:1] == (document_id,)
            and job.meta.get("tenant_id") == company.id]


def drop_queued_jobs(app, company, document_id) -> None:
    """Take the document's jobs out of the queue, as a worker that took them and died would."""
    from saas.jobs import queue

    with app.app_context():
        for job in jobs_of(queue().get_jobs(), company, document_id):
            job.delete()


def test_a_contract_is_generated_with_its_number_items_and_totals(app, make_tenant, run_jobs):
    company = make_tenant()
    deal_id, template_id = make_deal(app, company), make_template(app, company)
    document_id = generate(app, company, template_id, deal_id)
    assert document(app, company, document_id).generation == Generation.GENERATING
    run_jobs()
    made = document(app, company, document_id)
    assert (made.generation, made.generation_error) == (Generation.READY, None), made.generation_error
    assert made.number == f"CT-{date.today().year}-0001"
    assert made.template_version == 1
    text = pdf_of(app, company, document_id)
    assert text.startswith(b"%PDF")
    words = pdf_text(text)
    assert f"Contract CT-{date.today().year}-0001" in words
    assert "Northwind LLC (TIN 7707083893)" in words
    assert "Item 1" in words and "Item 2" in words
    assert "$481.20" in words  # 2 × 2 × 100.25 + 20 % VAT
    assert "four hundred and eighty-one" in words



def test_a_card_generates_shows_generating_then_ready(app, make_tenant, run_jobs):
    from .conftest import csrf_token, sign_in

    company = make_tenant()
    deal_id, template_id = make_deal(app, company), make_template(app, company)
    client = sign_in(app, company)
    card = client.get(f"/deals/{deal_id}").get_data(as_text=True)
    assert "Supply contract" in card and "Make a document from a template" in card
    answer = client.post(f"/deals/{deal_id}/generate", data={"csrf_token": csrf_token(card), "template_id": template_id},
                         headers={"Accept": "application/json"})
    assert answer.status_code == 202, answer.get_data(as_text=True)
    listed = client.get(f"/deals/{deal_id}/documents").get_data(as_text=True)
    assert "Generating…" in listed and "data-generating" in listed
    run_jobs()
    listed = client.get(f"/deals/{deal_id}/documents").get_data(as_text=True)
    assert "Generating…" not in listed and "Download" in listed
    page = client.get(f"/documents/{answer.get_json()['id']}").get_data(as_text=True)
    assert "Made from the template “Supply contract”, version 1." in page
    docx = client.get(f"/documents/{answer.get_json()['id']}/download.docx")
    assert docx.status_code == 200 and docx.data[:2] == b"PK"
    html = client.get(f"/documents/{answer.get_json()['id']}/download.html").get_data(as_text=True)
    assert "Northwind LLC" in html
    deals = client.get("/deals").get_data(as_text=True)
    batch = client.post("/deals/generate", data={"csrf_token": csrf_token(deals), "template_id": template_id,
                                                 "record_ids": [deal_id]})
    assert batch.status_code == 302 and "/documents/batches/" in batch.headers["Location"]
    progress = client.get(batch.headers["Location"]).get_data(as_text=True)
    assert "0 of 1 done" in progress
    run_jobs()
    assert "1 of 1 done" in client.get(batch.headers["Location"]).get_data(as_text=True)


# --- fonts ---------------------------------------------------------------------------------

WORLD = {"latin": "Hello, world", "cyrillic": "Привет, мир", "arabic": "مرحبا بالعالم", "thai": "สวัสดีชาวโลก"}


def test_latin_cyrillic_arabic_and_thai_come_out_as_text_in_real_fonts(app, make_tenant, run_jobs):
    company = make_tenant()
    body = "".join(f"<p>{text}</p>" for text in WORLD.values())
    document_id = generate(app, company, make_template(app, company, body=body), make_deal(app, company))
    run_jobs()
    assert document(app, company, document_id).generation == Generation.READY
    reader = PdfReader(io.BytesIO(pdf_of(app, company, document_id)))
    text = unicodedata.normalize("NFKC", "\n".join(page.extract_text() for page in reader.pages))
    for script in ("latin", "cyrillic", "thai"):
        assert WORLD[script] in text, (script, text)
    arabic = unicodedata.normalize("NFKC", WORLD["arabic"])
    assert arabic in text or arabic[::-1] in text, text  # right to left: some readers extract it reversed
    fonts = {str(font.get_object()["/BaseFont"]).split("+", 1)[-1]
             for page in reader.pages for font in page["/Resources"]["/Font"].values()}
    assert fonts == {"DejaVu-Sans", "Loma"}  # Loma for Thai, which DejaVu lacks; no fallback box font


# --- idempotency ---------------------------------------------------------------------------

def test_the_same_job_twice_makes_one_version_one_blob_and_one_number(app, make_tenant, run_jobs):
    from rq.job import Job

    from saas.jobs import enqueue_after_commit, queue

    company = make_tenant()
    document_id = generate(app, company, make_template(app, company), make_deal(app, company))
    with acting_as(app, company):  # a duplicate of the job, as a retried request or a replayed queue sends it
        enqueue_after_commit(tasks.generate_document, document_id, "en", timeout=generation.JOB_TIMEOUT)
    with app.app_context():
        job_ids = [job.id for job in jobs_of(queue().get_jobs(), company, document_id)]
    assert len(job_ids) == 2
    worker = run_jobs()
    assert [Job.fetch(job_id, connection=worker.connection).return_value() for job_id in job_ids] == \
        ["ready", "skipped"]
    with acting_as(app, company):  # and once more, by hand
        assert tasks.generate_document(document_id, "en") == "skipped"
    assert_made_once(app, company, document_id, f"CT-{YEAR}-0001")
    assert next_number(app, company) == f"CT-{YEAR}-0002"


def test_a_job_finding_the_document_claimed_by_a_live_one_leaves_it(app, make_tenant):
    company = make_tenant()
    document_id = generate(app, company, make_template(app, company), make_deal(app, company))
    drop_queued_jobs(app, company, document_id)
    set_document(app, company, document_id, generation_claim="live-job", generation_claimed_at=utcnow())
    with acting_as(app, company):
        assert tasks.generate_document(document_id, "en") == "skipped"
    made = document(app, company, document_id)
    assert (made.generation, made.generation_claim, made.number) == (Generation.GENERATING, "live-job", None)
    # Two workers with the same document at the same moment: one makes it, the other leaves it.
    set_document(app, company, document_id, generation_claim=None, generation_claimed_at=None)
    ref, start, outcomes = tenant_ref(app, company), threading.Barrier(2, timeout=30), []

    def work(job_id: str):
        with app.app_context(), tenant_scope(ref):
            start.wait()
            outcomes.append(generation.run(ref, document_id, job_id, locale="en", last_try=True))

    threads = [threading.Thread(target=work, args=(f"job-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ready", "skipped"]
    assert_made_once(app, company, document_id, f"CT-{YEAR}-0001")


def test_a_job_retried_after_the_storage_failed_keeps_its_number(app, tuned_app, storage_url, make_tenant,
                                                                    run_jobs):
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    from saas.jobs import TenantSimpleWorker, make_worker, queue
    from saas.runtime.embedded import free_port

    company = make_tenant()
    run_jobs()  # nothing else in the queue for the broken worker below
    document_id = generate(app, company, make_template(app, company), make_deal(app, company))
    # The first run meets a blob store that does not answer (nothing listens on its port).
    unreachable = tuned_app(STORAGE_URL=re.sub(r"endpoint=[^&]+", f"endpoint=http://127.0.0.1:{free_port()}",
                                               storage_url))
    make_worker(unreachable, TenantSimpleWorker).work(burst=True)
    made = document(app, company, document_id)
    assert (made.generation, made.generation_claim) == (Generation.GENERATING, None)  # for the retry to take
    assert made.number == f"CT-{YEAR}-0001"
    assert versions_of(app, company, document_id) == [] and blob_keys(app, company) == []
    assert storage_usage(app, company) == (0, 0)  # the reservation was given back
    with app.app_context():
        registry = ScheduledJobRegistry(queue=queue())
        retries = jobs_of(Job.fetch_many(registry.get_job_ids(), connection=registry.connection), company,
                          document_id)
        assert len(retries) == 1  # RQ tries again later …
        registry.requeue(retries[0].id)  # … now, rather than in a few seconds
    run_jobs()
    assert_made_once(app, company, document_id, f"CT-{YEAR}-0001")
    assert next_number(app, company) == f"CT-{YEAR}-0002"  # exactly one number consumed


# --- numbering -----------------------------------------------------------------------------

def test_twenty_takers_at_once_get_consecutive_numbers_and_rolled_back_ones_are_given_again(app, tuned_app,
                                                                                          make_tenant):
    company = make_tenant()
    racing = tuned_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 25, "max_overflow": 5, "pool_timeout": 60})
    ref = tenant_ref(app, company)

    def race(keeps) -> list[str]:
        """20 threads take a contract number at once; those `keeps(n)` commit, the others roll back."""
        start, kept, errors = threading.Barrier(20, timeout=60), [], []

        def take(n: int):
            with racing.app_context(), tenant_scope(ref):
                start.wait()
                try:
                    number = numbering.take("contract", date.today())
                    time.sleep(0.01)  # hold the counter a moment, as the job does while it commits
                    if keeps(n):
                        db.session.commit()
                        kept.append(number)
                    else:
                        db.session.rollback()
                except BaseException as error:  # noqa: BLE001  (shown in the assertion below)
                    errors.append(repr(error))

        threads = [threading.Thread(target=take, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        return sorted(kept)

    assert race(lambda n: True) == [f"CT-{YEAR}-{n:04d}" for n in range(1, 21)]
    assert race(lambda n: n % 2) == [f"CT-{YEAR}-{n:04d}" for n in range(21, 31)]  # no gaps left behind


def test_numbers_restart_each_year_follow_the_counter_set_and_bad_patterns_are_refused(app, make_tenant):
    company = make_tenant()
    today, next_year = date.today(), date(YEAR + 1, 1, 1)
    with acting_as(app, company) as owner:
        assert numbering.take("invoice", today) == f"INV-{YEAR}-0001"
        db.session.rollback()  # given back
        assert numbering.take("invoice", today) == f"INV-{YEAR}-0001"
        db.session.commit()
        assert numbering.take("invoice", today) == f"INV-{YEAR}-0002"
        assert numbering.take("invoice", next_year) == f"INV-{YEAR + 1}-0001"  # a new year starts at 1
        assert numbering.take("invoice", next_year) == f"INV-{YEAR + 1}-0002"
        numbering.set_counter(owner, "contract", "K-{YY}/{MM}-{#####}", 500, today)
        assert numbering.peek("contract", today) == f"K-{today:%y}/{today:%m}-00500"
        assert numbering.take("contract", today) == f"K-{today:%y}/{today:%m}-00500"
        assert numbering.peek("contract", today) == f"K-{today:%y}/{today:%m}-00501"
        numbering.set_counter(owner, "letter", "L-{####}", 7, today)  # no year: numbering never restarts
        assert numbering.take("letter", today) == "L-0007"
        assert numbering.take("letter", next_year) == "L-0008"
        for document_type, pattern, next_value, field, message in (
                ("contract", "CT-{YYYY}", 1, "pattern", "needs {###}"),
                ("contract", "CT-{YEAR}-{###}", 1, "pattern", "Only {YYYY}, {YY}, {MM}, {DD} and {###}"),
                ("contract", "", 1, "pattern", "at most 60 characters"),
                ("contract", "X" * 60 + "{#}", 1, "pattern", "at most 60 characters"),
                ("contract", "CT-{###}", 0, "next_value", "whole number from 1"),
                ("contract", "CT-{###}", "ten", "next_value", "whole number from 1"),
                ("receipt", "R-{###}", 1, "document_type", "Choose a document type")):
            with pytest.raises(Invalid) as refused:
                numbering.set_counter(owner, document_type, pattern, next_value, today)
            assert refused.value.field == field and message in str(refused.value.message), pattern
        assert numbering.peek("contract", today) == f"K-{today:%y}/{today:%m}-00501"  # unchanged
    member = add_person(app, company, role="member")
    with acting_as(app, company, member.user_id) as someone:
        with pytest.raises(Forbidden):
            numbering.set_counter(someone, "contract", "X-{###}", 1, today)


# --- the sweeper ---------------------------------------------------------------------------

def test_the_sweeper_queues_again_what_dead_or_lost_jobs_left_and_fails_what_kept_dying(app, make_tenant,
                                                                                       run_jobs):
    company = make_tenant()
    deal_id, template_id = make_deal(app, company), make_template(app, company)
    dead, worn_out, lost, fresh, busy, binned = (generate(app, company, template_id, deal_id) for _ in range(6))
    for document_id in (dead, worn_out, lost, fresh, busy, binned):
        drop_queued_jobs(app, company, document_id)
    long_ago = utcnow() - generation.STALE_CLAIM - timedelta(minutes=1)
    set_document(app, company, dead, generation_claim="dead-job", generation_claimed_at=long_ago,
                 generation_attempts=1)
    set_document(app, company, worn_out, generation_claim="dead-job-4", generation_claimed_at=long_ago,
                 generation_attempts=generation.MAX_ATTEMPTS)
    set_document(app, company, lost, created_at=utcnow() - generation.REQUEUE_AFTER - timedelta(minutes=1))
    set_document(app, company, busy, generation_claim="live-job", generation_claimed_at=utcnow(),
                 generation_attempts=1)
    set_document(app, company, binned, generation_claim="dead-job-2", generation_claimed_at=long_ago,
                 deleted_at=utcnow())
    assert sweep(app, company) == {"requeued": 2, "failed": 1}
    assert sweep(app, company) == {"requeued": 0, "failed": 0}  # the requeued ones get time to run
    run_jobs()
    for document_id in (dead, lost):
        made = document(app, company, document_id)
        assert (made.generation, made.generation_error) == (Generation.READY, None)
    assert sorted([document(app, company, dead).number, document(app, company, lost).number]) == \
        [f"CT-{YEAR}-0001", f"CT-{YEAR}-0002"]
    worn = document(app, company, worn_out)
    assert worn.generation == Generation.FAILED and worn.generation_claim is None
    assert "The worker stopped while making this document, 4 times. Try again" in worn.generation_error
    assert document(app, company, fresh).generation == Generation.GENERATING  # its job may still come
    assert document(app, company, busy).generation_claim == "live-job"  # its job is alive
    assert document(app, company, binned).generation_claim == "dead-job-2"  # in the recycle bin: left alone
    for document_id in (fresh, busy):  # tidy: nothing of this test for a later sweep to find
        set_document(app, company, document_id, deleted_at=utcnow())


HEAVY = ("{% for a in range(100) %}{% for b in range(20) %}<p>{{ a }}.{{ b }} Lorem ipsum dolor sit amet, "
         "consectetur adipiscing</p>{% endfor %}{% endfor %}")  # ~45 pages: a few seconds of WeasyPrint


def test_a_worker_killed_mid_job_leaves_a_document_the_sweeper_gets_made(app, make_tenant, run_jobs, live_worker):
    import psutil

    company = make_tenant()
    document_id = generate(app, company, make_template(app, company, name="Heavy", body=HEAVY),
                           make_deal(app, company))
    deadline = time.monotonic() + 60
    while document(app, company, document_id).generation_claim is None:
        assert live_worker.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, "no worker took the job"
        time.sleep(0.05)
    # The machine loses power: the worker and its work horse die at once, mid-job, without a word.
    doomed = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == live_worker.pid:
                doomed.append(process)
        except (OSError, psutil.Error):
            pass
    assert len(doomed) >= 2  # the worker and its horse
    for process in doomed:
        process.kill()
    psutil.wait_procs(doomed, timeout=10)
    live_worker.wait(10)
    made = document(app, company, document_id)
    assert made.generation == Generation.GENERATING and made.generation_claim  # what the dead job left
    assert versions_of(app, company, document_id) == []
    assert sweep(app, company) == {"requeued": 0, "failed": 0}  # a fresh claim may belong to a live job
    set_document(app, company, document_id,
                 generation_claimed_at=utcnow() - generation.STALE_CLAIM - timedelta(seconds=1))
    assert sweep(app, company) == {"requeued": 1, "failed": 0}
    run_jobs()
    assert_made_once(app, company, document_id, f"CT-{YEAR}-0001")
    assert next_number(app, company) == f"CT-{YEAR}-0002"


# --- quota ---------------------------------------------------------------------------------

def test_a_full_company_is_refused_at_the_click_and_a_pdf_that_would_overflow_fails_cleanly(app, make_tenant,
                                                                                          run_jobs):
    company = make_tenant()
    deal_id, template_id = make_deal(app, company), make_template(app, company)
    ref = tenant_ref(app, company)
    set_storage_used(app, company, FREE_LIMIT)
    with acting_as(app, company) as owner:
        for click in (lambda: generation.start(ref, template_id, Entity.DEAL, deal_id, owner, locale="en"),
                      lambda: generation.start_batch(ref, template_id, [deal_id], owner, locale="en")):
            with pytest.raises(services.QuotaRefused) as refused:
                click()
            message = str(refused.value.message)
            assert refused.value.status == 413 and "Free" in message and "200.0 MB" in message, message
        db.session.rollback()
    # Room for 1000 bytes: the click is taken, the PDF (tens of KB) does not fit.
    set_storage_used(app, company, FREE_LIMIT - 1000)
    document_id = generate(app, company, template_id, deal_id)
    run_jobs()
    made = document(app, company, document_id)
    assert made.generation == Generation.FAILED
    assert "would pass the Free plan's storage limit" in made.generation_error, made.generation_error
    assert storage_usage(app, company) == (FREE_LIMIT - 1000, 0)  # nothing counted, nothing held
    assert blob_keys(app, company) == [] and versions_of(app, company, document_id) == []
    # Space freed, the document is made again with the number it had.
    set_storage_used(app, company, 0)
    with acting_as(app, company) as owner:
        generation.retry(ref, document_id, owner, locale="en")
    run_jobs()
    assert_made_once(app, company, document_id, made.number)
    assert made.number == f"CT-{YEAR}-0001" and next_number(app, company) == f"CT-{YEAR}-0002"


# --- isolation -----------------------------------------------------------------------------

def test_a_company_cannot_generate_from_or_into_anothers_templates_records_documents_or_batches(
        app, make_tenant, run_jobs):
    ours, theirs = make_tenant(name="Ours"), make_tenant(name="Zebra Holdings")
    # They have more of everything, so their last ids are ids we do not have.
    their_deals = [make_deal(app, theirs, title=f"Zebra secret {n}") for n in range(4)]
    their_templates = [make_template(app, theirs, name=f"Zebra {n}", body="<p>ZEBRA {{ deal.title }}</p>")
                       for n in range(3)]
    their_document = generate(app, theirs, their_templates[-1], their_deals[-1])
    with acting_as(app, theirs) as owner:
        their_batch = generation.start_batch(tenant_ref(app, theirs), their_templates[-1], their_deals[1:], owner,
                                             locale="en")[0]
    our_deal, our_template = make_deal(app, ours), make_template(app, ours)
    ref = tenant_ref(app, ours)
    with acting_as(app, ours) as owner:
        for attempt in (
                lambda: generation.start(ref, their_templates[-1], Entity.DEAL, our_deal, owner, locale="en"),
                lambda: generation.start(ref, our_template, Entity.DEAL, their_deals[-1], owner, locale="en"),
                lambda: generation.start_batch(ref, their_templates[-1], [our_deal], owner, locale="en"),
                lambda: generation.retry(ref, their_document, owner, locale="en"),
                lambda: generation.batch(their_batch, owner)):
            with pytest.raises(NotFound):
                attempt()
        _batch, started, skipped = generation.start_batch(ref, our_template, their_deals[1:], owner, locale="en")
        assert started == [] and sorted(skipped) == sorted(their_deals[1:])
        db.session.rollback()
    ours_made = generate(app, ours, our_template, our_deal)
    run_jobs()
    assert document(app, theirs, their_document).generation == Generation.READY
    text = pdf_text(pdf_of(app, ours, ours_made))
    html = versions_of_html(app, ours, ours_made)
    assert "Northwind LLC" in text
    for theirs_only in ("Zebra", "ZEBRA"):
        assert theirs_only not in text and theirs_only not in html


def versions_of_html(app, company, document_id) -> str:
    with acting_as(app, company):
        return db.session.scalar(select(Version.source_html).where(Version.document_id == document_id))


# --- template versions ---------------------------------------------------------------------

def test_a_document_is_made_from_the_version_it_was_started_with_and_a_retry_from_the_current_one(
        app, make_tenant, run_jobs):
    company = make_tenant()
    deal_id = make_deal(app, company)
    template_id = make_template(app, company, body="<p>FIRST {{ deal.title }}</p>")
    ref = tenant_ref(app, company)

    def edit(body: str) -> int:
        with acting_as(app, company) as owner:
            return doc_templates.update(owner, template_id, {"body_html": body}).version

    first = generate(app, company, template_id, deal_id)
    assert edit("<p>SECOND {{ deal.title }}</p>") == 2  # saved after the click, before the job ran
    run_jobs()
    made = document(app, company, first)
    assert (made.generation, made.template_version) == (Generation.READY, 1)
    text = pdf_text(pdf_of(app, company, first))
    assert "FIRST Boiler delivery" in text and "SECOND" not in text
    # A version that fails, then a fixed one: the retry uses the fixed one.
    assert edit("<p>THIRD {{ deal.title|number }}</p>") == 3
    broken = generate(app, company, template_id, deal_id)
    run_jobs()
    made = document(app, company, broken)
    assert (made.generation, made.template_version, made.number) == (Generation.FAILED, 3, None)
    with acting_as(app, company) as owner:
        with pytest.raises(Invalid):
            generation.retry(ref, first, owner, locale="en")  # only a failed document is made again
    assert edit("<p>FOURTH {{ deal.title }}</p>") == 4
    with acting_as(app, company) as owner:
        generation.retry(ref, broken, owner, locale="en")
    run_jobs()
    made = document(app, company, broken)
    assert (made.generation, made.template_version, made.number) == (Generation.READY, 4, f"CT-{YEAR}-0002")
    assert "FOURTH Boiler delivery" in pdf_text(pdf_of(app, company, broken))


def test_a_batch_sends_its_jobs_only_when_it_commits(app, make_tenant, run_jobs):
    """Each document of a batch is started in a savepoint; releasing one must not send its job
    before the batch's rows are visible to a worker."""
    from saas.jobs import queue

    company = make_tenant()
    deal_ids = [make_deal(app, company, title=f"Deal {n}") for n in range(3)]
    template_id = make_template(app, company)
    run_jobs()
    with app.app_context():
        before = queue().count
    with acting_as(app, company) as owner:
        _batch, started, skipped = generation.start_batch(lookup_tenant(tenant_id=company.id), template_id,
                                                          deal_ids, owner, locale="en")
        assert (len(started), skipped) == (3, {})
        started = [d.id for d in started]
        assert queue().count == before  # not yet: the savepoints were released, the batch not committed
    with app.app_context():
        assert queue().count == before + 3
    run_jobs()
    assert all(document(app, company, d).generation == Generation.READY for d in started)


def test_the_ready_contract_is_made_for_a_company_without_a_logo(app, make_tenant, run_jobs):
    company = make_tenant()
    deal_id = make_deal(app, company)
    with acting_as(app, company):
        contract = next(t.id for t in doc_templates.all_templates("deal") if t.name == "Contract")
    document_id = generate(app, company, contract, deal_id)
    run_jobs()
    made = document(app, company, document_id)
    assert made.generation == Generation.READY, made.generation_error
    assert "Northwind LLC" in pdf_text(pdf_of(app, company, document_id))


def test_another_company_cannot_reach_generated_documents_through_the_pages(app, make_tenant, run_jobs):
    """Ids are counted per company: ours has no deal and no document, so theirs are only theirs."""
    from .conftest import csrf_token, sign_in

    theirs, ours = make_tenant(name="Theirs"), make_tenant(name="Ours")
    deal_id, template_id = make_deal(app, theirs), make_template(app, theirs)
    document_id = generate(app, theirs, template_id, deal_id)
    with acting_as(app, theirs) as owner:
        batch_id, _started, _skipped = generation.start_batch(lookup_tenant(tenant_id=theirs.id), template_id,
                                                              [deal_id], owner, locale="en")
    run_jobs()
    client = sign_in(app, ours)
    token = csrf_token(client.get("/settings/company").get_data(as_text=True))
    for path in (f"/documents/{document_id}/download.html", f"/documents/{document_id}/download.docx",
                 f"/documents/{document_id}", f"/documents/batches/{batch_id}"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "Northwind" not in answer.get_data(as_text=True)
    assert client.post(f"/documents/{document_id}/retry", data={"csrf_token": token}).status_code == 404
    refused = client.post(f"/deals/{deal_id}/generate", data={"csrf_token": token, "template_id": template_id},
                          headers={"Accept": "application/json"})
    assert refused.status_code in (404, 422)
    with acting_as(app, ours):
        assert db.session.scalar(select(func.count()).select_from(Document)) == 0
    with acting_as(app, theirs):
        assert db.session.scalar(select(func.count()).select_from(Document)) == 2
