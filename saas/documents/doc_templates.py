"""A company's document templates: the ready ones every company starts with, saving with a check
that names the line of a mistake, versions, and filling a template for a record.

Every saved change to what a template is made of keeps a copy as a new version; a generated
document records the version it came from.
"""
import base64
from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from saas.auth.models import Membership
from saas.crm import services as crm
from saas.crm.access import require_manager
from saas.crm.models import Entity
from saas.errors import Invalid, NotFound
from saas.settings.models import CompanySetting
from tenants.db import db
from tenants.models import TenantRef

from . import context, numbering, templating
from .models import DocumentTemplate, TemplateContent, TemplateVersion

APPLIES_TO = {Entity.DEAL: _l("Deal"), Entity.COMPANY: _l("Company"), Entity.CONTACT: _l("Contact")}
_SEEDED = "documents.templates_seeded"
TEXT_LIMIT = 500_000  # characters in each part


def all_templates(applies_to: str | None = None) -> list[DocumentTemplate]:
    """The company's templates by name; a new company starts with the ready ones."""
    ensure_defaults()
    query = select(DocumentTemplate).order_by(DocumentTemplate.name, DocumentTemplate.id)
    if applies_to:
        query = query.where(DocumentTemplate.applies_to == applies_to)
    return list(db.session.scalars(query))


def get_template(template_id: int) -> DocumentTemplate:
    found = db.session.get(DocumentTemplate, template_id) if template_id else None
    if found is None:
        raise NotFound(_l("No such template."))
    return found


def ensure_defaults() -> None:
    """Once per company (deleting them all later does not bring them back): the commercial
    proposal, contract, invoice, act and cover letter, in English and Russian.

    Committed here: they are made on the first look at a list of templates, often a GET
    that commits nothing, and their ids must stay the ones that list showed."""
    claimed = db.session.execute(insert(CompanySetting).values(key=_SEEDED, value=True)
                                 .on_conflict_do_nothing().returning(CompanySetting.key)).first()
    if claimed is None:
        return
    from .default_templates import DEFAULTS

    for values in DEFAULTS:
        _save_new(DocumentTemplate(**values), None)
    db.session.commit()


def content_from(data: dict, base: TemplateContent | None = None) -> DocumentTemplate:
    """An unsaved template with `data` over `base`'s content, its fields checked (not its text)."""
    template = DocumentTemplate(**{name: getattr(base, name) for name in TemplateContent.CONTENT}) if base \
        else DocumentTemplate(language="en", page_size="A4", margin_top=20, margin_right=15, margin_bottom=20,
                              margin_left=20, header_html="", footer_html="", body_html="")
    for name in ("name",):
        if name in data:
            template.name = str(data[name] or "").strip()[:200]
    for name, choices, message in (("document_type", numbering.DOCUMENT_TYPES, _l("Choose the kind of document.")),
                                   ("applies_to", APPLIES_TO, _l("Choose the records it applies to.")),
                                   ("language", templating.LANGUAGES, _l("Choose a language.")),
                                   ("page_size", templating.PAGE_SIZES, _l("Choose a page size."))):
        if name in data:
            if data[name] not in choices:
                raise Invalid(message, field=name)
            setattr(template, name, data[name])
    for name in ("margin_top", "margin_right", "margin_bottom", "margin_left"):
        if name in data:
            setattr(template, name, _margin(data[name], name))
    for name in templating.PARTS:
        if name in data:
            text = str(data[name] or "")
            if len(text) > TEXT_LIMIT:
                raise Invalid(_l("At most %(n)d characters.", n=TEXT_LIMIT), field=name)
            setattr(template, name, text.replace("\r\n", "\n"))
    if not template.name:
        raise Invalid(_l("Give the template a name."), field="name")
    for name in ("document_type", "applies_to"):
        if not getattr(template, name):
            raise Invalid(_l("Choose one."), field=name)
    return template


def _margin(raw, field: str) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = -1
    if not 0 <= value <= 60:
        raise Invalid(_l("A margin is 0 to 60 mm."), field=field)
    return value


def check(template: TemplateContent) -> None:
    """TemplateProblem for a syntax error, an unknown filter or placeholder, with its line."""
    templating.check(template, context.known_names(template.applies_to))


def create(actor: Membership, data: dict) -> DocumentTemplate:
    require_manager(actor)
    template = content_from(data)
    check(template)
    return _save_new(template, actor.user_id)


def _save_new(template: DocumentTemplate, user_id: int | None) -> DocumentTemplate:
    template.version, template.created_by, template.updated_by = 1, user_id, user_id
    db.session.add(template)
    db.session.flush()
    _keep_version(template, user_id)
    return template


def update(actor: Membership, template_id: int, data: dict) -> DocumentTemplate:
    """Save changes; a change to the content makes a new version (the old one stays on record)."""
    require_manager(actor)
    template = db.session.get(DocumentTemplate, template_id, with_for_update=True)
    if template is None:
        raise NotFound(_l("No such template."))
    changed = content_from(data, template)
    check(changed)
    if all(getattr(changed, name) == getattr(template, name) for name in TemplateContent.CONTENT):
        return template
    for name in TemplateContent.CONTENT:
        setattr(template, name, getattr(changed, name))
    template.version += 1
    template.updated_by = actor.user_id
    db.session.flush()
    _keep_version(template, actor.user_id)
    return template


def _keep_version(template: DocumentTemplate, user_id: int | None) -> None:
    db.session.add(TemplateVersion(template_id=template.id, number=template.version, created_by=user_id,
                                   **{name: getattr(template, name) for name in TemplateContent.CONTENT}))
    db.session.flush()


def delete(actor: Membership, template_id: int) -> None:
    """Documents made from it keep their files and the number of the version they came from."""
    require_manager(actor)
    db.session.delete(get_template(template_id))
    db.session.flush()


def version(template_id: int, number: int) -> TemplateVersion:
    found = db.session.scalar(select(TemplateVersion).where(TemplateVersion.template_id == template_id,
                                                            TemplateVersion.number == number))
    if found is None:
        raise NotFound(_l("No such version of the template."))
    return found


# --- filling -------------------------------------------------------------------------------

def fill(tenant: TenantRef, template: TemplateContent, record, *, user_id: int | None, number: str, title: str,
         image_url, today: date | None = None) -> str:
    """The whole HTML page of `template` filled for `record` (TemplateProblem when it cannot be)."""
    values = context.build(tenant, template.applies_to, record, user_id=user_id, number=number,
                           language=template.language, today=today or date.today(), image_url=image_url)
    return templating.page_html(template, templating.render(template, values), title)


def record_for(template: TemplateContent, record_id, actor: Membership):
    """The record a template is filled for, if the actor may see it."""
    try:
        record_id = int(record_id)
    except (TypeError, ValueError):
        raise Invalid(_l("Choose a record to fill the template for."), field="record_id")
    return crm.get(template.applies_to, record_id, actor)


def preview(tenant: TenantRef, actor: Membership, template: TemplateContent, record_id) -> str:
    """The page `template` (saved or not) makes for one of the actor's records, number shown as a
    sample, images inline (data: URIs): for the editor's live preview and the API."""
    check(template)
    record = record_for(template, record_id, actor)
    return fill(tenant, template, record, user_id=actor.user_id, title=template.name,
                number=numbering.peek(template.document_type, date.today()),
                image_url=_inline_image)


def _inline_image(name: str) -> str:
    from .pdf import company_image

    found = company_image(name)
    return f"data:{found[0]};base64,{base64.b64encode(found[1]).decode()}" if found else ""
