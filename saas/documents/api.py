"""REST API v1 for documents: upload to a card, read, change, delete, versions, content, usage.

Thin like the CRM's: the services do the work as the token's person (`g.api_membership`) in
the host's company (`g.tenant`); views commit after a change. Memory stays flat whatever the
file's size: a raw body (`?filename=`, with Content-Length) streams from the socket to the
blob store; a multipart body is spooled by werkzeug to a temporary file (beyond 500 KB) and
streams from there.
"""
import os

from flask import Blueprint, Response, g, jsonify, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from saas.api.views import json_body, register_error_handlers, token_required
from saas.blobs import blob_store
from saas.crm.access import require_manager
from saas.crm.api import SECURITY, _errors, _json
from saas.crm.models import Entity
from saas.errors import Invalid
from storage.backends import content_disposition
from tenants.db import db

from . import schemas as s
from . import services
from .models import DocumentType, Version

bp = Blueprint("documents_api", __name__, url_prefix="/api/v1")
register_error_handlers(bp)

CARDS = {"deals": Entity.DEAL, "companies": Entity.COMPANY, "contacts": Entity.CONTACT}
TAG = "Documents"
TOO_MUCH = "Past the plan's storage limit (or file_too_large: past the per-file limit)"


def _saved(body, status: int = 200, headers: dict | None = None):
    """Commit what the service changed, then answer (the body is dumped before the commit)."""
    db.session.commit()
    return body, status, headers or {}


@bp.errorhandler(services.QuotaRefused)
def _quota_refused(error: services.QuotaRefused):
    return jsonify(error=error.code, message=str(error.message), plan=error.plan.key,
                   limit_bytes=error.limit_bytes, used_bytes=error.used_bytes), error.status


@bp.errorhandler(services.Duplicate)
def _duplicate(error: services.Duplicate):
    return jsonify(error=error.code, message=str(error.message), document_id=error.document.id), error.status


def _dump(document) -> dict:
    return s.DocumentOut().dump(document)


# --- uploads -------------------------------------------------------------------------------

def _upload():
    """(stream, size, filename, card fields) of the request: multipart field `file` with the card
    fields as form fields, or the raw body with `?filename=` and the card fields as query parameters."""
    if request.mimetype == "multipart/form-data":
        sent = request.files.get("file")
        if sent is None:
            raise Invalid(_l("Send the file in the multipart field “file”."), field="file")
        stream = sent.stream  # werkzeug's spooled copy: its length is the file's size
        size = stream.seek(0, os.SEEK_END)
        stream.seek(0)
        return stream, size, sent.filename, request.form
    return request.stream, request.content_length, request.args.get("filename"), request.args


def _card_fields(sent) -> dict:
    """The card fields sent with an upload; an empty one counts as not sent."""
    return s.DocumentIn().load({name: value for name, value in sent.items() if value != ""})


def _upload_view(entity: str):
    def view(record_id: int):
        stream, size, filename, sent = _upload()
        data = _card_fields(sent)  # checked before a byte is stored
        document = services.upload(g.tenant, entity, record_id, stream, filename=filename, size=size,
                                   actor=g.api_membership, data=data)
        return _saved(_dump(document), 201, {"Location": url_for(".read_document", document_id=document.id)})
    return view


def _list_view(entity: str):
    def view(record_id: int):
        return s.DocumentOut(many=True).dump(services.on_card(entity, record_id, g.api_membership))
    return view


@bp.post("/documents/<int:document_id>/versions")
@token_required
def add_version(document_id: int):
    """A new version of a document.
    ---
    post:
      tags: [Documents]
      summary: Upload a new version (the earlier ones stay, downloadable)
      description: >
        Multipart with the field `file`, or the raw bytes as the body (Content-Type
        application/octet-stream, Content-Length required) with `?filename=`.
      security: [{bearer: []}]
      parameters:
        - {in: query, name: filename, description: "the file's name (raw body only)", schema: {type: string}}
      requestBody:
        content:
          multipart/form-data: {schema: {type: object, required: [file], properties: {file: {type: string, format: binary}}}}
          application/octet-stream: {schema: {type: string, format: binary}}
      responses:
        201: {description: "The new version", content: {application/json: {schema: VersionOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        403: {description: "Visible but not editable by this person", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such document, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
        413: {description: "Past the plan's storage limit (or file_too_large: past the per-file limit)", content: {application/json: {schema: QuotaErrorOut}}}
        422: {description: "No file, no Content-Length, or a body longer than it", content: {application/json: {schema: ErrorOut}}}
    """
    stream, size, filename, _sent = _upload()
    version = services.add_version(g.tenant, document_id, stream, filename=filename, size=size,
                                   actor=g.api_membership)
    return _saved(s.VersionOut().dump(version), 201)


