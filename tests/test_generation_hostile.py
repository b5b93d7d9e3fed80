"""Templates written to break generation: addresses outside the company (SSRF, local files,
another company's files), sandbox escapes, endless and enormous templates. Each must fail on its
own document with a message that says what and where, fetch nothing, leak nothing, and leave
the worker making the next document."""
import http.server
import io
import threading
import time

import pytest
from pypdf import PdfReader
from sqlalchemy import update

from saas.crm.models import Entity
from saas.documents import doc_templates, services, tasks
from saas.documents.models import DocumentTemplate, Generation, TemplateVersion
from saas.documents.templating import TemplateProblem
from saas.settings import requisites
from tenants.db import db
from tenants.registry import lookup_tenant

from .crm_helpers import acting_as
from .test_generation import (HEAVY, blob_keys, document, drop_queued_jobs, generate, make_deal, make_template,
                              pdf_of, pdf_text, versions_of)


# --- helpers -------------------------------------------------------------------------------

def png(color=(200, 30, 30), size=(4, 3)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def images_in(pdf: bytes) -> list[tuple[int, int]]:
    """(width, height) of every image drawn in the PDF."""
    found = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for item in page["/Resources"].get("/XObject", {}).values():
            item = item.get_object()
            if item.get("/Subtype") == "/Image":
                found.append((int(item["/Width"]), int(item["/Height"])))
    return found


def plant(app, company, body: str, name: str = "Planted") -> int:
    """A template whose body never passed the check on save (written before the check existed,
    or straight into the database): the job and the preview must refuse it all the same."""
    template_id = make_template(app, company, body="<p>placeholder</p>", name=name)
    with acting_as(app, company):
        for model, key in ((DocumentTemplate, DocumentTemplate.id), (TemplateVersion, TemplateVersion.template_id)):
            db.session.execute(update(model).where(key == template_id).values(body_html=body))
    return template_id


def saved_or_planted(app, company, body: str, name: str) -> tuple[int, str | None]:
    """(template id, the check's refusal on save or None): saved when the check lets it through."""
    try:
        return make_template(app, company, body=body, name=name), None
    except TemplateProblem as refused:
        return plant(app, company, body, name), str(refused.message)


def preview_refusal(app, company, template_id: int, deal_id: int) -> str:
    with acting_as(app, company) as owner:
        with pytest.raises(TemplateProblem) as refused:
            doc_templates.preview(lookup_tenant(tenant_id=company.id), owner, doc_templates.get_template(template_id),
                                  deal_id)
        return str(refused.value.message)


def upload(app, company, deal_id: int, content: bytes, filename: str) -> str:
    """The blob key of a file uploaded to the deal."""
    with acting_as(app, company) as owner:
        made = services.upload(lookup_tenant(tenant_id=company.id), Entity.DEAL, deal_id, io.BytesIO(content),
                               filename=filename, size=len(content), actor=owner)
        return made.current.blob_key


def assert_failed(app, company, document_id: int, *expected: str) -> str:
    made = document(app, company, document_id)
    assert made.generation == Generation.FAILED, (made.generation, made.generation_error)
    assert versions_of(app, company, document_id) == []
    for text in expected:
        assert text in made.generation_error, (text, made.generation_error)
    for leak in ("Traceback", "0x7", "<built-in", "root:x:0:0", "jinja2.", "site-packages"):
        assert leak not in made.generation_error, made.generation_error
    return made.generation_error


class Listener(http.server.ThreadingHTTPServer):
    """A real HTTP server on loopback that notes every request it receives (there must be none)."""

    daemon_threads = True

    def __init__(self):
        self.requests = []
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                listener.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/css")
                self.end_headers()
                self.wfile.write(b"body { color: red }")

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.shutdown()
    server.server_close()


# --- addresses -----------------------------------------------------------------------------

def test_addresses_outside_the_company_are_refused_and_nothing_is_fetched(app, make_tenant, run_jobs, listener):
    company = make_tenant()
    deal_id = make_deal(app, company)
    here = listener.url
    svg = ("data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'>"
           f"<image href='{here}/svg-image' width='10' height='10'/></svg>")
    hostile = {
        "metadata image": ('<img src="http://169.254.169.254/latest/meta-data/">', "http://169.254.169.254/latest"),
        "metadata background": ('<div style="background: url(http://169.254.169.254/)">x</div>',
                                "http://169.254.169.254/"),
        "image": (f'<img src="{here}/image.png">', f"{here}/image.png"),
        "background": (f'<div style="background: url({here}/background.png)">x</div>', f"{here}/background.png"),
        "stylesheet": (f'<link rel=stylesheet href="{here}/x.css"><p>x</p>', f"{here}/x.css"),
        "import": (f'<style>@import url("{here}/import.css");</style><p>x</p>', f"{here}/import.css"),
        "font": (f"<style>@font-face {{ font-family: Evil; src: url({here}/evil.ttf) }} p {{ font-family: Evil }}"
                 "</style><p>x</p>", f"{here}/evil.ttf"),
        "image inside an SVG": (f'<img src="{svg}">', f"{here}/svg-image"),
        "inline SVG": (f"<svg width='10' height='10'><image href='{here}/inline-svg' width='10' height='10'/></svg>",
                       f"{here}/inline-svg"),
        "object": (f'<object data="{here}/object"></object>', f"{here}/object"),
        "attachment from the Internet": (f'<link rel="attachment" href="{here}/attachment">', f"{here}/attachment"),
        "passwd image": ('<img src="file:///etc/passwd">', "file:///etc/passwd"),
        "passwd stylesheet": ('<link rel=stylesheet href="file:///etc/passwd"><p>x</p>', "file:///etc/passwd"),
        "passwd attachment": ('<link rel="attachment" href="file:///etc/passwd">', "file:///etc/passwd"),
        "passwd attached link": ('<a rel="attachment" href="file:///etc/passwd">terms</a>', "file:///etc/passwd"),
        "relative passwd image": ('<img src="/etc/passwd">', "/etc/passwd"),
        "relative passwd stylesheet": ('<link rel=stylesheet href="/etc/passwd"><p>x</p>', "/etc/passwd"),
        "relative background": ('<div style="background: url(../../etc/passwd)">x</div>',
                                "background: url(../../etc/passwd)"),
    }
    started = {}
    for name, (body, _asked) in hostile.items():
        template_id = make_template(app, company, body=f"<h1>{{{{ deal.title }}}}</h1>{body}", name=name)
        started[name] = generate(app, company, template_id, deal_id)
    fine = generate(app, company, make_template(app, company), deal_id)
    run_jobs()
    for name, (_body, asked) in hostile.items():
        error = assert_failed(app, company, started[name], "The template asks for", asked)
        assert "Settings → Our company" in error, name  # says what a document may show instead
    assert document(app, company, fine).generation == Generation.READY  # the worker went on
    assert listener.requests == []
    assert len(blob_keys(app, company)) == 1  # only the good one is stored


def test_a_template_shows_the_companys_own_images_and_never_anothers(app, make_tenant, run_jobs):
    ours, theirs = make_tenant(name="Ours"), make_tenant(name="Theirs")
    our_deal, their_deal = make_deal(app, ours), make_deal(app, theirs)
    our_key = upload(app, ours, our_deal, png(size=(4, 3)), "stamp.png")
    our_pdf_key = upload(app, ours, our_deal, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
                         "scan.pdf")
    their_key = upload(app, theirs, their_deal, png(color=(0, 0, 255), size=(7, 5)), "their-secret.png")
    with acting_as(app, ours) as owner:
        requisites.save_image(owner, "logo", png(color=(0, 128, 0), size=(6, 2)))
    our_prefix, their_blob = our_key.rsplit("/", 1)[0], their_key.rsplit("/", 1)[1]

    def make(body, name):
        return generate(app, ours, make_template(app, ours, body=body, name=name), our_deal)

    own = make(f'<p>{{{{ deal.title }}}}</p><img src="blob:{our_key}"><img src="{{{{ our.logo }}}}">', "own")
    refused = {
        "their key": (make(f'<img src="blob:{their_key}">', "theirs"), f"blob:{their_key}"),
        "their blob under our prefix": (make(f'<img src="blob:{our_prefix}/{their_blob}">', "moved"),
                                        f"blob:{our_prefix}/{their_blob}"),
        "climbing out of our prefix": (make(f'<img src="blob:{our_prefix}/../{their_key}">', "dots"),
                                       "blob:"),
        "our PDF as an image": (make(f'<img src="blob:{our_pdf_key}">', "pdf"), f"blob:{our_pdf_key}"),
        "an image we do not have": (make('<img src="dealdocs:../../etc/passwd">', "dealdocs"), "dealdocs:"),
    }
    run_jobs()
    made = document(app, ours, own)
    assert made.generation == Generation.READY, made.generation_error
    assert sorted(images_in(pdf_of(app, ours, own))) == [(4, 3), (6, 2)]  # our stamp and our logo
    for name, (document_id, asked) in refused.items():
        assert_failed(app, ours, document_id, "The template asks for", asked)
    assert their_key in blob_keys(app, theirs) and their_key not in blob_keys(app, ours)


# --- the sandbox ---------------------------------------------------------------------------

ESCAPES = {  # body → what the message says
    "{{ ''.__class__.__mro__ }}": "not allowed in a template",
    "{{ self.__init__.__globals__ }}": "not allowed in a template",
    "{{ deal.__class__ }}": "not allowed in a template",
    "{{ deal|attr('__class__') }}": "not allowed in a template",
    "{{ '{0.__class__}'.format(deal) }}": "not allowed in a template",
    "{{ items.append }}": "not allowed in a template",
    "{{ items.append(deal) }}{{ items|length }}": "not allowed in a template",
    "{{ deal.update({'title': 'changed'}) }}": "not allowed in a template",
    "{{ (2).to_bytes(10**9, 'big') }}": "not allowed in a template",
    "{{ lipsum.__globals__ }}": "'lipsum' is undefined",
    "{{ cycler.__init__ }}": "line 1",
    "{% set x = namespace() %}{{ x }}": "'namespace' is undefined",
    "{{ config }}": "'config' is undefined",
    "{{ request.environ }}": "'request' is undefined",
    "{{ url_for('static', filename='x') }}": "'url_for' is undefined",
}


def test_sandbox_escapes_are_refused_on_save_in_the_preview_and_in_the_job(app, make_tenant, run_jobs):
    company = make_tenant()
    deal_id = make_deal(app, company)
    started, refused_on_save = {}, {}
    for n, (body, expected) in enumerate(ESCAPES.items()):
        template_id, refusal = saved_or_planted(app, company, f"<p>Deal</p>{body}", f"escape {n}")
        if refusal:
            refused_on_save[body] = refusal
        preview = preview_refusal(app, company, template_id, deal_id)
        assert "Body, line 1:" in preview, (body, preview)
        started[body] = generate(app, company, template_id, deal_id)
    fine = generate(app, company, make_template(app, company), deal_id)
    run_jobs()
    for body, expected in ESCAPES.items():
        assert_failed(app, company, started[body], "Body, line 1:", expected)
    # Names the context does not have are caught already when the template is saved.
    assert refused_on_save["{{ config }}"] == "Body, line 1: unknown placeholder “config”"
    assert refused_on_save["{{ self.__init__.__globals__ }}"] == "Body, line 1: unknown placeholder “self”"
    assert refused_on_save["{{ deal.__class__ }}"] == "Body, line 1: unknown placeholder “deal.__class__”"
    made = document(app, company, fine)
    assert made.generation == Generation.READY, made.generation_error
    assert "Item 1" in pdf_text(pdf_of(app, company, fine))  # nobody changed the deal's lines


# --- endless and enormous ------------------------------------------------------------------

DOUBLING = "{% set a = 'x' * 100000 %}" + "{% set a = a ~ a %}" * 30 + "{{ a|length }}"
BOMBS = {  # body → what the message says
    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}"
    "{% endfor %}": "took longer than 5 seconds",
    "{% for a in range(1000) %}{% for b in range(1000) %}<p>{{ deal.title * 1000 }}</p>{% endfor %}"
    "{% endfor %}": "longer than 5 MB of HTML",
    "{{ 'x' * 10**9 }}": "too long",
    "{{ ['x' * 100000] * 100000 }}": "too long",
    "{{ 10 ** (10 ** 10) }}": "too large",
    "{{ (10 ** 100) ** 100 }}": "too large",
    "{{ '%999999999s' % deal.title }}": "padded too wide",
    "{{ ('x' * 100000)|replace('x', 'x' * 100000) }}": "too long",
    "{{ deal.title|center(10**9) }}": "No filter named 'center'",
    "{% macro again(n) %}{{ again(n + 1) }}{% endmacro %}{{ again(1) }}": "calls itself too many times",
    DOUBLING: "more than 256 MB of memory",
    "{{ " + "(" * 200 + "1" + ")" * 200 + " }}": "too many brackets",
}


