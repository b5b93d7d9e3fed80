"""Marshmallow schemas of the documents API: a document and its card fields, versions, usage.

The output names are a contract other clients rely on. Inputs check shapes only (types,
lengths, no NUL that no database stores); the services check the rest (a type, a parent or a
responsible person that exists) and name each failing field.
"""
from flask_babel import gettext as _
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from billing.plans import KEYS
from saas.crm.models import Entity

from .models import DocumentStatus

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
    filename = fields.String(attribute="current.filename", metadata={"description": "of the current version"})
    content_type = fields.String(attribute="current.content_type", metadata={"description": "sniffed from the bytes"})
    size = fields.Integer(attribute="current.size", metadata={"description": "bytes"})
    sha256 = fields.String(attribute="current.sha256")
    version = fields.Integer(attribute="current.number", metadata={"description": "the current version's number"})
    versions = fields.Function(lambda document: len(document.live_versions),
                               metadata={"type": "integer", "description": "how many versions it has"})
    created_by = fields.Integer(allow_none=True, metadata={"description": "user id"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


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


COMPONENTS = (DocumentIn, DocumentUpload, DocumentOut, VersionOut, TypeUsageOut, RecordUsageOut, UsageOut,
              QuotaErrorOut, DuplicateOut)
