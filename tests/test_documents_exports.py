"""Generated documents as .html and .docx (saas/documents/exports.py): the text, tables and images
survive, and nothing the hostile page names is fetched or opened — proved against a real HTTP
server on loopback and a real file holding a marker, not by trusting the code."""
import base64
import io
import threading
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import docx
import pytest
from htmldocx import HtmlToDocx
from PIL import Image

from saas.documents import exports
from saas.documents.exports import ExportRefused, docx_bytes, standalone_html
from saas.documents.templating import PAGE_CSS


def png(colour: str, size=(4, 2)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


INLINE_PNG, LOGO_PNG = png("red"), png("blue", (8, 8))
MARKER = f"SECRET-{uuid.uuid4().hex}"


class Recorder(BaseHTTPRequestHandler):
    """Answers every GET with a PNG carrying the marker, and remembers the path."""

    def do_GET(self):
        self.server.requests.append(self.path)
        body = png("green") + MARKER.encode()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def bait_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def bait_file(tmp_path):
    """A real image on disk whose bytes carry the marker: opening it would leak the marker."""
    path = tmp_path / "secret.png"
    path.write_bytes(png("yellow") + MARKER.encode())
    return path


def company_images(found: dict):
    calls = []

    def image(name):
        calls.append(name)
        return found.get(name)
    image.calls = calls
    return image


def hostile_page(server, secret_file) -> str:
    bait = f"http://127.0.0.1:{server.server_port}"
    css = PAGE_CSS % {"size": "A4", "top": 20, "right": 15, "bottom": 20, "left": 25}
    inline = base64.b64encode(INLINE_PNG).decode()
    return f"""<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>Счёт № 7</title>
<style>{css} @import "{bait}/import.css"; body {{ background: url({bait}/style-element.png) }}</style>
<link rel="stylesheet" href="{bait}/link.css"></head><body>
<div class="dd-header"><img src="dealdocs:logo" alt="" style="height: 25mm"> ООО «Ромашка»</div>
<div class="dd-footer">Страница <span class="page-number"></span> из <span class="page-count"></span></div>
<h1>Счёт на оплату № 7</h1>
<div>Покупатель: <b>ООО «Лютик»</b></div>
<p>Thai สวัสดีครับ and Arabic مرحبا بالعالم</p>
<table class="items">
 <thead><tr><th>№</th><th>Наименование</th><th>Сумма</th></tr></thead>
 <tbody>
  <tr><td>1</td><td>Стул офисный</td><td style="text-align: right">1 500,00 ₽</td></tr>
  <tr><td>2</td><td>Стол письменный <img src="file://{secret_file}"></td><td>7 250,00 ₽</td></tr>
 </tbody>
 <tfoot><tr><td colspan="2">Итого</td><td>8 750,00 ₽</td></tr></tfoot>
</table>
<p style="background-image: url({bait}/style-attribute.png)">Оплатить до 31.12.</p>
<img src="data:image/png;base64,{inline}" alt="inline">
<img src="http://169.254.169.254/latest/meta-data/">
<img src="file:///etc/passwd"><img src="/etc/passwd"><img src="{secret_file}">
<img src="{bait}/img.png" onerror="alert(1)"><img src="blob:{bait}/x"><img src="relative/picture.png">
<img srcset="{bait}/srcset.png 2x"><input type="image" src="{bait}/input.png">
<iframe src="{bait}/iframe"></iframe><object data="{bait}/object"></object><embed src="{bait}/embed">
<video poster="{bait}/poster.png"></video><table background="{bait}/table-bg.png"><tr><td>фон</td></tr></table>
<svg><image href="{bait}/svg-image.png"/><use href="{bait}/sprite.svg#a"/></svg>
<script src="{bait}/script.js"></script><script>fetch("{bait}/inline-script")</script>
</body></html>"""


def parts_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        return {name: package.read(name) for name in package.namelist()}


# --- the HTML export -----------------------------------------------------------------------

def test_html_export_inlines_images_and_drops_every_other_source(bait_server, bait_file):
    image = company_images({"logo": ("image/png", LOGO_PNG)})
    html = standalone_html(hostile_page(bait_server, bait_file), image)

    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html
    assert "Счёт на оплату № 7" in html and "สวัสดีครับ" in html and "مرحبا بالعالم" in html
    assert "<td>Стул офисный</td>" in html and 'colspan="2"' in html
    assert f"data:image/png;base64,{base64.b64encode(INLINE_PNG).decode()}" in html
    assert f"data:image/png;base64,{base64.b64encode(LOGO_PNG).decode()}" in html
    assert "dealdocs:" not in html and image.calls == ["logo"]
    for hostile in ("169.254.169.254", "/etc/passwd", f"127.0.0.1:{bait_server.server_port}", str(bait_file),
                    "blob:", "relative/picture.png", "<script", "<iframe", "<object", "<embed", "<link",
                    "onerror", "@import", "srcset"):
        assert hostile not in html, hostile
    assert html.index("Итого") < html.index('class="dd-footer"'), "the footer follows the body"
    assert bait_server.requests == []


@pytest.mark.browser
def test_html_export_loads_nothing_in_a_browser(page, bait_server, bait_file):
    html = standalone_html(hostile_page(bait_server, bait_file), company_images({"logo": ("image/png", LOGO_PNG)}))
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.set_content(html, wait_until="load")

    assert page.locator("h1").inner_text() == "Счёт на оплату № 7"
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert page.evaluate("document.images.length") == 2
    assert [url for url in requested if not url.startswith("data:")] == []
    assert bait_server.requests == []


def test_html_export_cleans_what_hides_from_a_simple_check():
    page = ('<p>x</p><svg><style><x>@import url(http://evil.test/a.css)</x></style>'
            '<a href="javascript:alert(1)"><text>t</text></a><rect fill="u\\72l(http://evil.test/f)"/></svg>'
            '<a href=" java\tscript:alert(1)">j</a><a href="https://example.com/">ok</a>'
            '<math><mi href="javascript:alert(1)">m</mi></math>'
            '<style>p { color: red }</style><style>q::after { content: "</style><script>alert(1)</script>" }</style>')
    html = standalone_html(page, company_images({}))

    assert "evil.test" not in html and "javascript" not in html.lower() and "<script" not in html
    assert '<a href="https://example.com/">ok</a>' in html and "p { color: red }" in html


def test_a_source_that_names_a_file_is_not_read(bait_file):
    # tinyhtml5 reads a short string that is a file's path as that file.
    assert MARKER not in standalone_html(str(bait_file), company_images({}))
    assert MARKER.encode() not in b"".join(parts_of(docx_bytes(str(bait_file), company_images({}))).values())


# --- the DOCX export -----------------------------------------------------------------------

def test_docx_export_keeps_text_tables_and_our_images_only(bait_server, bait_file):
    image = company_images({"logo": ("image/png", LOGO_PNG)})
    data = docx_bytes(hostile_page(bait_server, bait_file), image)
    document = docx.Document(io.BytesIO(data))

    text = "\n".join(paragraph.text for paragraph in document.paragraphs)
    assert "Счёт на оплату № 7" in text and "Покупатель: ООО «Лютик»" in text
    assert "สวัสดีครับ" in text and "مرحبا بالعالم" in text and "Оплатить до 31.12." in text
    items = document.tables[0]
    assert [cell.text for cell in items.rows[0].cells] == ["№", "Наименование", "Сумма"]
    assert [cell.text for cell in items.rows[1].cells] == ["1", "Стул офисный", "1 500,00 ₽"]
    assert items.rows[2].cells[1].text.strip() == "Стол письменный"
    assert [cell.text for cell in items.rows[3].cells] == ["Итого", "Итого", "8 750,00 ₽"]  # colspan
    assert document.tables[1].rows[0].cells[0].text == "фон"

    section = document.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)
    assert (round(section.left_margin.mm), round(section.top_margin.mm)) == (25, 20)
    assert "ООО «Ромашка»" in section.header.paragraphs[0].text
    assert "Страница" in section.footer.paragraphs[0].text
    assert 'w:instr="PAGE"' in section.footer._element.xml
    assert document.core_properties.title == "Счёт № 7" and document.core_properties.language == "ru"

    parts = parts_of(data)
    media = sorted(content for name, content in parts.items() if name.startswith("word/media/"))
    assert media == sorted([INLINE_PNG, LOGO_PNG])
    assert not any(MARKER.encode() in content for content in [data, *parts.values()])
    assert not any(b"169.254" in content or b"passwd" in content for content in parts.values())
    assert "docProps/thumbnail.jpeg" not in parts
    assert bait_server.requests == []
    assert image.calls == ["logo"]