def test_endless_and_enormous_templates_fail_within_seconds_and_the_worker_goes_on(app, make_tenant, run_jobs):
    company = make_tenant()
    deal_id = make_deal(app, company)
    started = {body: generate(app, company, saved_or_planted(app, company, body, f"bomb {n}")[0], deal_id)
               for n, body in enumerate(BOMBS)}
    # Jinja's ** binds to the left: this is (10**10)**10, a harmless 101-digit number.
    harmless = generate(app, company, make_template(app, company, body="<p>{{ 10**10**10 }}</p>"), deal_id)
    fine = generate(app, company, make_template(app, company), deal_id)
    began = time.monotonic()
    run_jobs()
    assert time.monotonic() - began < 60
    for body, expected in BOMBS.items():
        assert_failed(app, company, started[body], "Body", expected)
    for document_id in (harmless, fine):
        made = document(app, company, document_id)
        assert made.generation == Generation.READY, made.generation_error
    assert "1" + "0" * 100 in pdf_text(pdf_of(app, company, harmless)).replace(" ", "")
    first = next(iter(BOMBS))
    assert "Body, line 1:" in document(app, company, started[first]).generation_error


def test_a_job_past_its_time_limit_fails_saying_so_and_the_worker_takes_the_next(app, make_tenant, run_jobs):
    from saas.jobs import queue

    company = make_tenant()
    deal_id = make_deal(app, company)
    slow = generate(app, company, make_template(app, company, name="Heavy", body=HEAVY), deal_id)
    drop_queued_jobs(app, company, slow)
    with app.app_context():  # the same job, with one second instead of JOB_TIMEOUT
        queue().enqueue(tasks.generate_document, slow, "en", job_timeout=1, meta={"tenant_id": company.id})
    fine = generate(app, company, make_template(app, company), deal_id)
    run_jobs()
    assert_failed(app, company, slow, "took longer than 120 seconds", "Make the template lighter")
    assert document(app, company, fine).generation == Generation.READY