# --- one document --------------------------------------------------------------------------

@bp.get("/documents/<int:document_id>")
@token_required
def read_document(document_id: int):
    """One document and its card.
    ---
    get:
      tags: [Documents]
      summary: One document, its card and its current version
      security: [{bearer: []}]
      responses:
        200: {description: "The document", content: {application/json: {schema: DocumentOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such document, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
    """
    return _dump(services.get(document_id, g.api_membership))


@bp.patch("/documents/<int:document_id>")
@token_required
@json_body(s.DocumentIn)
def update_document(data, document_id: int):
    """Change a document's card.
    ---
    patch:
      tags: [Documents]
      summary: Change a document's card (only the fields sent)
      security: [{bearer: []}]
      requestBody: {content: {application/json: {schema: DocumentIn}}}
      responses:
        200: {description: "The changed document", content: {application/json: {schema: DocumentOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        403: {description: "Visible but not editable by this person", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such document, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
        422: {description: "Invalid fields, each named", content: {application/json: {schema: ErrorOut}}}
    """
    return _saved(_dump(services.update(document_id, data, g.api_membership)))


@bp.delete("/documents/<int:document_id>")
@token_required
def delete_document(document_id: int):
    """Move a document to the recycle bin.
    ---
    delete:
      tags: [Documents]
      summary: Move a document to the recycle bin (restorable for 30 days; its bytes count until purged)
      security: [{bearer: []}]
      responses:
        204: {description: "In the recycle bin"}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        403: {description: "Visible but not editable by this person", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such document, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
    """
    services.delete(document_id, g.api_membership)
    return _saved("", 204)


@bp.get("/documents/<int:document_id>/versions")
@token_required
def list_versions(document_id: int):
    """A document's versions.
    ---
    get:
      tags: [Documents]
      summary: A document's versions, oldest first, with who uploaded each and when
      security: [{bearer: []}]
      responses:
        200: {description: "The versions", content: {application/json: {schema: {type: array, items: VersionOut}}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such document, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
    """
    return s.VersionOut(many=True).dump(services.get(document_id, g.api_membership).live_versions)


@bp.delete("/documents/<int:document_id>/versions/<int:number>")
@token_required
def delete_version(document_id: int, number: int):
    """Move one version to the recycle bin.
    ---
    delete:
      tags: [Documents]
      summary: Move one version to the recycle bin (never the only one)
      security: [{bearer: []}]
      responses:
        204: {description: "In the recycle bin"}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        403: {description: "Visible but not editable by this person", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such document or version, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
        409: {description: "It is the document's only version", content: {application/json: {schema: ErrorOut}}}
    """
    services.delete(document_id, g.api_membership, version=number)
    return _saved("", 204)


@bp.get("/documents/<int:document_id>/content")
@token_required
def content(document_id: int):
    """The bytes of a document.
    ---
    get:
      tags: [Documents]
      summary: The bytes, as a 302 to a presigned URL that expires in minutes, or streamed (?stream=1)
      description: >
        The presigned URL names the file (Content-Disposition) and opens in a browser
        with ?inline=1 for PDFs and images; everything else downloads.
      security: [{bearer: []}]
      parameters:
        - {in: query, schema: ContentArgs}
      responses:
        200: {description: "The bytes (?stream=1)", content: {application/octet-stream: {schema: {type: string, format: binary}}}}
        302: {description: "Redirect to a presigned URL of the blob store", headers: {Location: {schema: {type: string}}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such document or version, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
        422: {description: "A query parameter cannot be read", content: {application/json: {schema: ErrorOut}}}
    """
    wanted = s.ContentArgs().load(request.args)
    version = services.version_of(services.get(document_id, g.api_membership), wanted.get("version"))
    if wanted["stream"]:
        return _stream(version, inline=wanted["inline"])
    return redirect(services.link(version, inline=wanted["inline"]))


