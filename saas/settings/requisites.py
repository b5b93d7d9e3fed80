"""Our company's requisites and images (logo, stamp, signature), printed on generated documents.

The requisites are one JSON dict in the tenant's settings ("company.requisites"); their keys are
a contract with document templates, which print them as `{{ our.<key> }}`. Images live in the
tenant's `company_images` table, sniffed from their bytes (PNG or JPEG), at most 1 MB each.
"""
import io
import re
import warnings
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from PIL import Image, UnidentifiedImageError
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import undefer

from saas.auth.models import Membership
from saas.crm.access import require_manager
from saas.crm.services import FieldErrors
from saas.errors import Invalid
from tenants.db import db
from tenants.models import utcnow
from tenants.scope import current_tenant

from .models import CompanyImage
from .services import get_setting, set_setting

SETTING = "company.requisites"


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    limit: int  # characters
    hint: str = ""


FIELDS = (
    Field("name", _l("Short name"), 200, _l("As documents name you; your company's name in DealDocs when empty.")),
    Field("legal_name", _l("Full legal name"), 300),
    Field("tin", _l("TIN (INN)"), 30),
    Field("kpp", _l("KPP"), 20, _l("Russian organisations only.")),
    Field("ogrn", _l("Registration number (OGRN)"), 30),
    Field("address", _l("Legal address"), 500),
    Field("bank_name", _l("Bank name"), 200),
    Field("bank_bik", _l("Bank BIC (BIK)"), 20),
    Field("bank_account", _l("Account number"), 40, _l("Or IBAN.")),
    Field("bank_corr_account", _l("Correspondent account"), 40),
    Field("bank_swift", _l("SWIFT code"), 20),
    Field("director", _l("Director"), 200, _l("Who signs: for example “Ivanov I. I.”")),
    Field("accountant", _l("Chief accountant"), 200),
    Field("phone", _l("Phone"), 50),
    Field("email", _l("Email"), 254),
    Field("website", _l("Website"), 200),
)
KEYS = tuple(field.key for field in FIELDS)

IMAGE_LABELS = {"logo": _l("Logo"), "stamp": _l("Stamp"), "signature": _l("Director's signature")}
IMAGE_NAMES = tuple(IMAGE_LABELS)
MAX_IMAGE_BYTES = 1024 * 1024
MAX_IMAGE_SIDE = 6000  # pixels: a small file can still unpack into an image too large to print
SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png", "PNG"), (b"\xff\xd8\xff", "image/jpeg", "JPEG"))


# --- requisites ----------------------------------------------------------------------------

def saved_requisites() -> dict:
    """Every key, as saved ("" for the missing ones), without any fallback: what the form shows."""
    stored = get_setting(SETTING, {})
    stored = stored if isinstance(stored, dict) else {}
    return {key: str(stored.get(key) or "") for key in KEYS}


def requisites() -> dict:
    """Every key for documents; an empty short name falls back to the company's name."""
    values = saved_requisites()
    if not values["name"]:
        values["name"] = current_tenant().name
    return values


def save_requisites(actor: Membership, data: dict) -> dict:
    """Save the keys given in `data` (other keys keep their values; unknown ones are ignored).
    Raises Invalid with every wrong field at once; nothing is saved then. Returns requisites()."""
    require_manager(actor)
    values = saved_requisites()
    errors = {}
    for field in FIELDS:
        if field.key in data:
            try:
                values[field.key] = _text(data[field.key], field)
            except Invalid as error:
                errors[field.key] = [str(error.message)]
    for key, message in _problems(values).items():
        errors.setdefault(key, [str(message)])
    if errors:
        raise FieldErrors(errors)
    set_setting(SETTING, values)
    return requisites()


def _text(raw, field: Field) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise Invalid(_l("Enter text here."))
    value = " ".join(raw.split()) if field.key != "address" else raw.strip()
    if len(value) > field.limit:
        raise Invalid(_l("Too long: %(n)d characters at most.", n=field.limit))
    return value


def _compact(value: str) -> str:
    """Letters and digits only: how people write numbers varies (spaces, dashes, dots)."""
    return re.sub(r"[\s\-./]", "", value)


def _problems(values: dict) -> dict:
    """{key: message} for values that cannot be right. Checks are light on purpose: foreign
    companies have other formats, so only the Russian ones are strict, and only when the other
    requisites say the company is Russian (a KPP, or a 9-digit BIK)."""
    checks = {
        "tin": _tin_problem(values["tin"], russian=bool(values["kpp"])),
        "kpp": _kpp_problem(values["kpp"]),
        "ogrn": _ogrn_problem(values["ogrn"], russian=bool(values["kpp"])),
        "bank_bik": _bik_problem(values["bank_bik"]),
        "bank_account": _account_problem(values["bank_account"], russian=_russian_bank(values)),
        "bank_corr_account": _account_problem(values["bank_corr_account"], russian=_russian_bank(values)),
        "bank_swift": _swift_problem(values["bank_swift"]),
        "phone": _phone_problem(values["phone"]),
        "email": _email_problem(values["email"]),
        "website": _website_problem(values["website"]),
    }
    return {key: message for key, message in checks.items() if message}


def _russian_bank(values: dict) -> bool:
    return bool(re.fullmatch(r"\d{9}", _compact(values["bank_bik"])))


def _tin_problem(value: str, russian: bool):
    tin = _compact(value)
    if not tin:
        return None
    if russian and not re.fullmatch(r"\d{10}|\d{12}", tin):
        return _l("A Russian TIN (INN) has 10 digits (an organisation) or 12 (a sole proprietor).")
    if not re.fullmatch(r"[A-Za-z0-9]{5,20}", tin):
        return _l("A TIN has 5 to 20 letters and digits, for example 7707083893.")
    return None


