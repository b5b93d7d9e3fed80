"""A generated document as an .html file and as a .docx, for people who edit before signing.

The source is the page WeasyPrint printed (`Version.source_html`): written by a tenant's template, so
hostile. Neither export fetches or opens anything it names. Images come only from bytes we hold:
`data:image/…` sources in the page, and our company's images (`dealdocs:logo`, `dealdocs:stamp`,
`dealdocs:signature`) through the `image(name) -> (content_type, bytes) | None` the caller passes. Any
other source (http:, file:, paths, blob:…) is dropped, and so are scripts, frames, event handlers and
CSS `url()`s and `@import`s that would load something.

The page is parsed with tinyhtml5 — WeasyPrint's own HTML5 parser, the tree a browser builds — then
cleaned and written back out by a small serializer, so what a browser reads from the export is the
tree we checked. The .docx is made by htmldocx from the cleaned body, with `_SafeHtmlToDocx` in place
of its image handling (htmldocx 0.0.6 would urlopen() URLs and open() paths).
"""
import base64
import binascii
import io
import re
import struct
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from urllib.parse import unquote_to_bytes
from xml.etree import ElementTree

import tinycss2
import tinyhtml5
from docx import Document
from docx.document import Document as DocxDocument, _Body
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.image.exceptions import InvalidImageStreamError, UnexpectedEndOfFileError, UnrecognizedImageError
from docx.image.image import Image as DocxImage
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.table import CT_Tbl
from docx.shared import Emu, Inches, Mm, Pt
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph
from flask_babel import gettext as _
from htmldocx import HtmlToDocx
from tinycss2.ast import IdentToken, URLToken
from tinycss2.serializer import serialize_string_value

from saas.errors import Invalid

ImageLookup = Callable[[str], tuple[str, bytes] | None]

MAX_HTML_BYTES = 5 * 1024 * 1024
MAX_DATA_URI_BYTES = 5 * 1024 * 1024  # one decoded data: image
MAX_COMPANY_IMAGE_USES = 20  # each use of a ≤1 MB logo copies it into the export
MAX_DEPTH = 128  # elements inside elements; real documents stay under 30
MAX_COLUMNS = 63  # Word's limit; cells past it are left out
MAX_TABLE_NESTING = 5  # htmldocx converts each cell's HTML again for every table around it

COMPANY_SCHEME = "dealdocs:"
SVG = "http://www.w3.org/2000/svg"
ATTRIBUTE_PREFIXES = {"http://www.w3.org/1999/xlink": "xlink:", "http://www.w3.org/XML/1998/namespace": "xml:",
                      "http://www.w3.org/2000/xmlns/": "xmlns:"}


class ExportRefused(Invalid, ValueError):
    """The page cannot be exported: the message says why, in words a person can act on."""

    code = "export_refused"


# --- the two exports -----------------------------------------------------------------------

def standalone_html(source_html: str, image: ImageLookup) -> str:
    """The page to download: our company's images inlined as data: URIs, nothing that loads or runs.

    The footer is moved after the body: browsers ignore the running header and footer of the PDF
    and would show the footer above the text."""
    company = _CompanyImages(image)
    root = _clean_tree(source_html, company.inlined)
    _move_footer_to_end(root)
    return "<!DOCTYPE html>\n" + _html(root)


def docx_bytes(source_html: str, image: ImageLookup) -> bytes:
    """The same document as a Word file: page size and margins from the page's @page rule, the
    running header and footer in the section's header and footer, the body's text, tables and images."""
    company = _CompanyImages(image)
    root = _clean_tree(source_html, _embeddable)
    _check_table_nesting(root)
    document = Document()
    section = document.sections[0]
    _apply_page_setup(section, _page_setup(root))
    _set_properties(document, root)
    _remove_all(root, ("style", "svg"))  # CSS text would be printed; SVG cannot be converted
    body = _body(root)
    header, footer = _running_part(body, "dd-header"), _running_part(body, "dd-footer")
    images = partial(_image_bytes, company=company)
    max_width = section.page_width - section.left_margin - section.right_margin
    _SafeHtmlToDocx(images, max_width).add_html_to_document(_inner_html(body), _AppendingDocument(document, max_width))
    for part, story in ((header, section.header), (footer, section.footer)):
        if part is not None and _has_content(part):
            _SafeHtmlToDocx(images, max_width).add_html_to_story(_inner_html(part), story)
    output = io.BytesIO()
    document.save(output)
    return output.getvalue()


# --- our company's images ------------------------------------------------------------------

