"""Documents against the real S3 server under stress: racing a quota, aborted and lying uploads,
spoofed content types, hostile filenames, keys and presigned links across companies, the
reconciler, the recycle bin purge and forwarding by email."""
import email
import io
import re
import socket
import threading
import time
import uuid
from datetime import timedelta
from email import policy
from urllib.error import HTTPError
from urllib.parse import parse_qs, quote, urlparse
from urllib.request import urlopen

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import select, update

from saas.auth.models import Membership
from saas.blobs import blob_store
from saas.cli import cli
from saas.crm import services as crm
from saas.crm.models import Deal, Entity
from saas.documents import forwarding, services as documents
from saas.documents.models import Document, Version
from saas.errors import Invalid, NotFound
from storage import ledger
from tenants.db import db
from tenants.models import utcnow
from tenants.scope import tenant_scope

from .conftest import csrf_token, sign_in
from .crm_helpers import acting_as
from .test_documents_services import PDF, PNG, put, tenant_of

MB = 1024 * 1024
FREE_LIMIT = 200 * MB
HTML = b"<!DOCTYPE html><html><head><script>alert(document.cookie)</script></head><body>hi</body></html>\n"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>\n'
KEY = re.compile(r"t/[0-9a-f-]{36}/[0-9a-f-]{36}")


def store(company, actor, entity, record_id, content: bytes, filename="contract.pdf", **data) -> Document:
    """An upload, committed as a request commits it (two uploads in one transaction would wait on
    each other: the first holds the ledger row until it commits)."""
    document = put(company, actor, entity, record_id, content, filename=filename, **data)
    db.session.commit()
    return document


def blobs(app, company) -> list[str]:
    with app.app_context():
        return [key for key, _size in blob_store().keys(tenant_of(company).blob_prefix)]


def tenant_of_in(app, company):
    with app.app_context():
        return tenant_of(company)


def new_deal(app, company, title="Supply") -> int:
    with acting_as(app, company) as owner:
        return crm.create(Entity.DEAL, {"title": title}, owner).id


def fetch(url: str) -> tuple[int, dict, bytes]:
    try:
        with urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except HTTPError as error:
        return error.code, dict(error.headers), error.read()


def run_cli(app, *args):
    result = CliRunner().invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 0, result.output
    return result.output


# --- racing the quota ----------------------------------------------------------------------

def test_fifty_concurrent_uploads_never_pass_the_quota_by_a_byte(app, tuned_app, make_tenant):
    """50 uploads of 1 MB at once, room for 17: exactly 17 land, the ledger ends exact."""
    company = make_tenant()
    deal_id = new_deal(app, company)
    remainder = 12345
    with app.app_context():
        ledger.set_used(company.id, FREE_LIMIT - 17 * MB - remainder)
        db.session.commit()
    # Each upload holds a session connection while it reserves on another: 51 connections let
    # all 50 threads through whatever the order.
    racing = tuned_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 10, "max_overflow": 41, "pool_timeout": 60})
    ref = tenant_of_in(app, company)
    start = threading.Barrier(50, timeout=60)
    outcomes = []

    def upload(n: int):
        with racing.app_context(), tenant_scope(ref):
            actor = db.session.scalar(select(Membership).where(Membership.tenant_id == company.id,
                                                               Membership.user_id == company.owner_id))
            content = n.to_bytes(4, "big") + bytes(MB - 4)  # different bytes each: no duplicates
            start.wait()
            try:
                documents.upload(ref, Entity.DEAL, deal_id, io.BytesIO(content), filename=f"part-{n}.bin",
                                 size=MB, actor=actor)
                db.session.commit()
                outcomes.append("stored")
            except documents.QuotaRefused:
                db.session.rollback()
                outcomes.append("refused")
            except BaseException as error:  # noqa: BLE001  (shown in the assertion below)
                outcomes.append(repr(error))

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 33 + ["stored"] * 17
    with app.app_context():
        assert ledger.usage(company.id) == (FREE_LIMIT - remainder, 0)
    with app.app_context(), tenant_scope(ref):
        assert sorted(blobs(app, company)) == sorted(db.session.scalars(select(Version.blob_key)))
        assert len(blobs(app, company)) == 17


# --- aborted and lying uploads -------------------------------------------------------------

