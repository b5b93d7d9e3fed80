"""Deleting documents for good from the recycle bin: what is in the bin still counts against the
quota, so a company over its limit frees space only by removing files for good (one document,
one version, or the whole bin of documents). Owner and administrators only; the rows and the
bytes in the ledger go in one transaction, the files in S3 after it; another company reaches
nothing.

Storage is filled by real uploads through an app whose Free plan holds 1 MB, and a company gets
over it the way a person would: uploading on Standard, then switching to Free."""
import html
import json
import re

import pytest
from sqlalchemy import select

from saas.blobs import blob_store
from saas.documents.models import Document, Version
from saas.documents.services import human_size
from storage import ledger
from tenants.registry import lookup_tenant
from tenants.db import db

from .conftest import client_for, csrf_token, sign_in
from .crm_helpers import acting_as, add_person
from .test_auth import copy_cookie, messages
from .test_billing_pages import content, switch, switched
from .test_documents_pages import fetch, make_deal, post_file, token_of, upload

KB = 1024
MB = 1024 * KB


@pytest.fixture
def tiny(tuned_app):
    """The app with a 1 MB Free plan (Standard keeps its 500 MB per person)."""
    return tuned_app(PLAN_FREE_STORAGE_MB=1)


# --- helpers -----------------------------------------------------------------------------------

def used_bytes(app, company) -> int:
    with app.app_context():
        used, reserved = ledger.usage(company.id)
        assert reserved == 0
        return used


def stored_keys(app, company) -> set[str]:
    """The blobs really in the S3 bucket under the company's prefix."""
    with app.app_context():
        return {key for key, _size in blob_store().keys(lookup_tenant(tenant_id=company.id).blob_prefix)}


def keys_of(app, company, document_id: int) -> dict[int, str]:
    """{version number: blob key} of a document, in the bin or not."""
    with acting_as(app, company):
        return dict(db.session.execute(select(Version.number, Version.blob_key)
                                       .where(Version.document_id == document_id)).all())


def document_exists(app, company, document_id: int) -> bool:
    with acting_as(app, company):
        return db.session.get(Document, document_id) is not None


def bin_page(client) -> str:
    response = client.get("/recycle-bin")
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def press(client, path: str):
    """A button of the recycle bin page, with the page's CSRF token."""
    return client.post(path, data={"csrf_token": csrf_token(bin_page(client))})


def confirmation(page: str, action: str) -> str:
    """The question the browser asks (confirm()) before the form posting to `action` is sent."""
    match = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*onsubmit=\'return confirm\((.*?)\)\'',
                      page)
    assert match, f"no confirmed form for {action}"
    return json.loads(match.group(1))


def refused(client, deal_id: int) -> dict:
    response = post_file(client, f"/deals/{deal_id}/documents", content(10 * KB), "small.pdf")
    assert response.status_code == 413, response.status_code
    return response.get_json()


def delete_to_bin(client, document_id: int, version: int | None = None) -> None:
    path = f"/documents/{document_id}" + (f"/versions/{version}" if version else "") + "/delete"
    assert client.post(path, data={"csrf_token": token_of(client)}).status_code == 302


def on_standard(app, company) -> tuple[object, int]:
    """The owner, signed in, on Standard (room to store more than Free allows), and a deal."""
    deal_id = make_deal(app, company)
    owner = sign_in(app, company)
    switched(owner, "standard")
    return owner, deal_id


def back_to_free(app, company, owner) -> int:
    """The owner switches to Free while storing more than it holds; the bytes stored."""
    switch(owner, "free")
    used = used_bytes(app, company)
    assert used > MB
    return used


# --- the quota waits for the bin ------------------------------------------------------------------

