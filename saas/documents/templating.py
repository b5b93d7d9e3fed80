"""Templates as Jinja2 in a sandbox: the environment, its filters, the check on save, rendering.

A template is written by a company's managers and filled with a context of primitives (see
context.py): never ORM objects, so there is nothing behind a placeholder but data. The sandbox
refuses Python internals (`''.__class__`), ranges and repetitions past a size, output past
MAX_HTML_BYTES and rendering past RENDER_SECONDS (a loop with no end is stopped with a clear
error, wherever it spins).
"""
import operator
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from babel.dates import format_date as babel_date
from babel.numbers import format_currency, format_decimal
from flask_babel import lazy_gettext as _l
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes, pass_context
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape
from num2words import num2words

from saas.errors import Invalid

from .models import TemplateContent

RENDER_SECONDS = 5.0  # the Jinja part; WeasyPrint has the job's timeout
MAX_HTML_BYTES = 5 * 1024 * 1024
MAX_SEQUENCE = 100_000  # longest string or list a template may build with `*`
PAGE_SIZES = ("A4", "A5", "A3", "Letter", "Legal")
LANGUAGES = {"en": "English", "ru": "Русский"}
PARTS = ("header_html", "body_html", "footer_html")
PART_LABELS = {"header_html": _l("Header"), "body_html": _l("Body"), "footer_html": _l("Footer")}


class TemplateProblem(Invalid):
    """A template that cannot make a document: where (part, line) and why, in words a person can act on."""

    code = "template_error"

    def __init__(self, message, part: str = "body_html", line: int | None = None):
        where = PART_LABELS.get(part, part)
        text = _l("%(part)s, line %(line)d: %(message)s", part=where, line=line, message=message) if line \
            else _l("%(part)s: %(message)s", part=where, message=message)
        super().__init__(text, field=part)
        self.part, self.line, self.reason = part, line, message


# --- filters -------------------------------------------------------------------------------

def _decimal(value) -> Decimal:
    if value in (None, ""):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise TemplateError(f"{value!r} is not a number")


def _language(context) -> str:
    return context.get("language", "en")


@pass_context
def money(context, value, currency: str | None = None) -> str:
    """1 234,50 ₽ or $1,234.50: the amount in the template's language, in the deal's currency by default."""
    return format_currency(_decimal(value), (currency or context.get("currency") or "USD").upper(),
                           locale=_language(context))


@pass_context
def number(context, value, digits: int | None = None) -> str:
    amount = _decimal(value)
    if digits is not None:
        amount = round(amount, int(digits))
    return format_decimal(amount, locale=_language(context))


@pass_context
def format_date(context, value, style: str = "long") -> str:
    """A date (or an ISO date string) as "5 December 2026" / "5 декабря 2026 г."; style short, medium,
    long or a CLDR pattern such as "dd.MM.yyyy"."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            raise TemplateError(f"{value!r} is not a date")
    if isinstance(value, datetime):
        value = value.date()
    return babel_date(value, format=style, locale=_language(context))


@pass_context
def in_words(context, value, currency: str | None = None) -> str:
    """The amount in words, with the currency's units when num2words knows them
    (“one hundred twenty dollars, fifty cents”, «сто двадцать рублей 50 копеек»)."""
    amount, language = _decimal(value), _language(context)
    currency = (currency or context.get("currency") or "").upper()
    if currency:
        try:
            return num2words(amount, lang=language, to="currency", currency=currency)
        except NotImplementedError:
            pass
    return num2words(amount, lang=language)


FILTERS = {"money": money, "number": number, "date": format_date, "in_words": in_words}


# --- the sandbox ---------------------------------------------------------------------------

class DocumentSandbox(SandboxedEnvironment):
    """Jinja's sandbox, plus limits on what `*` and `**` may build (a gigabyte string is one line)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator_name, left, right):
        if operator_name == "**" and abs(_number_or_zero(right)) > 100:
            raise SecurityError("the exponent is too large")
        if operator_name == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(times, int) \
                        and len(sequence) * times > MAX_SEQUENCE:
                    raise SecurityError("the repeated text or list would be too long")
        return {"*": operator.mul, "**": operator.pow}[operator_name](left, right)


def _number_or_zero(value) -> float:
    return value if isinstance(value, (int, float, Decimal)) else 0


_ENVIRONMENTS: dict[str, DocumentSandbox] = {}