def test_the_bait_catches_plain_htmldocx(bait_server, bait_file):
    """The traps work: htmldocx left alone fetches the URL and opens the file."""
    unsafe = HtmlToDocx().parse_html_string(
        f'<img src="http://127.0.0.1:{bait_server.server_port}/img.png"><img src="{bait_file}">')
    out = io.BytesIO()
    unsafe.save(out)

    assert bait_server.requests == ["/img.png"]
    assert any(MARKER.encode() in content for content in parts_of(out.getvalue()).values())


def test_docx_images_inside_nested_table_cells_are_checked_too(bait_server, bait_file):
    bait = f"http://127.0.0.1:{bait_server.server_port}"
    page = (f'<table><tr><td><table><tr><td>внутри <img src="{bait}/nested.png"><img src="{bait_file}">'
            f'<img src="dealdocs:logo"></td></tr></table></td></tr></table>')
    data = docx_bytes(page, company_images({"logo": ("image/png", LOGO_PNG)}))

    parts = parts_of(data)
    assert [content for name, content in parts.items() if name.startswith("word/media/")] == [LOGO_PNG]
    assert not any(MARKER.encode() in content for content in parts.values())
    assert bait_server.requests == []


def test_docx_survives_markup_htmldocx_stops_on():
    page = ('<br>first<div style="color: #fff; margin-left: auto; background: url(data:x)">'
            '<a name="top">anchor</a> <a href="#top">up</a> <a href="file:///etc/passwd">local</a></div>'
            '<div>Итого:\n   <b>5</b></div><table><tr><td>1</td></tr><tr><td>2</td><td>3</td></tr></table>'
            '<img src="data:image/png;base64,AAAA"><img src="dealdocs:missing">')
    document = docx.Document(io.BytesIO(docx_bytes(page, company_images({}))))

    text = [paragraph.text for paragraph in document.paragraphs]
    assert "anchor up local" in text and "Итого: 5" in text
    assert [cell.text for cell in document.tables[0].rows[1].cells] == ["2", "3"]
    assert not any("passwd" in rel.target_ref for rel in document.part.rels.values())