def test_a_company_over_its_limit_frees_space_only_by_deleting_for_good(tiny, make_tenant):
    company = make_tenant()
    owner, deal_id = on_standard(tiny, company)
    big = upload(owner, deal_id, content(700 * KB), "contract.pdf")
    drawing = upload(owner, deal_id, content(500 * KB), "drawing.dwg")
    used = back_to_free(tiny, company, owner)
    big_key = keys_of(tiny, company, big)[1]
    assert used == 1200 * KB and big_key in stored_keys(tiny, company)

    # The refusal and the owner's notice say that the bin still counts, and where it is.
    message = refused(owner, deal_id)["message"]
    assert f"free {human_size(used - MB)}" in message and "recycle bin count until they are deleted for good" in message
    page = html.unescape(owner.get(f"/deals/{deal_id}").get_data(as_text=True))
    notice = page[page.index("storage-notice"):]
    notice = notice[:notice.index("</div>")]
    assert "Files in the recycle bin count until they are deleted for good" in notice
    assert 'href="/recycle-bin"' in notice

    # Deleting moves the file to the bin: nothing is freed, uploads are still refused.
    delete_to_bin(owner, big)
    assert used_bytes(tiny, company) == used and big_key in stored_keys(tiny, company)
    refused(owner, deal_id)

    # The bin offers to delete it for good, behind a confirmation, naming what it frees.
    shown = bin_page(owner)
    assert confirmation(shown, f"/recycle-bin/documents/{big}/purge") == \
        "Delete “contract.pdf” and all its versions for good? The files cannot be restored."
    assert "700.0 KB" in shown
    # Without the CSRF token nothing happens.
    assert owner.post(f"/recycle-bin/documents/{big}/purge").status_code == 400
    assert used_bytes(tiny, company) == used and document_exists(tiny, company, big)

    response = press(owner, f"/recycle-bin/documents/{big}/purge")
    assert response.status_code == 302 and response.headers["Location"].endswith("/recycle-bin")
    assert "“contract.pdf” is deleted for good: 700.0 KB freed." in messages(owner.get("/recycle-bin"))
    assert used_bytes(tiny, company) == used - 700 * KB
    assert big_key not in stored_keys(tiny, company) and not document_exists(tiny, company, big)
    assert f'data-document-id="{big}"' not in bin_page(owner)

    # Under the limit again: the upload is accepted, and the other document is untouched.
    upload(owner, deal_id, content(10 * KB), "small.pdf")
    assert len(fetch(owner, f"/documents/{drawing}/download")[0]) == 500 * KB
    # Gone for good: a second press finds nothing and frees nothing twice.
    assert press(owner, f"/recycle-bin/documents/{big}/purge").status_code == 404
    assert used_bytes(tiny, company) == 510 * KB


def test_a_version_deleted_for_good_frees_its_bytes_and_keeps_the_document(tiny, make_tenant):
    company = make_tenant()
    owner, deal_id = on_standard(tiny, company)
    document_id = upload(owner, deal_id, content(400 * KB), "contract.pdf")
    assert post_file(owner, f"/documents/{document_id}/versions", content(700 * KB), "signed.pdf").status_code == 201
    used = back_to_free(tiny, company, owner)
    keys = keys_of(tiny, company, document_id)
    assert used == 1100 * KB and stored_keys(tiny, company) == set(keys.values())

    # The live version cannot be deleted for good, nor a document that is not in the bin.
    assert press(owner, f"/recycle-bin/documents/{document_id}/versions/2/purge").status_code == 404
    assert press(owner, f"/recycle-bin/documents/{document_id}/purge").status_code == 404
    delete_to_bin(owner, document_id, version=1)
    assert press(owner, f"/recycle-bin/documents/{document_id}/versions/1/purge").status_code == 302
    assert "Version 1 of “contract.pdf” is deleted for good: 400.0 KB freed." in messages(owner.get("/recycle-bin"))

    assert used_bytes(tiny, company) == used - 400 * KB
    assert stored_keys(tiny, company) == {keys[2]}
    assert keys_of(tiny, company, document_id) == {2: keys[2]}
    page = owner.get(f"/documents/{document_id}").get_data(as_text=True)
    assert page.count("data-version=") == 1 and "signed.pdf" in page
    assert len(fetch(owner, f"/documents/{document_id}/download")[0]) == 700 * KB
    assert press(owner, f"/recycle-bin/documents/{document_id}/versions/1/restore").status_code == 404


def test_emptying_the_bin_deletes_every_document_and_version_in_it_for_good(tiny, make_tenant):
    company = make_tenant()
    owner, deal_id = on_standard(tiny, company)
    ids = {name: upload(owner, deal_id, content(size), name)
           for name, size in (("a.pdf", 300 * KB), ("b.pdf", 400 * KB), ("kept.pdf", 200 * KB))}
    kept = ids["kept.pdf"]
    assert post_file(owner, f"/documents/{kept}/versions", content(250 * KB), "kept v2.pdf").status_code == 201
    assert back_to_free(tiny, company, owner) == 1150 * KB
    kept_keys = keys_of(tiny, company, kept)
    delete_to_bin(owner, ids["a.pdf"])
    delete_to_bin(owner, ids["b.pdf"])
    delete_to_bin(owner, kept, version=1)
    assert used_bytes(tiny, company) == 1150 * KB
    refused(owner, deal_id)

    shown = bin_page(owner)
    assert "for good" in confirmation(shown, "/recycle-bin/documents/empty")
    assert "for good" in confirmation(shown, f"/recycle-bin/documents/{kept}/versions/1/purge")
    assert "Empty the recycle bin of documents (frees 900.0 KB)" in shown
    response = press(owner, "/recycle-bin/documents/empty")
    assert response.status_code == 302
    shown = html.unescape(owner.get("/recycle-bin").get_data(as_text=True))
    assert "The documents in the recycle bin are deleted for good: 900.0 KB freed." in shown
    assert "The recycle bin is empty." in shown and "data-empty-bin" not in shown

    assert used_bytes(tiny, company) == 250 * KB
    assert stored_keys(tiny, company) == {kept_keys[2]}
    assert not document_exists(tiny, company, ids["a.pdf"]) and not document_exists(tiny, company, ids["b.pdf"])
    assert keys_of(tiny, company, kept) == {2: kept_keys[2]}
    upload(owner, deal_id, content(10 * KB), "small.pdf")

    assert press(owner, "/recycle-bin/documents/empty").status_code == 302
    assert "There were no documents in the recycle bin." in messages(owner.get("/recycle-bin"))
    assert used_bytes(tiny, company) == 260 * KB