def environment() -> DocumentSandbox:
    """One sandbox per process (filters take the language from the context)."""
    if "env" not in _ENVIRONMENTS:
        env = DocumentSandbox(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        env.filters.update(FILTERS)
        env.globals.clear()  # no range()/dict()/lipsum()/cycler: templates loop over what the context has
        env.globals["range"] = _bounded_range
        _ENVIRONMENTS["env"] = env
    return _ENVIRONMENTS["env"]


def _bounded_range(*args):
    result = range(*args)
    if len(result) > 1000:
        raise SecurityError("range() is limited to 1000 items in a template")
    return result


# --- checking on save ----------------------------------------------------------------------

def check(content: TemplateContent, known: dict) -> None:
    """Raise TemplateProblem for the first syntax error, unknown filter or unknown placeholder,
    with its part and line. `known` maps each top-level name to the set of its attributes
    (an empty set: any attribute, or none)."""
    env = environment()
    for part in PARTS:
        source = getattr(content, part) or ""
        try:
            tree = env.parse(source)
            env.compile(source)  # unknown filters and tests are found here, with their line
        except TemplateSyntaxError as error:
            raise TemplateProblem(_plain(error.message), part, error.lineno)
        _check_names(tree, known, part)


def _plain(message: str | None) -> str:
    return (message or "").replace("\n", " ")


def _check_names(tree, known: dict, part: str) -> None:
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in known and node.name not in assigned \
                and node.name not in ("loop", "range", "true", "false", "none", "True", "False", "None"):
            raise TemplateProblem(_l("unknown placeholder “%(name)s”", name=node.name), part, node.lineno)
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name in known and node.node.name not in assigned:
            fields = known[node.node.name]
            if fields and node.attr not in fields:
                raise TemplateProblem(_l("unknown placeholder “%(name)s”", name=f"{node.node.name}.{node.attr}"),
                                      part, node.lineno)


# --- rendering -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Rendered:
    header: str
    body: str
    footer: str


def render(content: TemplateContent, context: dict) -> Rendered:
    """The three parts filled in; TemplateProblem (with part and line) when the template fails."""
    return Rendered(*(_render_part(content, part, context) for part in PARTS))


def _render_part(content: TemplateContent, part: str, context: dict) -> str:
    source = getattr(content, part) or ""
    env = environment()
    try:
        template = env.from_string(source)
    except TemplateSyntaxError as error:
        raise TemplateProblem(_plain(error.message), part, error.lineno)
    chunks, size = [], 0
    try:
        with _deadline(RENDER_SECONDS):
            for chunk in template.generate(context):
                size += len(chunk)
                if size > MAX_HTML_BYTES:
                    raise TemplateProblem(_l("the document would be longer than %(mb)d MB of HTML.",
                                             mb=MAX_HTML_BYTES // 2 ** 20), part, _template_line())
                chunks.append(chunk)
    except TemplateProblem:
        raise
    except _TooSlow:
        raise TemplateProblem(_l("filling the template took longer than %(seconds)d seconds; is there a loop "
                                 "that never ends?", seconds=RENDER_SECONDS), part, _template_line())
    except SecurityError as error:
        raise TemplateProblem(_l("not allowed in a template (%(reason)s).", reason=_short(error)), part,
                              _template_line())
    except UndefinedError as error:
        raise TemplateProblem(_l("%(reason)s — this record has no such value.", reason=_short(error)), part,
                              _template_line())
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError, OverflowError,
            RecursionError, MemoryError) as error:
        raise TemplateProblem(_short(error), part, _template_line())
    return "".join(chunks)


def _short(error: BaseException) -> str:
    return _plain(str(error))[:300] or type(error).__name__


_TEMPLATE_FILE = "<template>"


def _template_line() -> int | None:
    """The template line being rendered when the current exception was raised (Jinja maps its
    frames back to the template's lines)."""
    tb, line = sys.exc_info()[2], None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class _TooSlow(Exception):
    pass


class _deadline:
    """Stops the rendering thread at a deadline, wherever it is looping (even a loop that calls
    nothing and prints nothing), by tracing the template's own frames only.

    A signal would do it with less overhead, but RQ's job timeout already owns SIGALRM."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        self.until = time.monotonic() + self.seconds
        self.previous = sys.gettrace()
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc):
        sys.settrace(self.previous)
        return False

    def _global(self, frame, event, arg):
        # Only the compiled template's frames are traced line by line.
        return self._local if frame.f_code.co_filename == _TEMPLATE_FILE else None

    def _local(self, frame, event, arg):
        if time.monotonic() > self.until:
            raise _TooSlow()
        return self._local


# --- the page ------------------------------------------------------------------------------

def page_html(content: TemplateContent, rendered: Rendered, title: str) -> str:
    """The whole HTML page WeasyPrint turns into the PDF: page size and margins, the header and
    footer repeated on every page (CSS running elements), the body."""
    css = PAGE_CSS % {"size": content.page_size if content.page_size in PAGE_SIZES else "A4",
                      "top": content.margin_top, "right": content.margin_right, "bottom": content.margin_bottom,
                      "left": content.margin_left}
    return (f'<!doctype html><html lang="{escape(content.language)}"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{css}</style></head><body>"
            f'<div class="dd-header">{rendered.header}</div><div class="dd-footer">{rendered.footer}</div>'
            f"{rendered.body}</body></html>")


PAGE_CSS = """
@page { size: %(size)s; margin: %(top)dmm %(right)dmm %(bottom)dmm %(left)dmm;
  @top-center { content: element(dd-header); width: 100%%; vertical-align: bottom; }
  @bottom-center { content: element(dd-footer); width: 100%%; vertical-align: top; } }
.dd-header { position: running(dd-header); }
.dd-footer { position: running(dd-footer); }
.page-number::after { content: counter(page); }
.page-count::after { content: counter(pages); }
html { font-family: "DejaVu Sans", "Loma", sans-serif; font-size: 10pt; line-height: 1.35; }
table { border-collapse: collapse; }
"""

