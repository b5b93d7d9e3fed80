"""Templates as Jinja2 in a sandbox: the environment, its filters, the check on save, rendering.

A template is written by a company's managers and filled with a context of primitives (see
context.py): never ORM objects, so there is nothing behind a placeholder but data. The sandbox
refuses Python internals (`''.__class__`), changing the context (`items.append`), methods and
filters that could build gigabytes in one step (`'x' * 10**9`, `s|replace(a, b)`, `'%999999999s'`),
output past MAX_HTML_BYTES and rendering past RENDER_SECONDS or RENDER_MEMORY (a loop with no
end, or text doubled again and again, is stopped with a clear error, wherever it spins).
"""
import operator
import re
import resource
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from babel.dates import format_date as babel_date
from babel.numbers import format_currency, format_decimal
from flask_babel import lazy_gettext as _l, lazy_pgettext
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes, pass_context, pass_eval_context
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape
from num2words import num2words

from saas.errors import Invalid

from .models import TemplateContent

RENDER_SECONDS = 5.0  # the Jinja part; WeasyPrint has the job's timeout
MAX_HTML_BYTES = 5 * 1024 * 1024
MAX_SEQUENCE = 100_000  # longest string or list a template may build with `*`, widest `%s` padding
MAX_INT_BITS = 10_000  # ~3000 digits: no amount is longer, and Python prints at most 4300
RENDER_MEMORY = 256 * 2 ** 20  # bytes the process may grow by while a template is filled
PAGE_SIZES = ("A4", "A5", "A3", "Letter", "Legal")
LANGUAGES = {"en": "English", "ru": "Русский"}
PARTS = ("header_html", "body_html", "footer_html")
PART_LABELS = {"header_html": _l("Header"), "body_html": lazy_pgettext("template part", "Body"), "footer_html": _l("Footer")}


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


@pass_eval_context
def _replace(eval_ctx, text, old, new, count=None):
    plain, plain_old = str(text), str(old)
    times = plain.count(plain_old) if plain_old else len(plain) + 1
    if count is not None and count >= 0:
        times = min(times, count)
    _refuse_longer_than(MAX_HTML_BYTES, len(plain) + times * (len(str(new)) - len(plain_old)), "the replaced text")
    return JINJA_FILTERS["replace"](eval_ctx, text, old, new, count)


@pass_eval_context
def _join(eval_ctx, value, d="", attribute=None):
    value = list(value)
    _refuse_longer_than(MAX_HTML_BYTES, _weight(value) + len(value) * len(str(d)), "the joined text")
    return JINJA_FILTERS["join"](eval_ctx, value, d, attribute)


def _format(value, *args, **kwargs):
    _refuse_wide_formats(str(value))
    return JINJA_FILTERS["format"](value, *args, **kwargs)


FILTERS = {"money": money, "number": number, "date": format_date, "in_words": in_words,
           "replace": _replace, "join": _join, "format": _format}
# Jinja's own filters that cannot build much more than they are given (no center, indent, wordwrap,
# batch, slice: one call of those can ask for gigabytes).
SAFE_JINJA_FILTERS = ("abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first",
                      "float", "forceescape", "groupby", "int", "items", "last", "length", "list", "lower", "map",
                      "max", "min", "reject", "rejectattr", "reverse", "round", "safe", "select", "selectattr",
                      "sort", "string", "striptags", "sum", "title", "trim", "truncate", "unique", "upper",
                      "wordcount")
# The methods a template may call on values of the context; the rest (str.center, str.join,
# int.to_bytes, …) could build gigabytes in one call.
SAFE_METHODS = {
    str: {"upper", "lower", "title", "capitalize", "casefold", "swapcase", "strip", "lstrip", "rstrip", "split",
          "rsplit", "splitlines", "partition", "rpartition", "startswith", "endswith", "count", "find", "rfind",
          "removeprefix", "removesuffix", "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper"},
    dict: {"get", "keys", "values", "items"},
    list: {"count", "index"}, tuple: {"count", "index"},
    int: set(), float: set(), Decimal: set(), bool: set(),
}


# --- the sandbox ---------------------------------------------------------------------------

class DocumentSandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox that changes nothing it is given, plus limits on what operators may build (a
    gigabyte string is one line) and on the methods it calls."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context, operator_name, left, right):
        if operator_name == "**":
            _refuse_big_power(left, right)
        elif operator_name == "*":
            _refuse_big_product(left, right)
        elif isinstance(left, str):  # "%": printf-style formatting
            _refuse_wide_formats(left)
        return {"*": operator.mul, "**": operator.pow, "%": operator.mod}[operator_name](left, right)

    def getattr(self, obj, attribute):
        # A key wins over a method of the same name: {{ deal.items }} is the custom field "items".
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value):
        return None  # str.format is not in SAFE_METHODS: `'{:>999999999}'.format(x)` is a gigabyte

    def is_safe_attribute(self, obj, attr, value):
        allowed = next((names for kind, names in SAFE_METHODS.items() if isinstance(obj, kind)), None)
        if allowed is not None and callable(value) and attr not in allowed:
            return False
        return super().is_safe_attribute(obj, attr, value)