def _kpp_problem(value: str):
    if value and not re.fullmatch(r"\d{4}[0-9A-Za-z]{2}\d{3}", _compact(value)):
        return _l("A KPP has 9 characters, for example 773601001.")
    return None


def _ogrn_problem(value: str, russian: bool):
    number = _compact(value)
    if not number:
        return None
    if russian and not re.fullmatch(r"\d{13}|\d{15}", number):
        return _l("An OGRN has 13 digits (15 for a sole proprietor's OGRNIP).")
    if not re.fullmatch(r"[A-Za-z0-9]{5,20}", number):
        return _l("A registration number has 5 to 20 letters and digits.")
    return None


def _bik_problem(value: str):
    if value and not re.fullmatch(r"[A-Za-z0-9]{8,11}", _compact(value)):
        return _l("A bank code has 8 to 11 letters and digits: 9 digits for a Russian BIK, like 044525225.")
    return None


def _account_problem(value: str, russian: bool):
    number = _compact(value)
    if not number:
        return None
    if russian and not re.fullmatch(r"\d{20}", number):
        return _l("Russian bank accounts have 20 digits. Check the number, or the BIK if the bank is abroad.")
    if not re.fullmatch(r"[A-Za-z0-9]{5,34}", number):
        return _l("An account number or IBAN has 5 to 34 letters and digits.")
    return None


def _swift_problem(value: str):
    if value and not re.fullmatch(r"[A-Za-z]{6}[A-Za-z0-9]{2}([A-Za-z0-9]{3})?", _compact(value)):
        return _l("A SWIFT code has 8 or 11 characters, for example SABRRUMM.")
    return None


def _phone_problem(value: str):
    if value and (not re.fullmatch(r"[\d\s()+\-.]+", value) or len(re.sub(r"\D", "", value)) < 5):
        return _l("Enter a phone number with digits, for example +7 495 123-45-67.")
    return None


def _email_problem(value: str):
    if value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s.]+", value):
        return _l("Enter an email address like office@example.com.")
    return None


def _website_problem(value: str):
    if value and not re.fullmatch(r"(https?://)?[^\s/@]+\.[^\s/@]+(/\S*)?", value, flags=re.I):
        return _l("Enter a website address like example.com or https://example.com.")
    return None


# --- images --------------------------------------------------------------------------------

def image(name: str) -> CompanyImage | None:
    """The stored image with its bytes, or None. No access check: documents render in workers."""
    if name not in IMAGE_NAMES:
        return None
    return db.session.scalar(select(CompanyImage).where(CompanyImage.name == name).options(undefer(CompanyImage.data)))


def images() -> dict[str, CompanyImage]:
    """Every stored image by name, with its bytes."""
    found = db.session.scalars(select(CompanyImage).options(undefer(CompanyImage.data)))
    return {row.name: row for row in found if row.name in IMAGE_NAMES}


def image_names() -> set[str]:
    """The names of the images stored (without reading their bytes)."""
    return set(db.session.scalars(select(CompanyImage.name).where(CompanyImage.name.in_(IMAGE_NAMES))))


def save_image(actor: Membership, name: str, data: bytes) -> None:
    """Store (or replace) the image `name`; Invalid says what is wrong with the file."""
    require_manager(actor)
    _known_image(name)
    content_type = image_type(data)
    statement = insert(CompanyImage).values(name=name, content_type=content_type, data=data, updated_at=utcnow())
    db.session.execute(statement.on_conflict_do_update(
        index_elements=[CompanyImage.name],
        set_={"content_type": content_type, "data": data, "updated_at": utcnow()}))
    db.session.expire_all()


def delete_image(actor: Membership, name: str) -> None:
    """Remove the image `name` (nothing happens when there is none)."""
    require_manager(actor)
    _known_image(name)
    db.session.execute(delete(CompanyImage).where(CompanyImage.name == name))
    db.session.expire_all()


def _known_image(name: str) -> None:
    if name not in IMAGE_NAMES:
        raise Invalid(_l("Images are the logo, the stamp and the signature."), field="name")


def image_type(data: bytes) -> str:
    """The content type of a PNG or JPEG file, read from its bytes; Invalid for anything else."""
    if not data:
        raise Invalid(_l("Choose a PNG or JPEG file to upload."), field="image")
    if len(data) > MAX_IMAGE_BYTES:
        raise Invalid(_l("The file is larger than %(mb)d MB. Save the image smaller or in a lower resolution.",
                         mb=MAX_IMAGE_BYTES // 2**20), field="image")
    for magic, content_type, image_format in SIGNATURES:
        if data.startswith(magic):
            _check_picture(data, image_format)
            return content_type
    raise Invalid(_l("Only PNG or JPEG images can be used. Save the picture as PNG or JPEG and upload it again."),
                  field="image")


def _check_picture(data: bytes, image_format: str) -> None:
    """The file really is a picture of that kind, and of a size a PDF can hold."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[image_format]) as picture:
                width, height = picture.size
                picture.verify()
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError, OSError,
            SyntaxError, ValueError):
        raise Invalid(_l("The file is damaged or not really a PNG or JPEG image. Save it again and upload it."),
                      field="image") from None
    if max(width, height) > MAX_IMAGE_SIDE:
        raise Invalid(_l("The image is %(w)d × %(h)d pixels; %(n)d at most on each side. Make it smaller.",
                         w=width, h=height, n=MAX_IMAGE_SIDE), field="image")