class _CompanyImages:
    """`dealdocs:<name>` sources through the caller's lookup: each name looked up once, and a cap on
    uses, since every use copies the image into the export."""

    def __init__(self, image: ImageLookup):
        self._image, self._found, self._uses = image, {}, 0

    def get(self, src: str) -> tuple[str, bytes] | None:
        name = src[len(COMPANY_SCHEME):]
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,40}", name):
            return None
        if name not in self._found:
            self._found[name] = _checked_image(self._image(name))
        if self._found[name] is not None:
            self._uses += 1
            if self._uses > MAX_COMPANY_IMAGE_USES:
                raise ExportRefused(_("The document shows our company's logo, stamp or signature more than "
                                      "%(n)d times; use them fewer times in the template to export it.",
                                      n=MAX_COMPANY_IMAGE_USES))
        return self._found[name]

    def inlined(self, src: str) -> str | None:
        """The source an exported page keeps: data: images as they are, ours as data: URIs."""
        src = _embeddable(src)
        if src is None or not src.startswith(COMPANY_SCHEME):
            return src
        found = self.get(src)
        return _data_uri(*found) if found else None


def _checked_image(found) -> tuple[str, bytes] | None:
    if not found:
        return None
    content_type, data = found
    return (content_type, data) if re.fullmatch(r"image/[a-z0-9.+-]+", content_type or "") and data else None