# --- who may --------------------------------------------------------------------------------------

def test_members_cannot_delete_for_good_and_administrators_can(tiny, make_tenant):
    company = make_tenant()
    member, admin = add_person(tiny, company, "member"), add_person(tiny, company, "admin")
    deal_id = make_deal(tiny, company)
    client = sign_in(tiny, company, member.email)
    document_id = upload(client, deal_id, content(100 * KB), "theirs.pdf")
    assert post_file(client, f"/documents/{document_id}/versions", content(50 * KB), "v2.pdf").status_code == 201
    delete_to_bin(client, document_id, version=1)
    other = upload(client, deal_id, content(20 * KB), "other.pdf")
    delete_to_bin(client, other)
    used, keys = used_bytes(tiny, company), stored_keys(tiny, company)

    # The member restores from the bin but is offered no way to delete for good, and is refused.
    shown = bin_page(client)
    assert f'data-document-id="{other}"' in shown and f'data-version-of="{document_id}"' in shown
    assert "/purge" not in shown and "data-empty-bin" not in shown and "Delete for good" not in shown
    for path in (f"/recycle-bin/documents/{other}/purge", f"/recycle-bin/documents/{document_id}/versions/1/purge",
                 "/recycle-bin/documents/empty"):
        assert press(client, path).status_code == 403, path
    assert (used_bytes(tiny, company), stored_keys(tiny, company)) == (used, keys)
    assert document_exists(tiny, company, other) and set(keys_of(tiny, company, document_id)) == {1, 2}

    # An administrator may.
    administrator = sign_in(tiny, company, admin.email)
    assert "Delete for good" in bin_page(administrator)
    assert press(administrator, f"/recycle-bin/documents/{other}/purge").status_code == 302
    assert press(administrator, f"/recycle-bin/documents/{document_id}/versions/1/purge").status_code == 302
    assert used_bytes(tiny, company) == used - 120 * KB
    assert stored_keys(tiny, company) == {keys_of(tiny, company, document_id)[2]}


def test_another_company_cannot_delete_documents_for_good(tiny, make_tenant):
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    acme_deal, globex_deal = make_deal(tiny, acme), make_deal(tiny, globex)
    acme_owner, globex_owner = sign_in(tiny, acme), sign_in(tiny, globex)
    acme_doc = upload(acme_owner, acme_deal, content(30 * KB), "acme.pdf")
    globex_doc = upload(globex_owner, globex_deal, content(40 * KB), "globex.pdf")
    secret = upload(globex_owner, globex_deal, content(50 * KB), "secret.pdf")
    assert post_file(globex_owner, f"/documents/{secret}/versions", content(60 * KB), "v2.pdf").status_code == 201
    assert (acme_doc, globex_doc, secret) == (1, 1, 2)  # the same ids in both schemas, and one Acme lacks
    delete_to_bin(acme_owner, acme_doc)
    delete_to_bin(globex_owner, globex_doc)
    delete_to_bin(globex_owner, secret, version=1)
    used, keys = used_bytes(tiny, globex), stored_keys(tiny, globex)

    # On Acme's host, Globex's ids name nothing of Globex's.
    assert press(acme_owner, f"/recycle-bin/documents/{secret}/purge").status_code == 404
    assert press(acme_owner, f"/recycle-bin/documents/{secret}/versions/1/purge").status_code == 404
    # Acme's own document 1 and emptying Acme's bin touch only Acme.
    assert press(acme_owner, f"/recycle-bin/documents/{acme_doc}/purge").status_code == 302
    assert press(acme_owner, "/recycle-bin/documents/empty").status_code == 302
    assert used_bytes(tiny, acme) == 0 and stored_keys(tiny, acme) == set()
    assert (used_bytes(tiny, globex), stored_keys(tiny, globex)) == (used, keys)
    assert document_exists(tiny, globex, globex_doc) and set(keys_of(tiny, globex, secret)) == {1, 2}

    # Acme's cookie on Globex's host signs nobody in there.
    intruder = client_for(tiny, globex)
    copy_cookie(acme_owner, acme.host, intruder, globex.host)
    token = csrf_token(acme_owner.get("/recycle-bin").get_data(as_text=True))
    for path in (f"/recycle-bin/documents/{globex_doc}/purge", f"/recycle-bin/documents/{secret}/versions/1/purge",
                 "/recycle-bin/documents/empty"):
        response = intruder.post(path, data={"csrf_token": token})
        assert response.status_code in (302, 400), path
        if response.status_code == 302:
            assert "/signin" in response.headers["Location"]
    assert (used_bytes(tiny, globex), stored_keys(tiny, globex)) == (used, keys)
    assert f'data-document-id="{globex_doc}"' in bin_page(globex_owner)