def _refuse_longer_than(limit: int, size: int, what: str) -> None:
    if size > limit:
        raise SecurityError(f"{what} would be too long")


def _refuse_big_power(base, exponent) -> None:
    if isinstance(exponent, (int, float, Decimal)) and abs(exponent) > 100:
        raise SecurityError("the exponent is too large")
    if isinstance(base, int) and isinstance(exponent, int) and base.bit_length() * exponent > MAX_INT_BITS:
        raise SecurityError("the number would be too large")


def _refuse_big_product(left, right) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise SecurityError("the number would be too large")
        return
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, (str, list, tuple)) and isinstance(times, int) \
                and _weight(sequence, MAX_SEQUENCE) * times > MAX_SEQUENCE:
            raise SecurityError("the repeated text or list would be too long")


_WIDTHS = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?")


def _refuse_wide_formats(pattern: str) -> None:
    """'%999999999s' % x is a gigabyte: widths and precisions up to MAX_SEQUENCE only."""
    for width in (w for match in _WIDTHS.finditer(pattern) for w in match.groups() if w):
        if width == "*" or int(width) > MAX_SEQUENCE:
            raise SecurityError("the text would be padded too wide")


def _weight(value, enough: int = MAX_HTML_BYTES) -> int:
    """About how many characters `value` prints as (strings inside lists and dicts counted),
    counting no further than past `enough`."""
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, (list, tuple, dict)):
        return 1
    total = len(value)
    for item in (value.items() if isinstance(value, dict) else value):
        total += _weight(item, enough)
        if total > enough:
            break
    return total


_ENVIRONMENTS: dict[str, DocumentSandbox] = {}


def environment() -> DocumentSandbox:
    """One sandbox per process (filters take the language from the context)."""
    if "env" not in _ENVIRONMENTS:
        env = DocumentSandbox(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        env.filters = {name: env.filters[name] for name in SAFE_JINJA_FILTERS} | FILTERS
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
        with _compiling(part):
            tree = env.parse(source)
            env.compile(source)  # unknown filters and tests are found here, with their line
        _check_names(tree, known, part)


@contextmanager
def _compiling(part: str):
    """TemplateProblem for a template Jinja (or Python, compiling what Jinja made of it) cannot read."""
    try:
        yield
    except TemplateSyntaxError as error:
        raise TemplateProblem(_plain(error.message), part, error.lineno)
    except (RecursionError, SyntaxError, MemoryError):
        raise TemplateProblem(_l("too many brackets, operators or blocks inside one another."), part)


def _plain(message: str | None) -> str:
    return (message or "").replace("\n", " ")


# What Jinja itself defines: loops, our bounded range(), constants and, inside a macro, what it was called with.
_JINJA_NAMES = ("loop", "range", "true", "false", "none", "True", "False", "None", "caller", "varargs", "kwargs")


def _check_names(tree, known: dict, part: str) -> None:
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")} | \
        {n.name for n in tree.find_all(nodes.Macro)}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in known and node.name not in assigned \
                and node.name not in _JINJA_NAMES:
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
    with _compiling(part):
        template = env.from_string(source)
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
    except _TooBig:
        raise TemplateProblem(_l("filling the template needed more than %(mb)d MB of memory; does it make a "
                                 "text longer and longer?", mb=RENDER_MEMORY // 2 ** 20), part, _template_line())
    except SecurityError as error:
        raise TemplateProblem(_l("not allowed in a template (%(reason)s).", reason=_short(error)), part,
                              _template_line())
    except UndefinedError as error:
        raise TemplateProblem(_l("%(reason)s — this record has no such value.", reason=_short(error)), part,
                              _template_line())
    except RecursionError:
        raise TemplateProblem(_l("a macro calls itself too many times; does it ever stop?"), part,
                              _template_line())
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError, OverflowError,
            MemoryError) as error:
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


class _TooBig(Exception):
    pass


def _peak_memory() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux counts kilobytes


class _deadline:
    """Stops the rendering thread at a deadline, wherever it is looping (even a loop that calls
    nothing and prints nothing), or once the process has grown by RENDER_MEMORY (a text doubled
    line after line), by tracing the template's own frames only.

    A signal would do it with less overhead, but RQ's job timeout already owns SIGALRM."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        self.until = time.monotonic() + self.seconds
        self.memory_until = _peak_memory() + RENDER_MEMORY
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
        if _peak_memory() > self.memory_until:
            raise _TooBig()
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
/* The editor's live preview is a screen, where running elements and page counters do not exist:
   the footer goes below the body there, and the page shows as 1 of 1. */
@media screen { body { display: flex; flex-direction: column; }
  .dd-footer { order: 1; border-top: 1px dashed #bbb; margin-top: 1em; }
  .page-number::after, .page-count::after { content: "1"; } }
html { font-family: "DejaVu Sans", "Loma", sans-serif; font-size: 10pt; line-height: 1.35; }
table { border-collapse: collapse; }
"""