def _data_uri(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def _embeddable(src: str) -> str | None:
    """An image source we may use without loading anything: a data: image or one of ours."""
    src = _normalised_url(src)
    lowered = src.lower()
    if lowered.startswith("data:image/"):
        return src
    if lowered.startswith(COMPANY_SCHEME):
        return COMPANY_SCHEME + src[len(COMPANY_SCHEME):].lower()
    return None


SPACE_AND_CONTROLS = "".join(map(chr, range(0x21))) + "\x7f"


def _normalised_url(value: str) -> str:
    """As a browser reads a URL: outer spaces and controls stripped, tabs and newlines gone."""
    return re.sub(r"[\t\n\r]", "", value or "").strip(SPACE_AND_CONTROLS)


def _image_bytes(src: str, company: _CompanyImages) -> bytes | None:
    """The bytes of an image source, decoded in memory: never a URL fetched, never a path opened."""
    src = _embeddable(src)
    if src is None:
        return None
    if src.startswith(COMPANY_SCHEME):
        found = company.get(src)
        return found[1] if found else None
    return _decoded_data_uri(src)


def _decoded_data_uri(src: str) -> bytes | None:
    header, comma, payload = src.partition(",")
    if not comma:
        return None
    if header.lower().endswith(";base64"):
        payload = re.sub(r"\s+", "", payload)
        if len(payload) // 4 * 3 > MAX_DATA_URI_BYTES:
            return None
        try:
            return base64.b64decode(payload + "=" * (-len(payload) % 4))
        except (binascii.Error, ValueError):
            return None
    data = unquote_to_bytes(payload)
    return data if len(data) <= MAX_DATA_URI_BYTES else None


# --- parsing and cleaning ------------------------------------------------------------------

# Removed with everything inside: they run code, load something, or hide markup from the check.
DROPPED = frozenset({
    "script", "noscript", "template", "iframe", "frame", "frameset", "object", "embed", "applet", "param",
    "base", "link", "meta", "audio", "video", "source", "track", "portal", "noembed", "noframes", "xmp",
    "plaintext", "foreignobject", "animate", "animatemotion", "animatetransform", "animatecolor", "set",
    "feimage", "handler", "listener"})
# Attributes holding a URL the browser loads or follows.
URL_ATTRIBUTES = frozenset({
    "href", "src", "srcset", "data", "poster", "background", "action", "formaction", "cite", "longdesc",
    "lowsrc", "dynsrc", "usemap", "ping", "manifest", "codebase", "archive", "classid", "profile", "icon",
    "srcdoc", "imagesrcset"})
LINK_SCHEMES = ("http", "https", "mailto", "tel")
ATTRIBUTE_NAME = re.compile(r"[a-zA-Z_:][-a-zA-Z0-9_:.]*")
MATHML = "http://www.w3.org/1998/Math/MathML"


def _clean_tree(source_html: str, image_src: Callable[[str], str | None]) -> ElementTree.Element:
    """The page parsed as a browser would, without anything that loads or runs. `image_src` maps an
    image's source to the one to keep (None drops the image)."""
    if len(source_html.encode("utf-8", "surrogatepass")) > MAX_HTML_BYTES:
        raise ExportRefused(_("The document is larger than %(mb)d MB of HTML and cannot be exported.",
                              mb=MAX_HTML_BYTES // 2 ** 20))
    # A short string naming a file would be read as that file: give the parser a stream.
    root = tinyhtml5.parse(io.StringIO(source_html), namespace_html_elements=False)
    _check_depth(root)
    _clean_children(root, image_src)
    _clean_attributes(root, image_src)
    _ensure_charset(root)
    return root


def _check_depth(root: ElementTree.Element) -> None:
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExportRefused(_("The document has elements nested more than %(n)d deep and cannot be "
                                  "exported.", n=MAX_DEPTH))
        stack.extend((child, depth + 1) for child in element)


def _clean_children(root: ElementTree.Element, image_src) -> None:
    """Drop what DROPPED names and comments, and images with no source we may use; clean CSS."""
    stack = [root]
    while stack:
        element = stack.pop()
        _keep_children(element, lambda child: isinstance(child.tag, str) and _local(child) not in DROPPED
                       and _keeps_image(child, image_src))
        for child in element:
            if _local(child) == "style":
                css = "".join(child.itertext())  # an SVG <style> may hide CSS in child elements
                child[:] = []
                child.text = _clean_css(css, image_src)
            stack.append(child)


def _keeps_image(element: ElementTree.Element, image_src) -> bool:
    """False for an <img> or SVG <image> without a source we may use; sets the source it keeps."""
    if not _is_image(element):
        return True
    name = _local(element)
    keys = [key for key in element.attrib if _attribute_name(key) in ("src", "href")]
    kept = next((src for src in (image_src(element.attrib[key]) for key in keys) if src), None)
    for key in keys:
        del element.attrib[key]
    if kept is None:
        return False
    element.set("src" if name == "img" else "href", kept)
    return True


def _is_image(element: ElementTree.Element) -> bool:
    return element.tag in ("img", f"{{{SVG}}}image")


def _clean_attributes(root: ElementTree.Element, image_src) -> None:
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for key, value in list(element.attrib.items()):
            if not ATTRIBUTE_NAME.fullmatch(_attribute_key(key)):
                del element.attrib[key]
                continue
            cleaned = _clean_attribute(element, _attribute_name(key), value, image_src)
            if cleaned is None:
                del element.attrib[key]
            elif cleaned != value:
                element.set(key, cleaned)


def _clean_attribute(element, name: str, value: str, image_src) -> str | None:
    """The value to keep (None: drop the attribute)."""
    if name.startswith("on"):
        return None
    if name in URL_ATTRIBUTES:
        if _is_image(element) and name in ("src", "href"):
            return value  # checked by _keeps_image
        return _link(value) if name == "href" and _follows_links(element) else _fragment(value)
    if name == "style" or _is_svg_paint(element, value):
        return _clean_css_values(value, image_src)
    return value


def _is_svg_paint(element, value: str) -> bool:
    """SVG presentation attributes (fill, filter, mask…) take CSS values, url() included."""
    return element.tag.startswith(f"{{{SVG}}}") and ("url" in value.lower() or "\\" in value)


def _follows_links(element) -> bool:
    """Elements whose href is a link a person clicks, not something the browser loads."""
    return _local(element) in ("a", "area") or element.tag.startswith(f"{{{MATHML}}}")


def _link(value: str) -> str | None:
    url = _normalised_url(value)
    scheme = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*):", url)
    return url if url.startswith("#") or scheme and scheme.group(1).lower() in LINK_SCHEMES else None


def _fragment(value: str) -> str | None:
    url = _normalised_url(value)
    return url if url.startswith("#") else None


def _ensure_charset(root: ElementTree.Element) -> None:
    head = root.find("head")
    if head is not None:
        head.insert(0, ElementTree.Element("meta", {"charset": "utf-8"}))


def _remove(parent: ElementTree.Element, child: ElementTree.Element) -> None:
    """Remove an element, keeping the text that follows it."""
    if child.tail:
        index = list(parent).index(child)
        if index:
            previous = parent[index - 1]
            previous.tail = (previous.tail or "") + child.tail
        else:
            parent.text = (parent.text or "") + child.tail
    parent.remove(child)


def _local(element: ElementTree.Element) -> str:
    return element.tag.rsplit("}", 1)[-1].lower() if isinstance(element.tag, str) else ""


def _attribute_name(key: str) -> str:
    """`href` for href, xlink:href and {xlink}href alike."""
    return key.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower()


def _remove_all(root: ElementTree.Element, names: tuple[str, ...]) -> None:
    stack = [root]
    while stack:
        element = stack.pop()
        _keep_children(element, lambda child: _local(child) not in names)
        stack.extend(element)


def _keep_children(parent: ElementTree.Element, keep: Callable[[ElementTree.Element], bool]) -> None:
    """Remove the children `keep` refuses, in one pass, keeping the text that follows each."""
    kept: list[ElementTree.Element] = []
    for child in parent:
        if keep(child):
            kept.append(child)
        elif child.tail and kept:
            kept[-1].tail = (kept[-1].tail or "") + child.tail
        elif child.tail:
            parent.text = (parent.text or "") + child.tail
    if len(kept) != len(parent):
        parent[:] = kept


# --- CSS -----------------------------------------------------------------------------------

URL_FUNCTIONS = frozenset({"url", "src", "image", "image-set", "-webkit-image-set", "cross-fade",
                           "-webkit-cross-fade"})  # where a quoted string is a URL


def _clean_css(css: str, image_src) -> str:
    """A stylesheet without @import and with every url() that would load something replaced by none."""
    try:
        rules = [rule for rule in tinycss2.parse_stylesheet(css, skip_comments=True)
                 if rule.type in ("qualified-rule", "at-rule", "whitespace") and
                 not (rule.type == "at-rule" and rule.lower_at_keyword == "import")]
        for rule in rules:
            if rule.type != "whitespace":
                rule.prelude = _clean_values(rule.prelude, image_src)
                if rule.content is not None:
                    rule.content = _clean_values(rule.content, image_src)
        return _safe_in_style_element(tinycss2.serialize(rules))
    except RecursionError:
        return ""  # brackets nested thousands deep: no real stylesheet, and too deep to check


def _clean_css_values(css: str, image_src) -> str:
    try:
        return tinycss2.serialize(_clean_values(tinycss2.parse_component_value_list(css, skip_comments=True),
                                                image_src))
    except RecursionError:
        return ""


def _clean_values(values: list, image_src, strings_are_urls: bool = False) -> list:
    cleaned = []
    for value in values:
        if value.type == "url" or strings_are_urls and value.type == "string":
            value = _css_url(value, value.value, image_src)
        elif value.type == "function" and value.lower_name in ("url", "src"):
            strings = [argument for argument in value.arguments if argument.type == "string"]
            value = _css_url(value, strings[0].value if strings else "", image_src)
        elif value.type == "function":
            value.arguments = _clean_values(value.arguments, image_src, value.lower_name in URL_FUNCTIONS)
        elif value.type in ("() block", "[] block", "{} block"):
            value.content = _clean_values(value.content, image_src, strings_are_urls)
        elif value.type == "error":
            continue
        cleaned.append(value)
    return cleaned


def _css_url(token, url: str, image_src):
    """The url() to keep: same-document #ids and data: as they are, an image we may use, else `none`."""
    url = _normalised_url(url)
    if url.startswith("#") or url.lower().startswith("data:") and not url.lower().startswith("data:image/"):
        kept = url
    else:
        kept = image_src(url)
    if kept is None:
        return IdentToken(token.source_line, token.source_column, "none")
    return URLToken(token.source_line, token.source_column, kept, f'url("{serialize_string_value(kept)}")')


def _safe_in_style_element(css: str) -> str:
    # "</style" would end the element early; in CSS "\/" is just "/".
    return re.sub(r"</(?=style)", r"<\\/", css, flags=re.IGNORECASE)


# --- writing HTML back out -----------------------------------------------------------------

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param",
                  "source", "track", "wbr"})