class BreaksMidway(io.RawIOBase):
    """A client that sends 1 MB of a declared 3 MB, then goes away."""

    def __init__(self):
        self.sent = 0

    def readable(self):
        return True

    def read(self, n=-1):
        if self.sent >= MB:
            raise ConnectionResetError("the client went away")
        chunk = bytes(min(n if n > 0 else 64 * 1024, MB - self.sent))
        self.sent += len(chunk)
        return chunk


def test_aborted_short_and_overlong_uploads_leave_nothing_behind(app, make_tenant):
    company = make_tenant()
    deal_id = new_deal(app, company)
    with acting_as(app, company) as owner:
        kept = store(company, owner, Entity.DEAL, deal_id, PDF)
        before = (ledger.usage(company.id), blobs(app, company))
        tenant = tenant_of(company)
        attempts = [
            (ConnectionResetError, BreaksMidway(), 3 * MB),  # the connection drops midway
            (Invalid, io.BytesIO(b"x" * 5000), 1000),  # more bytes than declared: cut at the declared size
            (Invalid, io.BytesIO(b"x" * 5000), 10_000),  # fewer bytes than declared: a truncated file
        ]
        for problem, stream, size in attempts:
            with pytest.raises(problem):
                documents.upload(tenant, Entity.DEAL, deal_id, stream, filename="cut.bin", size=size, actor=owner)
            db.session.rollback()
        assert (ledger.usage(company.id), blobs(app, company)) == before
        assert [d.id for d in db.session.scalars(select(Document))] == [kept.id]
        assert len(before[1]) == 1 and before[0] == (len(PDF), 0)


