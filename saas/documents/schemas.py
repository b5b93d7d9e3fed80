"""Marshmallow schemas of the documents API: a document and its card fields, versions, usage,
templates and making documents from them.

The output names are a contract other clients rely on. Inputs check shapes only (types,
lengths, no NUL that no database stores); the services check the rest (a type, a parent or a
responsible person that exists) and name each failing field.
"""
from flask_babel import gettext as _
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_dump, validate

from billing.plans import KEYS
from saas.crm.models import Entity

from .models import DocumentStatus, Generation
from .numbering import DOCUMENT_TYPES
from .templating import LANGUAGES, PAGE_SIZES

ENTITIES = [Entity.DEAL, Entity.COMPANY, Entity.CONTACT]


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError(_("Enter text."))


def _text(limit: int, **kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(max=limit), _no_nul], **kwargs)


class _In(Schema):
    class Meta:
        unknown = EXCLUDE  # read-only fields a client sends back (id, size…) are ignored


class DocumentIn(_In):
    """A document's card: the upload's form fields (or query parameters of a raw upload), or a PATCH."""

    title = fields.String(validate=[validate.Length(min=1, max=300), _no_nul])
    type_id = fields.Integer(allow_none=True, metadata={"description": "id of a document type of the company"})
    number = _text(100, allow_none=True)
    signed_on = fields.Date(allow_none=True)
    counterparty = _text(300, allow_none=True)
    our_entity = _text(300, allow_none=True, metadata={"description": "our legal entity that signs it"})
    responsible_id = fields.Integer(allow_none=True, metadata={"description": "user id of an active employee"})
    status = fields.String(validate=validate.OneOf(DocumentStatus.ALL))
    notes = _text(20000, allow_none=True)
    parent_id = fields.Integer(allow_none=True, metadata={
        "description": "the document of the same card this one belongs to (an annex's contract)"})


class DocumentUpload(DocumentIn):
    """A multipart upload: the file and, if wanted, its card (the title defaults to the file's name)."""

    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class ContentArgs(_In):
    version = fields.Integer(validate=validate.Range(min=1),
                             metadata={"description": "a version number; the current one if absent"})
    inline = fields.Boolean(load_default=False, metadata={"description": "open in the browser (PDFs and images only)"})
    stream = fields.Boolean(load_default=False, metadata={"description": "send the bytes instead of a 302"})
    format = fields.String(validate=validate.OneOf(["html", "docx"]), metadata={
        "description": "a generated document as an editable HTML page or a Word file, made from the HTML "
                       "its PDF came from (sent as the response, never a 302)"})