NEWLINE_EATERS = frozenset({"pre", "textarea", "listing"})  # the parser drops a newline right after these


def _html(element: ElementTree.Element) -> str:
    parts: list[str] = []
    _write(element, parts)
    return "".join(parts)


def _inner_html(element: ElementTree.Element) -> str:
    parts: list[str] = [_text(element.text)]
    for child in element:
        _write(child, parts)
    return "".join(parts)


def _write(element: ElementTree.Element, parts: list[str]) -> None:
    if isinstance(element.tag, str):
        name = element.tag.rsplit("}", 1)[-1]
        attributes = "".join(f' {_attribute_key(key)}="{_attribute_value(value)}"'
                             for key, value in element.attrib.items())
        parts.append(f"<{name}{attributes}>")
        if element.tag not in VOID:
            if element.tag == "style":  # raw text in HTML (already made safe by _clean_css)
                parts.append(element.text or "")
            else:
                text = element.text or ""
                if element.tag in NEWLINE_EATERS and text.startswith("\n"):
                    text = "\n" + text
                parts.append(_text(text))
                for child in element:
                    _write(child, parts)
            parts.append(f"</{name}>")
    parts.append(_text(element.tail))


def _attribute_key(key: str) -> str:
    if key.startswith("{"):
        namespace, name = key[1:].split("}", 1)
        return ATTRIBUTE_PREFIXES.get(namespace, "") + name
    return key


