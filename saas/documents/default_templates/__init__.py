"""The ready templates every company starts with: a commercial proposal, a contract, an invoice,
an act of completed work and a cover letter for a deal, in English and in Russian.

Each body is `<language>/<kind>.html` behind the shared style sheet, with every
`{# include <path> #}` line replaced by that file (the line items table, the parties' requisites
and signatures…): a company gets whole templates it can edit on its own, while here each part is
written once. The header is shared; the footer says "Page N of M" in the template's language.
"""
import re
from pathlib import Path

HERE = Path(__file__).parent
NAMES = {  # document_type: {language: the name people see}
    "proposal": {"en": "Commercial proposal", "ru": "Коммерческое предложение"},
    "contract": {"en": "Contract", "ru": "Договор"},
    "invoice": {"en": "Invoice", "ru": "Счёт на оплату"},
    "act": {"en": "Certificate of completion", "ru": "Акт выполненных работ"},
    "letter": {"en": "Cover letter", "ru": "Сопроводительное письмо"},
}
# Millimetres; the top one holds the header with the logo (16 mm at most).
MARGINS = {"margin_top": 34, "margin_right": 15, "margin_bottom": 20, "margin_left": 20}
_INCLUDE = re.compile(r"^[ \t]*\{#\s*include\s+(\S+)\s*#\}[ \t]*\n?", re.M)


def _read(relative: str) -> str:
    return (HERE / relative).read_text(encoding="utf-8")


def _expanded(relative: str) -> str:
    """The file with each `{# include path #}` line replaced by that file (paths from this folder)."""
    return _INCLUDE.sub(lambda match: _expanded(match.group(1)), _read(relative))


def _template(kind: str, language: str) -> dict:
    return {"name": NAMES[kind][language], "document_type": kind, "applies_to": "deal", "language": language,
            "page_size": "A4", **MARGINS,
            "header_html": _expanded("common/header.html"),
            "footer_html": _expanded(f"{language}/footer.html"),
            "body_html": f"<style>\n{_read('style.css')}</style>\n{_expanded(f'{language}/{kind}.html')}"}


DEFAULTS: list[dict] = [_template(kind, language) for kind in NAMES for language in ("en", "ru")]
