"""REST API v1 for documents: upload to a card, read, change, delete, versions, content, usage;
templates (saved with a check that names the line of a mistake, versioned, previewed) and
documents made from them on cards, one at a time or in batches, by RQ workers.

Thin like the CRM's: the services do the work as the token's person (`g.api_membership`) in
the host's company (`g.tenant`); views commit after a change (a generation's job is sent then).
Memory stays flat whatever the file's size: a raw body (`?filename=`, with Content-Length) streams from the socket to the
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

from . import doc_templates, generation, services, templating
from . import schemas as s
from .models import Document, DocumentType, Version
from .exports import PAGE_POLICY as PREVIEW_POLICY

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


@bp.errorhandler(templating.TemplateProblem)
def _template_problem(problem: templating.TemplateProblem):
    """Like any 422, plus where the mistake is: the part and its line, for an editor to point at."""
    return jsonify(error=problem.code, message=str(problem.message), fields=problem.fields, part=problem.part,
                   line=problem.line), problem.status


def _dump(document) -> dict:
    return s.DocumentOut().dump(document)


def _generating(document: Document):
    """202 with the document (generating; committed, so its job is sent) and where to poll for it."""
    return _saved(_dump(document), 202, {"Location": url_for(".read_document", document_id=document.id)})


def _rescue_stuck(documents: list[Document]) -> None:
    generation.rescue_stuck(g.tenant, documents, generation.requester_locale())


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


def _generate_view(entity: str):
    @json_body(s.GenerateIn)
    def view(data, record_id: int):
        return _generating(generation.start(g.tenant, data["template_id"], entity, record_id, g.api_membership,
                                                locale=generation.requester_locale()))
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
      description: >
        A generated document shows `generation_status`: generating (its version fields null),
        then ready, or failed with the reason in `error`; poll it after a 202.
      security: [{bearer: []}]
      responses:
        200: {description: "The document", content: {application/json: {schema: DocumentOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such document, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
    """
    document = services.get(document_id, g.api_membership)
    _rescue_stuck([document])
    return _dump(document)


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
        with ?inline=1 for PDFs and images; everything else downloads. A generated document
        is also had as an editable HTML page (?format=html) or Word file (?format=docx).
      security: [{bearer: []}]
      parameters:
        - {in: query, schema: ContentArgs}
      responses:
        200:
          description: "The bytes (?stream=1), or the document as HTML or DOCX (?format=)"
          content:
            application/octet-stream: {schema: {type: string, format: binary}}
            text/html: {schema: {type: string}}
            application/vnd.openxmlformats-officedocument.wordprocessingml.document: {schema: {type: string, format: binary}}
        302: {description: "Redirect to a presigned URL of the blob store", headers: {Location: {schema: {type: string}}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such document or version, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
        422: {description: "A query parameter cannot be read, or ?format= for a document not made from a template", content: {application/json: {schema: ErrorOut}}}
    """
    wanted = s.ContentArgs().load(request.args)
    version = services.version_of(services.get(document_id, g.api_membership), wanted.get("version"))
    if "format" in wanted:
        return _exported(version, wanted["format"])
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


def _exported(version: Version, kind: str) -> Response:
    """A generated version as an editable page or Word file, made from the HTML its PDF came from."""
    from .exports import exported_response

    if not version.source_html:
        raise Invalid(_l("Only documents made from a template can be had as HTML or DOCX."), field="format")
    return exported_response(version, kind)


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


# --- templates -----------------------------------------------------------------------------

def _template(template) -> dict:
    return s.TemplateOut().dump(template)


@bp.get("/templates")
@token_required
def list_templates():
    """The company's templates.
    ---
    get:
      tags: [Templates]
      summary: The company's document templates by name (a new company starts with ready ones in English and Russian)
      security: [{bearer: []}]
      parameters:
        - {in: query, schema: TemplateListArgs}
      responses:
        200: {description: "The templates", content: {application/json: {schema: {type: array, items: TemplateOut}}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        422: {description: "applies_to is not deal, company or contact", content: {application/json: {schema: ErrorOut}}}
    """
    wanted = s.TemplateListArgs().load(request.args)
    return s.TemplateOut(many=True).dump(doc_templates.all_templates(wanted.get("applies_to")))


@bp.post("/templates")
@token_required
@json_body(s.TemplateIn)
def create_template(data):
    """Create a template.
    ---
    post:
      tags: [Templates]
      summary: Create a template (owner and administrators); it is checked before it is saved
      description: >
        HTML with Jinja2 placeholders ({{ deal.title }}, {{ totals.total|money }}, {% for item in items %}…).
        A syntax error, an unknown placeholder or filter is a 422 `template_error` naming the part
        and the line.
      security: [{bearer: []}]
      requestBody: {content: {application/json: {schema: TemplateIn}}}
      responses:
        201: {description: "The new template, version 1", headers: {Location: {schema: {type: string}}}, content: {application/json: {schema: TemplateOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        403: {description: "Only the owner and administrators", content: {application/json: {schema: ErrorOut}}}
        422: {description: "Invalid fields, each named (error `invalid`), or a mistake in the template's text (error `template_error`, with part and line)", content: {application/json: {schema: TemplateErrorOut}}}
    """
    template = doc_templates.create(g.api_membership, data)
    return _saved(_template(template), 201, {"Location": url_for(".read_template", template_id=template.id)})


@bp.get("/templates/<int:template_id>")
@token_required
def read_template(template_id: int):
    """One template.
    ---
    get:
      tags: [Templates]
      summary: One template with its content and current version
      security: [{bearer: []}]
      responses:
        200: {description: "The template", content: {application/json: {schema: TemplateOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such template", content: {application/json: {schema: ErrorOut}}}
    """
    return _template(doc_templates.get_template(template_id))


@bp.patch("/templates/<int:template_id>")
@token_required
@json_body(s.TemplateChangeIn)
def update_template(data, template_id: int):
    """Change a template.
    ---
    patch:
      tags: [Templates]
      summary: Change a template (only the fields sent; owner and administrators); a changed content is a new version
      description: >
        Documents already made keep the version they came from. Sending what is already saved
        changes nothing and keeps the version.
      security: [{bearer: []}]
      requestBody: {content: {application/json: {schema: TemplateChangeIn}}}
      responses:
        200: {description: "The template, with its new version number", content: {application/json: {schema: TemplateOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        403: {description: "Only the owner and administrators", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such template", content: {application/json: {schema: ErrorOut}}}
        422: {description: "Invalid fields, each named, or a mistake in the template's text (with part and line)", content: {application/json: {schema: TemplateErrorOut}}}
    """
    return _saved(_template(doc_templates.update(g.api_membership, template_id, data)))


@bp.delete("/templates/<int:template_id>")
@token_required
def delete_template(template_id: int):
    """Delete a template.
    ---
    delete:
      tags: [Templates]
      summary: Delete a template (owner and administrators); documents made from it keep their files
      security: [{bearer: []}]
      responses:
        204: {description: "Deleted"}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        403: {description: "Only the owner and administrators", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such template", content: {application/json: {schema: ErrorOut}}}
    """
    doc_templates.delete(g.api_membership, template_id)
    return _saved("", 204)


@bp.get("/templates/<int:template_id>/versions")
@token_required
def list_template_versions(template_id: int):
    """A template's versions.
    ---
    get:
      tags: [Templates]
      summary: A template's versions, oldest first, with who saved each and when
      security: [{bearer: []}]
      responses:
        200: {description: "The versions", content: {application/json: {schema: {type: array, items: TemplateVersionOut}}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such template", content: {application/json: {schema: ErrorOut}}}
    """
    return s.TemplateVersionOut(many=True).dump(doc_templates.get_template(template_id).versions)


@bp.post("/templates/<int:template_id>/preview")
@token_required
@json_body(s.PreviewIn)
def preview_template(data, template_id: int):
    """A template filled for one record.
    ---
    post:
      tags: [Templates]
      summary: The HTML page a template makes for one record you may see (content fields sent preview an unsaved edit)
      description: >
        The number shown is the next one the counter would give (none is taken). Images come
        inline as data: URIs and the page may load nothing else (Content-Security-Policy).
        Previewing an unsaved edit is for the owner and administrators.
      security: [{bearer: []}]
      requestBody: {content: {application/json: {schema: PreviewIn}}}
      responses:
        200: {description: "The filled page", headers: {Content-Security-Policy: {schema: {type: string}}}, content: {text/html: {schema: {type: string}}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        403: {description: "Content fields sent by someone who may not change templates", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such template, or no such record you may see", content: {application/json: {schema: ErrorOut}}}
        422: {description: "Invalid fields, or a mistake in the template's text (with part and line)", content: {application/json: {schema: TemplateErrorOut}}}
    """
    record_id = data.pop("record_id")
    template = doc_templates.get_template(template_id)
    if data:  # trying an edit is for those who may save it
        require_manager(g.api_membership)
    page = doc_templates.preview(g.tenant, g.api_membership, doc_templates.content_from(data, template), record_id)
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


# --- generation ----------------------------------------------------------------------------

@bp.post("/templates/<int:template_id>/generate")
@token_required
@json_body(s.BatchIn)
def generate_batch(data, template_id: int):
    """One template for many records.
    ---
    post:
      tags: [Templates]
      summary: Make a document from this template on each of many cards (of the kind it applies to)
      description: >
        Cards that cannot have one (not found, not editable by you) are skipped with the reason;
        the others get a document each, generating. Poll the batch for progress.
      security: [{bearer: []}]
      requestBody: {content: {application/json: {schema: BatchIn}}}
      responses:
        202: {description: "Started", headers: {Location: {schema: {type: string}}}, content: {application/json: {schema: BatchStartedOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such template", content: {application/json: {schema: ErrorOut}}}
        413: {description: "The plan's storage is full", content: {application/json: {schema: QuotaErrorOut}}}
        422: {description: "No records, or too many (at most 500)", content: {application/json: {schema: ErrorOut}}}
    """
    batch_id, started, skipped = generation.start_batch(g.tenant, template_id, data["record_ids"], g.api_membership,
                                                        locale=generation.requester_locale())
    body = s.BatchStartedOut().dump({"batch_id": batch_id, "documents": started, "skipped": skipped})
    return _saved(body, 202, {"Location": url_for(".read_batch", batch_id=batch_id)})


@bp.get("/generation/batches/<batch_id>")
@token_required
def read_batch(batch_id: str):
    """A batch's progress.
    ---
    get:
      tags: [Documents]
      summary: How far a batch is (generating, ready, failed) and its documents you may see
      security: [{bearer: []}]
      responses:
        200: {description: "The batch", content: {application/json: {schema: BatchOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such batch, or none of its documents is yours to see", content: {application/json: {schema: ErrorOut}}}
    """
    documents = generation.batch(batch_id, g.api_membership)
    _rescue_stuck(documents)
    return s.BatchOut().dump({"batch_id": batch_id, "total": len(documents), **generation.counts(documents),
                              "documents": documents})


@bp.post("/documents/<int:document_id>/retry")
@token_required
def retry_document(document_id: int):
    """Make a failed document again.
    ---
    post:
      tags: [Documents]
      summary: Make a failed document again from its template as it is now (it keeps its number)
      security: [{bearer: []}]
      responses:
        202: {description: "Generating again", headers: {Location: {schema: {type: string}}}, content: {application/json: {schema: DocumentOut}}}
        401: {description: "Missing, invalid or revoked token", content: {application/json: {schema: ErrorOut}}}
        403: {description: "Visible but not editable by this person", content: {application/json: {schema: ErrorOut}}}
        404: {description: "No such document, or it is not yours to see", content: {application/json: {schema: ErrorOut}}}
        413: {description: "The plan's storage is full", content: {application/json: {schema: QuotaErrorOut}}}
        422: {description: "It has not failed, or its template has been deleted", content: {application/json: {schema: ErrorOut}}}
    """
    return _generating(generation.retry(g.tenant, document_id, g.api_membership, locale=generation.requester_locale()))


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
        "generate": {"post": {
            "tags": [TAG], "summary": f"Make a document on a {entity}'s card from a template for {entity} cards",
            "description": "The document appears on the card at once, generating; a worker makes its PDF (and "
                           "takes its number). Poll the document (Location) until it is ready or failed.",
            "security": SECURITY, "requestBody": {"content": {"application/json": {"schema": s.GenerateIn}}},
            "responses": dict(sorted({
                "202": {**_json("The document, generating", s.DocumentOut),
                        "headers": {"Location": {"schema": {"type": "string"}}}},
                **_errors(**{"403": "Visible but not editable by this person",
                             "404": "No such record or template, or it is not yours to see",
                             "422": "The template is for another kind of card"}),
                "413": _json("The plan's storage is full", s.QuotaErrorOut)}.items()))}},
    }


def _register(plural: str, entity: str) -> None:
    operations = _card_operations(entity)
    for action, suffix, methods, make_view in (("list", "documents", ["GET"], _list_view),
                                               ("upload", "documents", ["POST"], _upload_view),
                                               ("generate", "generate", ["POST"], _generate_view)):
        view = token_required(make_view(entity))
        view.openapi = operations[action]
        bp.add_url_rule(f"/{plural}/<int:record_id>/{suffix}", endpoint=f"{plural}_documents_{action}",
                        view_func=view, methods=methods)


for _plural, _entity in CARDS.items():
    _register(_plural, _entity)
