"""Documents: the upload path through the quota ledger to the real S3 server, versions,
duplicates, the recycle bin and purge, and isolation between companies."""
import io
import threading
from datetime import timedelta

import pytest
from urllib.request import urlopen
from sqlalchemy import update

from saas.blobs import blob_store
from saas.crm import services as crm
from saas.crm.models import Entity
from saas.documents import services as documents
from saas.documents.models import Document, Version
from saas.errors import NotFound
from storage import ledger
from tenants.db import db
from tenants.models import Tenant, TenantRef, utcnow
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