class DocumentOut(Schema):
    id = fields.Integer()
    entity = fields.String(metadata={"enum": ENTITIES, "description": "the kind of card it hangs on"})
    record_id = fields.Integer(metadata={"description": "the id of the deal, company or contact"})
    title = fields.String()
    type = fields.Function(lambda document: document.type.name if document.type else None,
                           metadata={"type": "string", "nullable": True, "description": "the type's name"})
    type_id = fields.Integer(allow_none=True)
    number = fields.String(allow_none=True)
    signed_on = fields.Date(allow_none=True)
    counterparty = fields.String(allow_none=True)
    our_entity = fields.String(allow_none=True)
    responsible_id = fields.Integer(allow_none=True, metadata={"description": "user id"})
    status = fields.String(metadata={"enum": list(DocumentStatus.ALL)})
    notes = fields.String(allow_none=True)
    parent_id = fields.Integer(allow_none=True)
    filename = fields.String(attribute="current.filename", allow_none=True, metadata={
        "description": "of the current version (null while a generated document has none)"})
    content_type = fields.String(attribute="current.content_type", allow_none=True,
                                 metadata={"description": "sniffed from the bytes"})
    size = fields.Integer(attribute="current.size", allow_none=True, metadata={"description": "bytes"})
    sha256 = fields.String(attribute="current.sha256", allow_none=True)
    version = fields.Integer(attribute="current.number", allow_none=True,
                             metadata={"description": "the current version's number"})
    versions = fields.Function(lambda document: len(document.live_versions),
                               metadata={"type": "integer", "description": "how many versions it has"})
    created_by = fields.Integer(allow_none=True, metadata={"description": "user id"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    generation_status = fields.String(attribute="generation", allow_none=True, metadata={
        "enum": [Generation.GENERATING, Generation.READY, Generation.FAILED, None],
        "description": "null for an uploaded document; a generated one is generating, then ready or failed"})
    error = fields.String(attribute="generation_error", allow_none=True,
                          metadata={"description": "why its generation failed, for a person to act on"})
    template_id = fields.Integer(allow_none=True, metadata={"description": "the template it was made from"})
    template_version = fields.Integer(allow_none=True, metadata={"description": "that template's version"})

    CURRENT = ("filename", "content_type", "size", "sha256", "version")

    @post_dump
    def _current_as_null(self, data: dict, **kwargs) -> dict:
        """A generated document has no version until it is ready: its fields are null, not absent."""
        for name in self.CURRENT:
            data.setdefault(name, None)
        return data


class VersionOut(Schema):
    number = fields.Integer()
    filename = fields.String(metadata={"description": "for display only"})
    content_type = fields.String(metadata={"description": "sniffed from the bytes"})
    size = fields.Integer(metadata={"description": "bytes"})
    sha256 = fields.String()
    created_by = fields.Integer(allow_none=True, metadata={"description": "user id of who uploaded it"})
    created_at = fields.DateTime()


class TypeUsageOut(Schema):
    type_id = fields.Integer(allow_none=True)
    type = fields.String(allow_none=True)
    bytes = fields.Integer()


class RecordUsageOut(Schema):
    entity = fields.String(metadata={"enum": ENTITIES})
    record_id = fields.Integer()
    bytes = fields.Integer()


class UsageOut(Schema):
    plan = fields.String(metadata={"enum": list(KEYS)})
    limit_bytes = fields.Integer(allow_none=True, metadata={"description": "null: unlimited"})
    used_bytes = fields.Integer(metadata={"description": "every stored version, the recycle bin included"})
    reserved_bytes = fields.Integer(metadata={"description": "held by uploads in progress"})
    by_type = fields.List(fields.Nested(TypeUsageOut))
    by_record = fields.List(fields.Nested(RecordUsageOut), metadata={"description": "the ten largest cards"})


class QuotaErrorOut(Schema):
    error = fields.String(metadata={"enum": ["quota_exceeded"]})
    message = fields.String()
    plan = fields.String(metadata={"enum": list(KEYS)})
    limit_bytes = fields.Integer()
    used_bytes = fields.Integer(metadata={"description": "used and reserved now"})


class DuplicateOut(Schema):
    error = fields.String(metadata={"enum": ["duplicate"]})
    message = fields.String()
    document_id = fields.Integer(metadata={"description": "the document with these bytes: add a version to it"})


# --- templates and generation --------------------------------------------------------------

def _choice(choices, description: str) -> dict:
    """A choice's description; the service checks it (and names the field)."""
    return {"enum": list(choices), "description": description}


KIND = _choice(DOCUMENT_TYPES, "the kind of document, which also picks its numbering")
CARDS = _choice(ENTITIES, "the cards it is made on")
BODY = {"description": "the document's HTML with Jinja2 placeholders such as {{ deal.title }} or "
                       "{{ totals.total|money }}"}


def _margin(side: str) -> fields.Integer:
    return fields.Integer(metadata={"minimum": 0, "maximum": 60, "description": f"{side} margin in millimetres"})


class TemplateChangeIn(_In):
    """A template's content; a PATCH sends only what changes."""

    name = _text(200)
    document_type = fields.String(metadata=KIND)
    applies_to = fields.String(metadata=CARDS)
    language = fields.String(metadata=_choice(LANGUAGES, "of dates, money and amounts in words"))
    page_size = fields.String(metadata=_choice(PAGE_SIZES, "of the PDF"))
    margin_top, margin_right = _margin("top"), _margin("right")
    margin_bottom, margin_left = _margin("bottom"), _margin("left")
    header_html = fields.String(validate=_no_nul, metadata={
        "description": "repeated at the top of every page (placeholders too)"})
    footer_html = fields.String(validate=_no_nul, metadata={"description": "repeated at the bottom of every page"})
    body_html = fields.String(validate=_no_nul, metadata=BODY)


class TemplateIn(TemplateChangeIn):
    """A new template: name, kind, cards and body required; the rest has defaults (English, A4)."""

    name = _text(200, required=True)
    document_type = fields.String(required=True, metadata=KIND)
    applies_to = fields.String(required=True, metadata=CARDS)
    body_html = fields.String(required=True, validate=_no_nul, metadata=BODY)


class TemplateListArgs(_In):
    applies_to = fields.String(validate=validate.OneOf(ENTITIES),
                               metadata={"description": "only the templates for these cards"})


class TemplateOut(Schema):
    id = fields.Integer()
    version = fields.Integer(metadata={"description": "goes up with every saved change to the content"})
    name = fields.String()
    document_type = fields.String(metadata={"enum": list(DOCUMENT_TYPES)})
    applies_to = fields.String(metadata={"enum": ENTITIES})
    language = fields.String(metadata={"enum": list(LANGUAGES)})
    page_size = fields.String(metadata={"enum": list(PAGE_SIZES)})
    margin_top = fields.Integer(metadata={"description": "millimetres"})
    margin_right = fields.Integer(metadata={"description": "millimetres"})
    margin_bottom = fields.Integer(metadata={"description": "millimetres"})
    margin_left = fields.Integer(metadata={"description": "millimetres"})
    header_html = fields.String()
    footer_html = fields.String()
    body_html = fields.String()
    created_by = fields.Integer(allow_none=True, metadata={"description": "user id"})
    created_at = fields.DateTime()
    updated_by = fields.Integer(allow_none=True, metadata={"description": "user id"})
    updated_at = fields.DateTime()


class TemplateVersionOut(Schema):
    number = fields.Integer()
    created_by = fields.Integer(allow_none=True, metadata={"description": "user id of who saved it"})
    created_at = fields.DateTime()


class TemplateErrorOut(Schema):
    error = fields.String(metadata={"enum": ["template_error"]})
    message = fields.String(metadata={"description": "e.g. “Body, line 3: unknown placeholder “deal.titel””"})
    fields_ = fields.Dict(data_key="fields", keys=fields.String(), values=fields.List(fields.String()),
                          metadata={"description": "the message under the part it is in"})
    part = fields.String(metadata={"enum": ["header_html", "body_html", "footer_html"]})
    line = fields.Integer(allow_none=True, metadata={"description": "the line of that part, when known"})


class PreviewIn(TemplateChangeIn):
    """The record to fill the template for; content fields sent preview an unsaved edit."""

    record_id = fields.Integer(required=True, metadata={"description": "a deal, company or contact, as the "
                                                                       "template applies to"})


class GenerateIn(_In):
    template_id = fields.Integer(required=True, metadata={"description": "a template for this kind of card"})


class BatchIn(_In):
    record_ids = fields.List(fields.Integer(), required=True, metadata={
        "description": "the cards (of the kind the template applies to) to make a document for, at most 500"})


class BatchStartedOut(Schema):
    batch_id = fields.String(metadata={"format": "uuid"})
    documents = fields.List(fields.Nested(DocumentOut), metadata={"description": "one per card, generating"})
    skipped = fields.Dict(keys=fields.String(), values=fields.String(),
                          metadata={"description": "{record id: why no document was started for it}"})


class BatchOut(Schema):
    batch_id = fields.String(metadata={"format": "uuid"})
    total = fields.Integer()
    generating = fields.Integer()
    ready = fields.Integer()
    failed = fields.Integer()
    documents = fields.List(fields.Nested(DocumentOut))


COMPONENTS = (DocumentIn, DocumentUpload, DocumentOut, VersionOut, TypeUsageOut, RecordUsageOut, UsageOut,
              QuotaErrorOut, DuplicateOut, TemplateChangeIn, TemplateIn, TemplateOut, TemplateVersionOut,
              TemplateErrorOut, PreviewIn, GenerateIn, BatchIn, BatchStartedOut, BatchOut)