def test_a_template_that_fails_on_line_n_says_line_n(app, make_tenant, run_jobs):
    company = make_tenant()
    deal_id = make_deal(app, company)
    body = "<h1>Contract {{ number }}</h1>\n<p>{{ deal.title }}</p>\n<p>Total: {{ deal.title|number }}</p>\n"
    in_body = generate(app, company, make_template(app, company, body=body), deal_id)
    in_header = generate(app, company, make_template(app, company, header_html="<p>ok</p>\n{{ deal.title|money }}"),
                         deal_id)
    syntax = generate(app, company, plant(app, company, "<p>ok</p>\n<p>\n{% for item in items %}{{ item.name }}"),
                      deal_id)
    with pytest.raises(TemplateProblem) as on_save:
        make_template(app, company, body="<p>ok</p>\n<p>\n{% for item in items %}{{ item.name }}")
    assert on_save.value.line == 3 and on_save.value.part == "body_html"
    run_jobs()
    assert_failed(app, company, in_body, "Body, line 3: 'Boiler delivery' is not a number")
    assert_failed(app, company, in_header, "Header, line 2: 'Boiler delivery' is not a number")
    assert_failed(app, company, syntax, "Body, line 3:")
    # A template that fails consumes no number: the next document still gets the first one.
    assert document(app, company, in_body).number is None