def _attribute_value(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def _text(text: str | None) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- the page's parts ----------------------------------------------------------------------

def _body(root: ElementTree.Element) -> ElementTree.Element:
    body = root.find("body")
    return body if body is not None else ElementTree.SubElement(root, "body")


def _running_part(body: ElementTree.Element, css_class: str) -> ElementTree.Element | None:
    """The header or footer div page_html() puts first in the body (taken out of the body)."""
    for child in body:
        if child.tag == "div" and css_class in (child.get("class") or "").split():
            _remove(body, child)
            return child
    return None


def _move_footer_to_end(root: ElementTree.Element) -> None:
    body = _body(root)
    footer = _running_part(body, "dd-footer")
    if footer is not None:
        footer.tail = None
        body.append(footer)


def _has_content(element: ElementTree.Element) -> bool:
    return bool("".join(element.itertext()).strip()) or element.find(".//img") is not None


def _check_table_nesting(root: ElementTree.Element) -> None:
    stack = [(root, 0)]
    while stack:
        element, tables = stack.pop()
        tables += element.tag == "table"
        if tables > MAX_TABLE_NESTING:
            raise ExportRefused(_("The document has tables nested more than %(n)d deep and cannot be made "
                                  "into a Word file.", n=MAX_TABLE_NESTING))
        stack.extend((child, tables) for child in element)


# --- page size and margins -----------------------------------------------------------------

PAGE_SIZES = {"a3": (Mm(297), Mm(420)), "a4": (Mm(210), Mm(297)), "a5": (Mm(148), Mm(210)),
              "b4": (Mm(250), Mm(353)), "b5": (Mm(176), Mm(250)), "letter": (Inches(8.5), Inches(11)),
              "legal": (Inches(8.5), Inches(14)), "ledger": (Inches(11), Inches(17))}
UNITS = {"mm": Mm(1), "cm": Mm(10), "in": Inches(1), "pt": Pt(1), "pc": Pt(12), "px": Emu(9525), "q": Mm(0.25)}


def _page_setup(root: ElementTree.Element) -> dict:
    """{"size": (width, height), "margins": (top, right, bottom, left)} from the first @page rule
    of the page's stylesheets (either key missing when the rule does not say)."""
    for style in root.iter("style"):
        for rule in tinycss2.parse_stylesheet(style.text or "", skip_comments=True, skip_whitespace=True):
            if rule.type == "at-rule" and rule.lower_at_keyword == "page" and rule.content is not None \
                    and not tinycss2.serialize(rule.prelude).strip():
                return _page_declarations(rule.content)
    return {}


def _page_declarations(content: list) -> dict:
    setup = {}
    for declaration in tinycss2.parse_blocks_contents(content, skip_comments=True, skip_whitespace=True):
        if declaration.type != "declaration":
            continue
        values = [value for value in declaration.value if value.type != "whitespace"]
        if declaration.lower_name == "size" and (size := _page_size(values)):
            setup["size"] = size
        elif declaration.lower_name == "margin" and (margins := _margins(values)):
            setup["margins"] = margins
    return setup


def _page_size(values: list) -> tuple[int, int] | None:
    names = [value.lower_value for value in values if value.type == "ident"]
    lengths = [_css_length(value) for value in values if value.type in ("dimension", "number")]
    size = next((PAGE_SIZES[name] for name in names if name in PAGE_SIZES), None)
    if size is None and lengths and None not in lengths:
        size = (lengths[0], lengths[-1])
    if size is None:
        return None
    width, height = (min(max(length, Inches(1)), Inches(22)) for length in size)  # Word's limits
    return (max(width, height), min(width, height)) if "landscape" in names else (width, height)


def _margins(values: list) -> tuple[int, int, int, int] | None:
    lengths = [_css_length(value) for value in values]
    if not 1 <= len(lengths) <= 4 or None in lengths:
        return None
    top, right, bottom, left = {1: lengths * 4, 2: lengths * 2, 3: lengths + lengths[1:2],
                                4: lengths}[len(lengths)]
    return top, right, bottom, left


def _css_length(value) -> int | None:
    if value.type == "number" and value.value == 0:
        return 0
    if value.type == "dimension" and value.lower_unit in UNITS and 0 <= value.value <= 2000:
        return int(value.value * UNITS[value.lower_unit])
    return None


def _apply_page_setup(section, setup: dict) -> None:
    if "size" in setup:
        section.page_width, section.page_height = (Emu(length) for length in setup["size"])
    if "margins" in setup:
        top, right, bottom, left = (Emu(length) for length in setup["margins"])
        if left + right < section.page_width and top + bottom < section.page_height:
            section.top_margin, section.right_margin, section.bottom_margin, section.left_margin = \
                top, right, bottom, left


def _set_properties(document: DocxDocument, root: ElementTree.Element) -> None:
    """Title and language from the page; nothing left from python-docx's template (its author,
    dates and thumbnail)."""
    title = root.find("head/title")
    properties = document.core_properties
    properties.title = " ".join("".join(title.itertext()).split())[:255] if title is not None else ""
    properties.language = (root.get("lang") or "")[:35]
    properties.author = properties.last_modified_by = properties.comments = ""
    properties.subject = properties.keywords = properties.category = ""
    properties.created = properties.modified = datetime.now(timezone.utc)
    rels = document.part.package.rels
    for rel_id in [rel_id for rel_id, rel in rels.items() if rel.reltype == RT.THUMBNAIL]:
        rels.pop(rel_id)  # the template's picture of an empty page


# --- HTML to DOCX --------------------------------------------------------------------------

# Start a paragraph of their own (htmldocx alone runs the text of sibling divs together).
BLOCKS = frozenset({"p", "div", "section", "article", "header", "footer", "main", "aside", "nav", "address",
                    "blockquote", "figure", "figcaption", "dl", "dt", "dd", "center", "caption", "form",
                    "fieldset", "legend", "details", "summary", "hgroup"})
ENDS_PARAGRAPH = frozenset({"li", "pre", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"})
ALIGNMENTS = {"left": WD_ALIGN_PARAGRAPH.LEFT, "center": WD_ALIGN_PARAGRAPH.CENTER,
              "right": WD_ALIGN_PARAGRAPH.RIGHT, "justify": WD_ALIGN_PARAGRAPH.JUSTIFY}
PAGE_FIELDS = {"page-number": "PAGE", "page-count": "NUMPAGES"}
BROKEN_IMAGE = (UnrecognizedImageError, InvalidImageStreamError, UnexpectedEndOfFileError, struct.error,
                ValueError, ArithmeticError, LookupError)


class _SafeHtmlToDocx(HtmlToDocx):
    """htmldocx that embeds only the image bytes `image_bytes(src)` gives (never fetching a URL or
    opening a path), converts table cells with the same rules, keeps the page's paragraphs and
    spaces, and does not stop on CSS or markup it does not expect (3-digit colours,
    `margin-left: auto`, a `<br>` first, an `<a>` without href…)."""

    def __init__(self, image_bytes: Callable[[str], bytes | None], max_width: int):
        super().__init__()
        self.image_bytes, self.max_width = image_bytes, max_width

    def set_initial_attrs(self, document=None):
        super().set_initial_attrs(document)
        self.blocks: list[dict] = []  # the open block elements' attributes, outermost first

    @property
    def paragraph(self):
        return self._paragraph

    @paragraph.setter
    def paragraph(self, paragraph):
        # htmldocx sets self.paragraph in many places; each new one starts without text.
        self._paragraph, self.paragraph_has_text = paragraph, False

    def add_html_to_story(self, html: str, story) -> None:
        """add_html_to_document for a section's header or footer."""
        for paragraph in story.paragraphs:
            paragraph._element.getparent().remove(paragraph._element)
        self.set_initial_attrs(story)
        self.run_process(html)
        _end_with_paragraph(story)

    # Images: bytes we hold, or nothing.

    def handle_img(self, current_attrs):
        data = self.image_bytes(current_attrs.get("src") or "")
        if not data:
            return
        try:
            width, height = _picture_size(data, current_attrs, self.max_width)
        except BROKEN_IMAGE:
            return
        self.current_paragraph().add_run().add_picture(io.BytesIO(data), width, height)
        self.paragraph_has_text = True

    # Tables: cells converted by this class too, columns counted in the widest row, colspan merged.

    def handle_table(self):
        table_soup = self.tables[self.table_no]
        rows = self.get_table_rows(table_soup)
        columns = min(max((sum(_span(cell) for cell in self.get_table_columns(row)) for row in rows), default=0),
                      MAX_COLUMNS)
        if rows and columns:
            self.fill_table(rows, columns, _has_borders(table_soup))
        self.instances_to_skip = len(table_soup.find_all("table"))  # skip the tags just converted
        self.skip_tag, self.skip, self.table, self.paragraph = "table", True, None, None

    def get_table_rows(self, table_soup):
        """The table's own rows, in order (htmldocx's selectors also take the rows of the tables
        inside it, copying their cells into this one: twice the work for every level of nesting)."""
        rows = []
        for child in table_soup.find_all(True, recursive=False):
            if child.name == "tr":
                rows.append(child)
            elif child.name in ("thead", "tbody", "tfoot"):
                rows.extend(child.find_all("tr", recursive=False))
        return rows

    def fill_table(self, rows, columns: int, bordered: bool) -> None:
        if isinstance(self.doc, (DocxDocument, _Cell)):
            table = self.doc.add_table(len(rows), columns)
        else:
            table = self.doc.add_table(len(rows), columns, self.max_width)
        if bordered:
            table.style = "Table Grid"
        # Cells are reached through their row: table.cell() walks the whole table on every call.
        for row, row_element in zip(rows, table._tbl.tr_lst):
            grid, column = row_element.tc_lst, 0  # one cell per grid column until merged
            for cell_soup in self.get_table_columns(row):
                if column >= columns:
                    break
                span = min(_span(cell_soup), columns - column)
                self.fill_cell(_Cell(_merged(row_element, grid[column:column + span]), table), cell_soup)
                column += span

    def fill_cell(self, cell, cell_soup) -> None:
        html = self.get_cell_html(cell_soup)
        if cell_soup.name == "th":
            html = f"<b>{html}</b>"
        child = type(self)(self.image_bytes, self.max_width)
        child.copy_settings_from(self)
        child.add_html_to_cell(html, cell)
        _end_with_paragraph(cell)
        alignment = ALIGNMENTS.get(_text_align(cell_soup.attrs))
        for paragraph in cell.paragraphs if alignment is not None else ():
            if paragraph.alignment is None:
                paragraph.alignment = alignment

    # Paragraphs: one per block element, made when its first text or image arrives.

    def handle_starttag(self, tag, attrs):
        if self.skip:
            return super().handle_starttag(tag, attrs)
        if tag in BLOCKS:
            self.blocks.append(dict(attrs))
            if self.paragraph is not None and not self.paragraph_has_text:
                self.align(self.paragraph)  # <li><p>…: the list item's paragraph, not an empty one before
            else:
                self.paragraph = None
            return
        if tag == "br":
            self.run = self.current_paragraph().add_run()
            self.run.add_break()
            self.paragraph_has_text = False  # a new line starts here
            return
        if tag == "a":
            attrs = [("href", ""), *attrs]  # htmldocx reads link["href"]
        if tag == "span":
            field = next((PAGE_FIELDS[name] for name in (dict(attrs).get("class") or "").split()
                          if name in PAGE_FIELDS), None)
            if field:
                _add_field(self.current_paragraph(), field)
                self.paragraph_has_text = True
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if self.skip:
            return super().handle_endtag(tag)
        if tag in BLOCKS:
            if self.blocks:
                self.blocks.pop()
            self.paragraph = None
            return
        super().handle_endtag(tag)
        if tag in ENDS_PARAGRAPH:
            self.paragraph = None

    def handle_data(self, data):
        if self.skip:
            return
        if "pre" not in self.tags:
            # As a browser shows it: runs of white space are one space, none at a line's start.
            # (htmldocx drops the spaces around line breaks, gluing "Total:\n<b>5</b>" into "Total:5".)
            data = re.sub(r"\s+", " ", data)
            if not self.paragraph_has_text:
                data = data.lstrip()
            if not data:
                return
        self.current_paragraph()
        super().handle_data(data)
        self.paragraph_has_text = True

    def current_paragraph(self):
        if self.paragraph is None:
            self.paragraph = self.doc.add_paragraph()
            self.run = self.paragraph.add_run()
            self.align(self.paragraph)
        return self.paragraph

    def align(self, paragraph) -> None:
        alignment = ALIGNMENTS.get(_inherited_alignment(self.blocks))
        if alignment is not None:
            paragraph.alignment = alignment

    def handle_link(self, href, text):
        url = _link(href)
        if url and not url.startswith("#"):
            return super().handle_link(url, text)
        self.run = self.paragraph.add_run(text)  # a link to nowhere we allow: its text

    # Styles: what htmldocx cannot read is left out rather than stopping the export.

    def parse_dict_string(self, string, separator=";"):
        return _style(string)

    def add_styles_to_paragraph(self, style):
        try:
            super().add_styles_to_paragraph(style)
        except (ValueError, TypeError, IndexError):
            pass

    def add_styles_to_run(self, style):
        try:
            super().add_styles_to_run(style)
        except (ValueError, TypeError, IndexError):
            pass


class _AppendingDocument(DocxDocument):
    """The document, adding paragraphs and tables at the end of its body without searching the body
    each time: python-docx looks through all of it for the closing w:sectPr on every paragraph (and
    for the section on every table), which makes a long document take minutes."""

    def __init__(self, document: DocxDocument, block_width: int):
        super().__init__(document.element, document.part)
        self._appending_body = _AppendingBody(document.element.body, self)
        self._width = block_width

    @property
    def _body(self):
        return self._appending_body

    @property
    def _block_width(self):
        return self._width


class _AppendingBody(_Body):
    def __init__(self, body_element, parent):
        super().__init__(body_element, parent)
        self._end = body_element[-1]  # the body's w:sectPr, always last
        self._style_ids: dict[str, str | None] = {}

    def add_paragraph(self, text: str = "", style=None):
        # python-docx looks the style up among all the document's styles for each paragraph.
        paragraph = super().add_paragraph(text)
        if style is not None:
            if style not in self._style_ids:
                self._style_ids[style] = self.part.get_style_id(style, WD_STYLE_TYPE.PARAGRAPH)
            paragraph._p.style = self._style_ids[style]
        return paragraph

    def _add_paragraph(self):
        paragraph = OxmlElement("w:p")
        self._end.addprevious(paragraph)
        return Paragraph(paragraph, self)

    def add_table(self, rows: int, cols: int, width):
        table = CT_Tbl.new_tbl(rows, cols, width)
        self._end.addprevious(table)
        return Table(table, self)


def _style(css: str) -> dict[str, str]:
    """A style attribute as htmldocx reads it ({"text-align": "right"}), split at the first colon."""
    pairs = (item.split(":", 1) for item in (css or "").replace(" ", "").split(";") if ":" in item)
    return {name.lower(): value for name, value in pairs}


def _picture_size(data: bytes, attrs: dict, max_width: int) -> tuple[int, int]:
    """The size the page asks for (width/height in the style or attributes), else the image's own,
    no wider than the text."""
    style = _style(attrs.get("style") or "")
    asked = [_html_length(style.get(name) or attrs.get(name)) for name in ("width", "height")]
    width, height = DocxImage.from_blob(data).scaled_dimensions(*asked)
    if width > max_width:
        width, height = max_width, int(height * max_width / width)
    return Emu(width), Emu(height)


def _html_length(value: str | None) -> int | None:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(mm|cm|in|pt|pc|px|q)?\s*", (value or "").lower())
    if not match:
        return None
    length = int(float(match.group(1)) * UNITS[match.group(2) or "px"])
    return length if 0 < length <= Inches(100) else None


def _span(cell_soup) -> int:
    try:
        return min(max(int(cell_soup.get("colspan") or 1), 1), 100)
    except ValueError:
        return 1


def _merged(row_element, cells: list):
    """The first of `cells` (neighbours in one row) widened over all of them."""
    cell = cells[0]
    if len(cells) > 1:
        width = sum(other.width or 0 for other in cells)
        for other in cells[1:]:
            row_element.remove(other)
        cell.grid_span, cell.width = len(cells), Emu(width) if width else None
    return cell


def _has_borders(table_soup) -> bool:
    """Data tables (with header cells or a border) get grid lines; layout tables stay invisible."""
    return bool(table_soup.get("border") not in (None, "", "0") or table_soup.find("th")
                or "border" in (table_soup.get("style") or "").lower())


def _text_align(attrs: dict) -> str | None:
    return (_style(attrs.get("style") or "").get("text-align") or attrs.get("align") or "").lower() or None


def _inherited_alignment(blocks: list[dict]) -> str | None:
    return next((align for align in map(_text_align, reversed(blocks)) if align), None)


def _end_with_paragraph(container) -> None:
    """Word refuses a cell, header or footer that ends with a table (or holds nothing)."""
    element = container._element
    if not len(element) or element[-1].tag != qn("w:p"):
        container.add_paragraph()


def _add_field(paragraph, instruction: str) -> None:
    """A Word field (the page number, the page count), showing 1 until Word updates it."""
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), instruction)
    run, text = OxmlElement("w:r"), OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    field.append(run)
    paragraph._p.append(field)


MAX_DOCX_SOURCE_BYTES = 512 * 1024  # a real contract's page is 20–100 KB
MIMETYPES = {"html": "text/html", "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
# What a page made from a tenant's template may load when opened: its own styles and inline images.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def exported_response(version, kind: str):
    """A generated version (one with source_html) as a download of `kind` ("html" or "docx")."""
    from flask import current_app

    from storage.backends import content_disposition

    from .pdf import company_image

    if kind == "docx" and len(version.source_html) > MAX_DOCX_SOURCE_BYTES:
        # The conversion runs in the web request; its time grows with the page (minutes at 5 MB).
        raise ExportRefused(_("This document is too long to convert to DOCX here; download the PDF or the HTML."))
    body = standalone_html(version.source_html, company_image).encode() if kind == "html" \
        else docx_bytes(version.source_html, company_image)
    response = current_app.response_class(body, mimetype=MIMETYPES[kind])
    response.headers["Content-Disposition"] = content_disposition(f"{version.filename.rsplit('.', 1)[0]}.{kind}",
                                                                  inline=False)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = PAGE_POLICY  # opened anyway: it loads and runs nothing
    return response