def test_an_http_upload_cut_off_midway_leaves_nothing_behind(app, live_server, make_tenant):
    company = make_tenant()
    deal_id = new_deal(app, company)
    client = sign_in(app, company)
    token = csrf_token(client.get(f"/deals/{deal_id}").get_data(as_text=True))
    cookie = client.get_cookie("session", domain=company.host.split(":")[0]).value
    port = urlparse(live_server).port

    def send(declared: int, body: bytes, answer: bool) -> str:
        head = (f"POST /deals/{deal_id}/documents?filename=big.bin HTTP/1.1\r\nHost: {company.host}\r\n"
                f"Cookie: session={cookie}\r\nX-CSRFToken: {token}\r\nConnection: close\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(head + body)
            return connection.makefile("rb").readline().decode() if answer else ""

    send(5 * MB, bytes(MB), answer=False)  # 1 MB of a declared 5 MB, then the socket closes
    assert " 201 " in send(1000, b"y" * 1000, answer=True)  # the same request, whole, is stored
    with app.app_context():
        assert ledger.usage(company.id) == (1000, 0)
        assert len(blobs(app, company)) == 1


# --- what the bytes are, whatever they are called ----------------------------------------

def test_content_types_come_from_the_bytes_and_active_content_is_never_inline(app, make_tenant):
    company = make_tenant()
    deal_id = new_deal(app, company)
    with acting_as(app, company) as owner:
        png = store(company, owner, Entity.DEAL, deal_id, PNG, filename="contract.pdf").current
        html = store(company, owner, Entity.DEAL, deal_id, HTML, filename="invoice.pdf").current
        svg = store(company, owner, Entity.DEAL, deal_id, SVG, filename="drawing.png").current
        assert png.content_type == "image/png"
        assert html.content_type in ("text/html", "text/plain")
        assert svg.content_type != "image/png" and not documents.is_inline(svg.content_type)
        links = {v.filename: documents.link(v, inline=True) for v in (png, html, svg)}
    status, headers, body = fetch(links["contract.pdf"])
    assert (status, headers["Content-Type"], body) == (200, "image/png", PNG)
    for name, content in (("invoice.pdf", HTML), ("drawing.png", SVG)):
        status, headers, body = fetch(links[name])
        assert (status, body) == (200, content)
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers["Content-Disposition"].startswith("attachment;")


def test_the_view_page_serves_html_as_a_download(app, make_tenant):
    company = make_tenant()
    deal_id = new_deal(app, company)
    with acting_as(app, company) as owner:
        html = store(company, owner, Entity.DEAL, deal_id, HTML, filename="page.html").id
    response = sign_in(app, company).get(f"/documents/{html}/view")
    assert response.status_code == 302
    status, headers, _body = fetch(response.headers["Location"])
    assert status == 200 and headers["Content-Disposition"].startswith("attachment;")
    assert headers["Content-Type"] == "application/octet-stream"


HOSTILE = [
    "../../../etc/passwd",
    "..\\..\\boot.ini",
    "t/00000000-0000-0000-0000-000000000000/stolen",
    "a\r\nContent-Type: text/html\r\n\r\n<script>.pdf",
    "\u202eexe.pdf",
    "%2e%2e%2f%2e%2e%2fkey",
    "x" * 1000 + ".pdf",
    "Договор \"поставки\"; filename=evil.exe.pdf",
    "\x00\x01\x1f",
    ".",
]


def test_hostile_filenames_are_shown_safely_and_never_reach_a_key(app, make_tenant):
    company = make_tenant()
    deal_id = new_deal(app, company)
    prefix = tenant_of_in(app, company).blob_prefix
    with acting_as(app, company) as owner:
        for n, raw in enumerate(HOSTILE):
            name = documents.safe_filename(raw)
            assert name and "/" not in name and "\\" not in name and len(name) <= 200
            assert not any(ord(ch) < 32 or 0x202a <= ord(ch) <= 0x202e for ch in name)
            version = store(company, owner, Entity.DEAL, deal_id, PDF + str(n).encode(), filename=raw).current
            assert version.filename == name
            assert version.blob_key.startswith(prefix) and KEY.fullmatch(version.blob_key)
            status, headers, body = fetch(documents.link(version))
            assert (status, body) == (200, PDF + str(n).encode())
            disposition = headers["Content-Disposition"]  # one header, the name quoted inside it
            assert disposition.startswith('attachment; filename="') and f"filename*=UTF-8''{quote(name, safe='')}" \
                in disposition and not re.search(r"[\r\n\x00]", disposition)


# --- keys and links across companies -----------------------------------------------------

def test_a_company_cannot_reach_anothers_documents_by_id_link_or_key(app, make_tenant):
    a, b = make_tenant(name="A"), make_tenant(name="B")
    deal_id = new_deal(app, a)
    with acting_as(app, a) as owner:
        secret = store(a, owner, Entity.DEAL, deal_id, PDF, filename="secret.pdf")
        secret_id, url = secret.id, documents.link(secret.current)
        a_prefix, b_prefix = tenant_of(a).blob_prefix, tenant_of(b).blob_prefix
    path = urlparse(url).path
    assert f"/{a_prefix}" in path and f"/{b_prefix}" not in path
    with acting_as(app, b) as owner_b:
        for attempt in (lambda: documents.get(secret_id, owner_b), lambda: documents.update(secret_id, {}, owner_b),
                        lambda: documents.delete(secret_id, owner_b), lambda: documents.restore(secret_id, owner_b),
                        lambda: forwarding.forward(secret_id, owner_b, to="x@example.com", mode="link")):
            with pytest.raises(NotFound):
                attempt()
        with pytest.raises(NotFound):
            documents.add_version(tenant_of(b), secret_id, io.BytesIO(PNG), filename="x.png", size=len(PNG),
                                  actor=owner_b)
        assert db.session.get(Document, secret_id) is None  # B's schema has no row by that id at all
    b_client = sign_in(app, b)
    for path in (f"/documents/{secret_id}", f"/documents/{secret_id}/download", f"/documents/{secret_id}/view",
                 f"/documents/{secret_id}/download?version=1"):
        assert b_client.get(path).status_code == 404, path
    with app.app_context():
        assert ledger.usage(b.id) == (0, 0) and blobs(app, b) == []


def test_presigned_links_expire_and_cannot_be_altered(app, make_tenant):
    a, b = make_tenant(name="A"), make_tenant(name="B")
    with acting_as(app, a) as owner:
        version = store(a, owner, Entity.DEAL, new_deal_in(owner), PDF, filename="a.pdf").current
        good, key = documents.link(version), version.blob_key
    with acting_as(app, b) as owner_b:
        other_key = store(b, owner_b, Entity.DEAL, new_deal_in(owner_b), PNG, filename="b.png").current.blob_key
    with app.app_context():
        # (signed with a whole-second date: 2 s leave at least one for the first fetch)
        short = blob_store().link(key, filename="a.pdf", content_type="application/pdf", inline=False, seconds=2)
    assert fetch(good)[0] == 200 and fetch(short)[0] == 200
    signature = parse_qs(urlparse(good).query)["X-Amz-Signature"][0]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert fetch(good.replace(signature, flipped))[0] == 403
    assert fetch(good.replace(key, other_key))[0] == 403  # B's key under A's signature
    assert fetch(good.replace("attachment", "inline"))[0] == 403  # the named disposition is signed too
    time.sleep(3)  # the short link's time is over
    assert fetch(short)[0] == 403


def new_deal_in(owner) -> int:
    return crm.create(Entity.DEAL, {"title": "Deal"}, owner).id


# --- the reconciler and the purge --------------------------------------------------------

def test_the_reconciler_removes_orphans_and_stale_reservations_and_corrects_usage(app, make_tenant, run_jobs):
    company = make_tenant()
    deal_id = new_deal(app, company)
    with acting_as(app, company) as owner:
        kept = store(company, owner, Entity.DEAL, deal_id, PDF).current.blob_key
        prefix = tenant_of(company).blob_prefix
    orphan, stale, busy = (f"{prefix}{uuid.uuid4()}" for _ in range(3))
    with app.app_context():
        for key in (orphan, stale, busy):  # a crash after writing; a crash long ago; an upload now
            blob_store().put(key, io.BytesIO(b"z" * 700))
        old = ledger.reserve(company.id, 700, None, stale)
        fresh = ledger.reserve(company.id, 700, None, busy)
        db.session.execute(update(ledger.Reservation).where(ledger.Reservation.id == old)
                           .values(created_at=utcnow() - timedelta(hours=2)))
        ledger.set_used(company.id, 99_999)  # drifted
        db.session.commit()

    output = run_cli(app, "storage", "reconcile")
    assert f"{company.slug}: 1 stale reservation(s) released, 1 orphan blob(s) deleted, usage 99999 → " \
           f"{len(PDF)} bytes." in output
    with app.app_context():
        assert sorted(blobs(app, company)) == sorted([kept, busy])
        assert ledger.usage(company.id) == (len(PDF), 700)
        assert db.session.scalars(select(ledger.Reservation.id).where(
            ledger.Reservation.tenant_id == company.id)).all() == [fresh]
        ledger.release(fresh)
        blob_store().delete(busy)

    run_cli(app, "storage", "reconcile", "--enqueue")  # the same, scheduled on the worker
    run_jobs()
    with app.app_context():
        assert (blobs(app, company), ledger.usage(company.id)) == ([kept], (len(PDF), 0))


def test_purging_the_bin_deletes_the_blobs_and_gives_the_quota_back(app, make_tenant):
    company = make_tenant()
    deal_id, dropped_deal = new_deal(app, company), new_deal(app, company, title="Dropped")
    with acting_as(app, company) as owner:
        kept = store(company, owner, Entity.DEAL, deal_id, PDF)
        doomed = store(company, owner, Entity.DEAL, deal_id, PNG, filename="scan.png")
        on_dropped = store(company, owner, Entity.DEAL, dropped_deal, PDF + b"x", filename="dropped.pdf")
        documents.add_version(tenant_of(company), kept.id, io.BytesIO(PDF + b"v2"), filename="v2.pdf",
                              size=len(PDF) + 2, actor=owner)
        keys = {"doomed": doomed.current.blob_key, "v1": documents.version_of(kept, 1).blob_key,
                "v2": documents.version_of(kept, 2).blob_key, "dropped": on_dropped.current.blob_key}
        doomed_id, kept_id = doomed.id, kept.id
        documents.delete(doomed.id, owner)
        documents.delete(kept.id, owner, version=1)
        crm.delete_record(Entity.DEAL, dropped_deal, owner)  # its documents go with it when it is purged
    with app.app_context():
        assert ledger.usage(company.id) == (3 * len(PDF) + 3 + len(PNG), 0)  # the bin counts too

    run_cli(app, "tenants", "purge-bin")  # nothing is 30 days old yet
    assert sorted(blobs(app, company)) == sorted(keys.values())

    with acting_as(app, company):
        month_ago = utcnow() - timedelta(days=31)
        db.session.execute(update(Document).where(Document.id == doomed_id).values(deleted_at=month_ago))
        db.session.execute(update(Version).where(Version.blob_key == keys["v1"]).values(deleted_at=month_ago))
        db.session.execute(update(Deal).where(Deal.id == dropped_deal).values(deleted_at=month_ago))
    output = run_cli(app, "tenants", "purge-bin")
    assert f"{company.slug}: 1 record(s) purged." in output and f"{company.slug}: 3 file(s) purged" in output
    with app.app_context():
        assert blobs(app, company) == [keys["v2"]]
        assert ledger.usage(company.id) == (len(PDF) + 2, 0)
    with acting_as(app, company):
        assert db.session.scalars(select(Document.id)).all() == [kept_id]


# --- forwarding by email -----------------------------------------------------------------

def mails(outbox) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime)]


