"""Documents: the upload path through the quota ledger to the real S3 server, versions,
duplicates, the recycle bin and purge, and isolation between companies."""
import io
from datetime import timedelta

import pytest
from urllib.request import urlopen
from sqlalchemy import update

from billing.services import apply, offline_state, subscription_of
from saas.blobs import blob_store
from saas.crm import audit, services as crm
from saas.crm.models import Entity
from saas.documents import services as documents
from saas.documents.models import Document
from saas.errors import NotFound
from storage import ledger
from tenants.db import db
from tenants.models import TenantRef, utcnow
from tenants.registry import lookup_tenant

from .crm_helpers import acting_as, add_person, set_rule

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def tenant_of(company) -> TenantRef:
    return lookup_tenant(tenant_id=company.id)


def put(company, actor, entity, record_id, content: bytes, filename="contract.pdf", **data) -> Document:
    return documents.upload(tenant_of(company), entity, record_id, io.BytesIO(content), filename=filename,
                            size=len(content), actor=actor, data=data)


def test_an_upload_is_stored_sniffed_hashed_and_counted(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        deal = crm.create(Entity.DEAL, {"title": "Supply"}, owner)
        document = put(company, owner, Entity.DEAL, deal.id, PDF, filename="../../etc/Договор №1.exe")
        version = document.current
        assert (document.title, version.filename) == ("Договор №1.exe", "Договор №1.exe")
        assert version.content_type == "application/pdf"  # the bytes say PDF, whatever the name
        assert version.blob_key.startswith(f"t/{tenant_of(company).uuid}/") and "Договор" not in version.blob_key
        assert b"".join(blob_store().open(version.blob_key)) == PDF
        assert ledger.usage(company.id) == (len(PDF), 0)
        url = documents.link(version, inline=True)
    with urlopen(url, timeout=10) as fetched:
        assert fetched.read() == PDF and fetched.headers["Content-Type"] == "application/pdf"
        assert "inline" in fetched.headers["Content-Disposition"]


def test_versions_keep_the_old_bytes_and_identical_bytes_are_offered_as_a_version(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        deal = crm.create(Entity.DEAL, {"title": "Supply"}, owner)
        contract = put(company, owner, Entity.DEAL, deal.id, PDF, title="Contract 12")
        with pytest.raises(documents.Duplicate) as again:
            put(company, owner, Entity.DEAL, deal.id, PDF, filename="copy.pdf")
        assert again.value.document.id == contract.id
        second = documents.add_version(tenant_of(company), contract.id, io.BytesIO(PDF + b"%v2"), filename="c2.pdf",
                                       size=len(PDF) + 3, actor=owner)
        assert [v.number for v in contract.live_versions] == [1, 2] and contract.current is second
        first = documents.version_of(contract, 1)
        assert b"".join(blob_store().open(first.blob_key)) == PDF
        assert ledger.usage(company.id) == (2 * len(PDF) + 3, 0)  # every version counts
        documents.delete(contract.id, owner, version=1)
        assert [v.number for v in contract.live_versions] == [2]
        with pytest.raises(documents.Conflict):
            documents.delete(contract.id, owner, version=2)  # the only live one: delete the document


def test_a_refused_or_broken_upload_keeps_neither_bytes_nor_quota(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        deal = crm.create(Entity.DEAL, {"title": "Supply"}, owner)
        ledger.set_used(company.id, 200 * 1024 * 1024 - 10)  # Free: 200 MB for the company
        with pytest.raises(documents.QuotaRefused) as refused:
            put(company, owner, Entity.DEAL, deal.id, PDF)
        assert (refused.value.plan.key, refused.value.limit_bytes) == ("free", 200 * 1024 * 1024)
        assert refused.value.status == 413
        ledger.set_used(company.id, 0)

        class Broken(io.BytesIO):
            def read(self, n=-1):
                raise OSError("the client went away")

        with pytest.raises(OSError):
            documents.upload(tenant_of(company), Entity.DEAL, deal.id, Broken(), filename="x.pdf", size=10_000_000,
                             actor=owner)
        with pytest.raises(documents.Invalid):  # more bytes than declared: the declared size is all it may use
            documents.upload(tenant_of(company), Entity.DEAL, deal.id, io.BytesIO(PDF), filename="x.pdf",
                             size=10, actor=owner)
        assert ledger.usage(company.id) == (0, 0)
        assert list(blob_store().keys(tenant_of(company).blob_prefix)) == []
        assert db.session.query(Document).count() == 0


def test_plans_set_the_limit_standard_per_active_user_extended_none(app, make_tenant):
    company = make_tenant()
    add_person(app, company)
    with app.app_context():
        for plan, limit in (("free", 200 * 1024 ** 2), ("standard", 2 * 500 * 1024 ** 2), ("extended", None)):
            apply(subscription_of(company.id, lock=True), offline_state(plan, 2))
            db.session.commit()
            assert documents.usage(tenant_of(company)).limit == limit


def test_deleted_documents_wait_in_the_bin_then_their_blobs_go_and_quota_returns(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        deal = crm.create(Entity.DEAL, {"title": "Supply"}, owner)
        kept = put(company, owner, Entity.DEAL, deal.id, PDF)
        doomed = put(company, owner, Entity.DEAL, deal.id, PNG, filename="scan.png")
        for document in (kept, doomed):
            documents.delete(document.id, owner)
        assert documents.on_card(Entity.DEAL, deal.id, owner) == []
        assert {d.id for d in documents.deleted(owner)} == {kept.id, doomed.id}
        documents.restore(kept.id, owner)
        db.session.execute(update(Document).where(Document.id == doomed.id)
                           .values(deleted_at=utcnow() - timedelta(days=31)))
        doomed_key = doomed.versions[0].blob_key
        assert documents.purge_expired(tenant_of(company)) == (len(PNG), [doomed_key])
        assert ledger.usage(company.id) == (len(PDF), 0)
        assert [d.id for d in documents.on_card(Entity.DEAL, deal.id, owner)] == [kept.id]


def test_a_company_card_lists_its_deals_documents_and_annexes_link_within_a_card(app, make_tenant):
    company = make_tenant()
    with acting_as(app, company) as owner:
        firm = crm.create(Entity.COMPANY, {"name": "Romashka"}, owner)
        deal = crm.create(Entity.DEAL, {"title": "Supply", "company_id": firm.id}, owner)
        other = crm.create(Entity.DEAL, {"title": "Other"}, owner)
        contract = put(company, owner, Entity.DEAL, deal.id, PDF)
        annex = put(company, owner, Entity.DEAL, deal.id, PNG, filename="annex.png", parent_id=contract.id)
        assert annex.parent_id == contract.id
        elsewhere = put(company, owner, Entity.DEAL, other.id, PDF)
        with pytest.raises(documents.Invalid):
            documents.update(elsewhere.id, {"parent_id": contract.id}, owner)
        assert {d.id for d in documents.on_card(Entity.COMPANY, firm.id, owner)} == {contract.id, annex.id}
        assert [e.action for e in audit.timeline(Entity.DEAL, deal.id)][:2] == ["document", "document"]


def test_documents_follow_their_cards_access_rules_and_never_cross_companies(app, make_tenant):
    a, b = make_tenant(name="A"), make_tenant(name="B")
    anna = add_person(app, a)
    set_rule(app, a, "member", Entity.DEAL, "own")
    with acting_as(app, a) as owner:
        deal_id = crm.create(Entity.DEAL, {"title": "Owner's"}, owner).id
        secret = put(company=a, actor=owner, entity=Entity.DEAL, record_id=deal_id, content=PDF).id
    with acting_as(app, a, anna.user_id) as member:
        for attempt in (lambda: documents.get(secret, member), lambda: documents.on_card(Entity.DEAL, deal_id, member),
                        lambda: documents.delete(secret, member)):
            with pytest.raises(NotFound):
                attempt()
    with acting_as(app, b) as owner_b:
        b_deal = crm.create(Entity.DEAL, {"title": "B's"}, owner_b)
        with pytest.raises(NotFound):
            documents.get(secret, owner_b)
        assert documents.on_card(Entity.DEAL, b_deal.id, owner_b) == []
        assert documents.deleted(owner_b) == []
        assert ledger.usage(b.id) == (0, 0)


def test_filenames_are_for_display_only(app):
    assert documents.safe_filename("..\\..\\windows\\system32\\evil.dll") == "evil.dll"
    assert documents.safe_filename("/etc/passwd") == "passwd"
    assert documents.safe_filename("a\x00b\u202etxt.exe") == "abtxt.exe"
    assert documents.safe_filename("...") == "file"
    long = documents.safe_filename("я" * 500 + ".pdf")
    assert len(long) <= 200 and long.endswith(".pdf")


def test_content_types_come_from_the_bytes():
    assert documents.sniff(b"  0\r\nSECTION\r\n  2\r\nHEADER\r\n") == "image/vnd.dxf"  # ASCII DXF: a drawing
    assert documents.sniff(PNG) == "image/png" and documents.sniff(PDF) == "application/pdf"
    assert documents.sniff("Договор".encode()) == "text/plain"
    assert documents.sniff(b"\x00\x01\x02garbage") == "application/octet-stream"
    assert not documents.is_inline("image/svg+xml") and not documents.is_inline("text/html")
