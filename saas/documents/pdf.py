"""HTML to PDF with WeasyPrint, reaching nothing but what the company itself stored.

The URL fetcher is the only way WeasyPrint loads anything (images, stylesheets, fonts,
attachments). It serves `data:` URIs, our logo, stamp and signature (`dealdocs:logo`…) and the
company's own image files (`blob:<key>`, only keys under this company's prefix that its schema
lists). Everything else — `file:`, `http(s):` (169.254.169.254 included), another company's
key — is refused without a byte being read, and the document fails naming what it asked for.
"""
import base64
import binascii
import logging
import re
import urllib.parse
from contextlib import contextmanager

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from saas.errors import Invalid
from tenants.db import db
from tenants.models import TenantRef

MAX_PAGES = 500
MAX_PDF_BYTES = 50 * 1024 * 1024
MAX_DATA_URI_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")
_DATA_URI = re.compile(r"^data:(?P<type>[^;,]*)(?P<params>(;[^;,]*)*?)(?P<b64>;base64)?,(?P<data>.*)$", re.S | re.I)


class RenderRefused(Invalid):
    """The page asked for something it may not have, or is too large to be a document."""

    code = "render_refused"


def _weasyprint():
    import weasyprint  # 0.6 s to import: the worker imports it once before forking (see warm_up)

    return weasyprint


def warm_up() -> None:
    """Import WeasyPrint and load the fonts once, in the worker before it forks work horses, so that
    no job pays for it."""
    to_pdf("<p>DealDocs · ДилДокс · ดีล · ديل</p>", tenant=None)


def to_pdf(html: str, tenant: TenantRef | None) -> bytes:
    weasyprint = _weasyprint()
    fetcher = _fetcher_class(weasyprint)(tenant)
    with _collecting_warnings() as warnings:
        document = weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher).render()
        _refuse_addresses(fetcher, warnings)
        if len(document.pages) > MAX_PAGES:
            raise RenderRefused(_l("The document would have %(pages)d pages; at most %(max)d are made.",
                                   pages=len(document.pages), max=MAX_PAGES))
        pdf = document.write_pdf()
        # Attachments (<link rel=attachment>) and images inside SVG are fetched only while writing.
        _refuse_addresses(fetcher, warnings)
    if len(pdf) > MAX_PDF_BYTES:
        raise RenderRefused(_l("The PDF would be larger than %(mb)d MB.", mb=MAX_PDF_BYTES // 2 ** 20))
    return pdf


def _refuse_addresses(fetcher, warnings: list[str]) -> None:
    """RenderRefused naming every address the page asked for and did not get."""
    refused = fetcher.refused + [_relative_address(w) for w in warnings if _NO_BASE in w]
    if refused:
        raise RenderRefused(_l("The template asks for %(what)s. A document may only show images uploaded in "
                               "Settings → Our company ({{ our.logo }}, {{ our.stamp }}, {{ our.signature }}), "
                               "the company's own image files, or data: URIs; nothing from the Internet or "
                               "the server.", what=", ".join(sorted(set(refused)))[:500]))


_NO_BASE = "without a base URI: "


def _relative_address(warning: str) -> str:
    """"/etc/passwd" out of WeasyPrint's "… Relative URI reference without a base URI: '/etc/passwd'.", or
    the declaration out of "Ignored `background: url(x)` at 1:1, … base URI: None." """
    address = warning.split(_NO_BASE, 1)[1].rstrip(".").strip("'\"")
    ignored = re.match(r"Ignored `(.*)` at ", warning)
    return _shorten(ignored.group(1) if address == "None" and ignored else address)


@contextmanager
def _collecting_warnings():
    """WeasyPrint reports what it skipped (e.g. a relative address it had no base for) as log warnings."""
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logger = logging.getLogger("weasyprint")
    logger.addHandler(handler)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)


_FETCHER = {}


def _fetcher_class(weasyprint):
    if "class" in _FETCHER:
        return _FETCHER["class"]
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class TenantFetcher(URLFetcher):
        """Serves only data: URIs and this company's own images; notes every other address asked for."""

        def __init__(self, tenant: TenantRef | None):
            # No urllib handlers at all: nothing here can open a socket or a file.
            self._fail_on_errors, self._allowed_protocols, self._request = False, (), None
            self.tenant, self.refused = tenant, []

        def fetch(self, url, headers=None):
            found = _resolve(url, self.tenant)
            if found is None:
                self.refused.append(_shorten(url))
                raise ValueError(f"not allowed in a document: {_shorten(url)}")
            content_type, data = found
            return URLFetcherResponse(url, data, {"Content-Type": content_type})

        def open(self, url, data=None, timeout=None):
            return self.fetch(url if isinstance(url, str) else url.full_url)

        def __call__(self, url):
            return self.fetch(url)

    _FETCHER["class"] = TenantFetcher
    return TenantFetcher


def _shorten(url: str) -> str:
    return url if len(url) <= 80 else url[:77] + "…"


def _resolve(url: str, tenant: TenantRef | None) -> tuple[str, bytes] | None:
    scheme = url.split(":", 1)[0].lower()
    if scheme == "data":
        return decode_data_uri(url)
    if tenant is None:
        return None
    if scheme == "dealdocs":
        return company_image(url.split(":", 1)[1])
    if scheme == "blob":
        return _own_blob(urllib.parse.unquote(url.split(":", 1)[1]), tenant)
    return None


def decode_data_uri(url: str) -> tuple[str, bytes] | None:
    match = _DATA_URI.match(url)
    if match is None or len(url) > MAX_DATA_URI_BYTES * 4 // 3 + 200:
        return None
    raw = match.group("data")
    try:
        data = base64.b64decode(raw, validate=False) if match.group("b64") else urllib.parse.unquote_to_bytes(raw)
    except (binascii.Error, ValueError):
        return None
    return (match.group("type") or "text/plain"), data


def company_image(name: str) -> tuple[str, bytes] | None:
    from saas.settings.requisites import image

    found = image(name)
    return (found.content_type, found.data) if found is not None else None


def _own_blob(key: str, tenant: TenantRef) -> tuple[str, bytes] | None:
    """A stored image file of this company: the key under its prefix and listed in its own schema."""
    from saas.blobs import blob_store

    from .models import Version

    if not key.startswith(tenant.blob_prefix) or ".." in key:
        return None
    version = db.session.scalar(select(Version).where(Version.blob_key == key, Version.deleted_at.is_(None)))
    if version is None or version.content_type not in IMAGE_TYPES or version.size > MAX_DATA_URI_BYTES:
        return None
    return version.content_type, b"".join(blob_store().open(key))