def test_forwarding_sends_the_file_or_a_link_that_works(app, make_tenant, outbox, run_jobs):
    company = make_tenant(name="Romashka")
    deal_id = new_deal(app, company)
    big = bytes(20 * MB + 1)
    with acting_as(app, company) as owner:
        contract = store(company, owner, Entity.DEAL, deal_id, PDF, filename="Договор №7.pdf", title="Contract 7")
        drawing = store(company, owner, Entity.DEAL, deal_id, big, filename="plan.dwg", title="Plan")
        forwarding.forward(contract.id, owner, to=" Client@Example.COM ", mode="attachment",
                           message="Please sign.")
        forwarding.forward(contract.id, owner, to="client@example.com", mode="link", version=1)
        forwarding.forward(drawing.id, owner, to="client@example.com", mode="attachment")  # too big: a link
        for wrong in (dict(to="not an address", mode="link"), dict(to="c@example.com", mode="fax")):
            with pytest.raises(Invalid):
                forwarding.forward(contract.id, owner, **wrong)
        with pytest.raises(NotFound):
            forwarding.forward(contract.id, owner, to="c@example.com", mode="link", version=9)
    run_jobs()

    sent = mails(outbox)
    [attached] = [m for m in sent if list(m.iter_attachments())]
    [too_big] = [m for m in sent if "Plan" in m["Subject"]]
    [linked] = [m for m in sent if m is not attached and m is not too_big]
    for message in (attached, linked, too_big):
        assert message["To"] == "client@example.com"
        assert message["Reply-To"] == company.owner_email
        assert "Romashka Owner" in message["Subject"]
    assert "Contract 7" in attached["Subject"] and "Please sign." in attached.get_body().get_content()
    [part] = list(attached.iter_attachments())
    assert (part.get_filename(), part.get_content_type(), part.get_content()) == (
        "Договор №7.pdf", "application/pdf", PDF)

    for message, content, name in ((linked, PDF, "%D0%94%D0%BE%D0%B3%D0%BE%D0%B2%D0%BE%D1%80"),
                                   (too_big, big, "plan.dwg")):
        assert list(message.iter_attachments()) == []
        [url] = re.findall(r"https?://\S+", message.get_body().get_content())
        assert parse_qs(urlparse(url).query)["X-Amz-Expires"] == [str(7 * 24 * 3600)]
        status, headers, body = fetch(url)
        assert (status, body) == (200, content) and name in headers["Content-Disposition"]
    assert "too large to attach" in too_big.get_body().get_content()


def test_forwarding_a_document_deleted_before_the_mail_goes_sends_nothing(app, make_tenant, outbox, run_jobs):
    company = make_tenant()
    deal_id = new_deal(app, company)
    with acting_as(app, company) as owner:
        doc = store(company, owner, Entity.DEAL, deal_id, PDF)
        forwarding.forward(doc.id, owner, to="client@example.com", mode="attachment")
        documents.delete(doc.id, owner)
    run_jobs()
    assert mails(outbox) == []


def test_the_forward_form_queues_the_mail(app, make_tenant, outbox, run_jobs):
    company = make_tenant()
    deal_id = new_deal(app, company)
    with acting_as(app, company) as owner:
        doc = store(company, owner, Entity.DEAL, deal_id, PDF).id
    client = sign_in(app, company)
    token = csrf_token(client.get(f"/documents/{doc}").get_data(as_text=True))
    response = client.post(f"/documents/{doc}/forward", data={"csrf_token": token, "to": "client@example.com",
                                                              "mode": "link", "message": ""})
    assert response.status_code == 302
    run_jobs()
    [message] = mails(outbox)
    assert message["To"] == "client@example.com" and "X-Amz-Signature" in message.get_body().get_content()