# --- limits and isolation ------------------------------------------------------------------

def test_pages_over_five_megabytes_are_refused():
    page = "<p>" + "я" * (exports.MAX_HTML_BYTES // 2) + "</p>"  # 2 bytes each in UTF-8
    for export in (standalone_html, docx_bytes):
        with pytest.raises(ValueError, match="larger than 5 MB"):
            export(page, company_images({}))


def test_data_images_are_decoded_only_up_to_the_limit(monkeypatch):
    big, small = png("white", (200, 200)), png("black", (1, 1))
    monkeypatch.setattr(exports, "MAX_DATA_URI_BYTES", len(small))
    page = "".join(f'<img src="data:image/png;base64,{base64.b64encode(image).decode()}">' for image in (big, small))

    media = [content for name, content in parts_of(docx_bytes(page, company_images({}))).items()
             if name.startswith("word/media/")]
    assert media == [small]


def test_our_images_are_looked_up_once_and_used_a_bounded_number_of_times():
    image = company_images({"logo": ("image/png", LOGO_PNG), "script": ("text/html", b"<script>")})
    html = standalone_html('<img src="dealdocs:logo">' * 3 + '<img src="dealdocs:script"><img src="dealdocs:../x">',
                           image)
    assert html.count("data:image/png") == 3 and "text/html" not in html
    assert image.calls == ["logo", "script"]

    too_many = '<img src="dealdocs:logo">' * (exports.MAX_COMPANY_IMAGE_USES + 1)
    for export in (standalone_html, docx_bytes):
        with pytest.raises(ExportRefused, match="more than 20 times"):
            export(too_many, company_images({"logo": ("image/png", LOGO_PNG)}))


def test_deep_nesting_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="nested more than"):
        docx_bytes("<div>" * 500 + "x", company_images({}))
    with pytest.raises(ValueError, match="tables nested more than"):
        docx_bytes("<table><tr><td>" * 10 + "x", company_images({}))


def test_each_company_gets_only_its_own_images():
    """The export knows no tenant: our images come only from the lookup the caller passes for the
    document's company, so company A's page never shows company B's logo."""
    a_logo, b_logo = png("orange"), png("purple")
    page = '<img src="dealdocs:logo">'
    a_export = standalone_html(page, company_images({"logo": ("image/png", a_logo)}))
    b_export = docx_bytes(page, company_images({"logo": ("image/png", b_logo)}))

    assert base64.b64encode(a_logo).decode() in a_export and base64.b64encode(b_logo).decode() not in a_export
    media = [content for name, content in parts_of(b_export).items() if name.startswith("word/media/")]
    assert media == [b_logo]


def test_css_nested_too_deep_to_check_is_dropped():
    page = f'<p style="color: red; {"(" * 5000}">x</p><style>{"{" * 5000}</style><p>y</p>'
    html = standalone_html(page, company_images({}))
    document = docx.Document(io.BytesIO(docx_bytes(page, company_images({}))))

    assert "(((" not in html and "{{{" not in html and "<p>y</p>" in html
    assert [paragraph.text for paragraph in document.paragraphs] == ["x", "y"]