def test_the_tighter_sandbox_still_fills_ordinary_templates(app, make_tenant):
    company = make_tenant()
    deal_id = make_deal(app, company)
    body = ("<p>{{ deal.title|upper }} / {{ deal.title.lower() }}</p>"
            "<p>{{ items|map(attribute='name')|join(', ') }} / {{ items|length }} / {{ (items|first).name }}</p>"
            "<p>{{ company.name|replace('LLC', 'Ltd') }} / {{ '%05.1f'|format(3.14159) }} / {{ '%s-%d' % ('n', 7) }}"
            " / {{ 7 % 3 }} / {{ 2 ** 10 }} / {{ 'ab' * 3 }} / {{ (range(3)|list) * 2 }}</p>"
            "{% macro line(item) %}<li>{{ item.position }}. {{ item.name }}</li>{% endmacro %}"
            "<ul>{% for item in items|sort(attribute='name', reverse=true) %}{{ line(item) }}{% endfor %}</ul>"
            "<p>{{ ('<b>safe</b>'|safe)|replace('safe', 'bold') }} {{ '<i>' }}</p>")
    template_id = make_template(app, company, body=body)
    with acting_as(app, company) as owner:
        page = doc_templates.preview(lookup_tenant(tenant_id=company.id), owner,
                                     doc_templates.get_template(template_id), deal_id)
    assert "<p>BOILER DELIVERY / boiler delivery</p>" in page
    assert "<p>Item 1, Item 2 / 2 / Item 1</p>" in page
    assert "<p>Northwind Ltd / 003.1 / n-7 / 1 / 1024 / ababab / [0, 1, 2, 0, 1, 2]</p>" in page
    assert "<ul><li>2. Item 2</li><li>1. Item 1</li></ul>" in page
    assert "<p><b>bold</b> &lt;i&gt;</p>" in page