def _stream(version: Version, *, inline: bool) -> Response:
    """The blob in chunks as it comes from the store, named, never sniffed into something else."""
    inline = inline and services.is_inline(version.content_type)
    response = Response(blob_store().open(version.blob_key),
                        content_type=version.content_type if inline else "application/octet-stream")
    response.content_length = version.size
    response.headers["Content-Disposition"] = content_disposition(version.filename, inline)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- usage ---------------------------------------------------------------------------------

@bp.get("/usage")
@token_required
def usage():
    """Storage used against the plan's limit.
    ---
    get:
      tags: [Documents]
      summary: Storage used against the plan's limit, by document type and by card (owner and administrators)
      security: [{bearer: []}]
      responses:
        200: {description: "The usage", content: {application/json: {schema: UsageOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        403: {description: "Only the owner and administrators", content: {application/json: {schema: ErrorOut}}}
    """
    require_manager(g.api_membership)
    current = services.usage(g.tenant)
    names = dict(db.session.execute(select(DocumentType.id, DocumentType.name)).all())
    return s.UsageOut().dump({
        "plan": current.plan.key, "limit_bytes": current.limit, "used_bytes": current.used,
        "reserved_bytes": current.reserved,
        "by_type": [{"type_id": type_id, "type": names.get(type_id), "bytes": size}
                    for type_id, size in services.usage_by("type")],
        "by_record": [{"entity": entity, "record_id": record_id, "bytes": size}
                      for (entity, record_id), size in services.usage_by("record")]})


# --- the documents of each kind of card ----------------------------------------------------

def _card_operations(entity: str) -> dict[str, dict]:
    files = {"in": "query", "name": "filename", "description": "the file's name (raw body only)",
             "schema": {"type": "string"}}
    return {
        "list": {"get": {
            "tags": [TAG], "summary": f"The documents on a {entity}'s card, newest first"
                                     + (" (with those of its deals)" if entity == Entity.COMPANY else ""),
            "security": SECURITY,
            "responses": {"200": _json("The documents", {"type": "array", "items": s.DocumentOut}), **_errors()}}},
        "upload": {"post": {
            "tags": [TAG], "summary": f"Upload a document to a {entity}'s card",
            "description": "Multipart with the field `file` and the card fields as form fields, or the raw bytes "
                           "as the body (Content-Type application/octet-stream, Content-Length required) with "
                           "`?filename=` and the card fields as query parameters: the way for large files. The "
                           "content type is sniffed from the bytes; the file's name is kept for display only.",
            "security": SECURITY,
            "parameters": [files, {"in": "query", "schema": s.DocumentIn}],
            "requestBody": {"content": {"multipart/form-data": {"schema": s.DocumentUpload},
                                        "application/octet-stream": {"schema": {"type": "string",
                                                                                "format": "binary"}}}},
            "responses": dict(sorted({
                "201": _json("The new document", s.DocumentOut),
                **_errors(**{"403": "Visible but not editable by this person",
                             "422": "No file, no Content-Length, or invalid card fields, each named"}),
                "409": _json("These bytes are already on this card: add a version to that document", s.DuplicateOut),
                "413": _json(TOO_MUCH, s.QuotaErrorOut)}.items()))}},
    }


def _register(plural: str, entity: str) -> None:
    operations = _card_operations(entity)
    for action, methods, make_view in (("list", ["GET"], _list_view), ("upload", ["POST"], _upload_view)):
        view = token_required(make_view(entity))
        view.openapi = operations[action]
        bp.add_url_rule(f"/{plural}/<int:record_id>/documents", endpoint=f"{plural}_documents_{action}",
                        view_func=view, methods=methods)


for _plural, _entity in CARDS.items():
    _register(_plural, _entity)
