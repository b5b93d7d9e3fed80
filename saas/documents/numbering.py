"""Document numbers: one counter per document type and company, with a pattern such as
`CT-{YYYY}-{####}`.

A number is taken with one `INSERT … ON CONFLICT DO UPDATE … RETURNING` on the counter's row,
in the transaction that writes it on the document: concurrent takers queue on the row lock, a
rolled-back transaction gives its number back, so numbers are unique and have no gaps. With a
year in the pattern, numbering starts again at 1 each year.
"""
import re
from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, select
from sqlalchemy.dialects.postgresql import insert

from saas.crm.access import require_manager
from saas.errors import Invalid
from tenants.db import db

from .models import NumberCounter

DOCUMENT_TYPES = {"proposal": _l("Commercial proposal"), "contract": _l("Contract"), "invoice": _l("Invoice"),
                  "act": _l("Act"), "letter": _l("Letter"), "other": _l("Other")}
DEFAULT_PATTERNS = {"proposal": "CP-{YYYY}-{####}", "contract": "CT-{YYYY}-{####}", "invoice": "INV-{YYYY}-{####}",
                    "act": "ACT-{YYYY}-{####}", "letter": "L-{YYYY}-{####}", "other": "D-{YYYY}-{####}"}
_TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|#+)\}")


def period_of(pattern: str, today: date) -> str:
    """The span one run of numbers covers: the year when the pattern shows one, else forever."""
    return str(today.year) if "{YYYY}" in pattern or "{YY}" in pattern else ""


def format_number(pattern: str, value: int, today: date) -> str:
    def token(match):
        name = match.group(1)
        if name.startswith("#"):
            return str(value).zfill(len(name))
        return {"YYYY": f"{today.year:04d}", "YY": f"{today.year % 100:02d}", "MM": f"{today.month:02d}",
                "DD": f"{today.day:02d}"}[name]
    return _TOKEN.sub(token, pattern)


def check_pattern(pattern: str) -> str:
    pattern = (pattern or "").strip()
    if not pattern or len(pattern) > 60:
        raise Invalid(_l("Give a pattern of at most 60 characters, e.g. CT-{YYYY}-{####}."), field="pattern")
    if not re.search(r"\{#+\}", pattern):
        raise Invalid(_l("The pattern needs {###} where the running number goes, e.g. CT-{YYYY}-{####}."),
                      field="pattern")
    if re.search(r"\{(?!YYYY\}|YY\}|MM\}|DD\}|#+\})", pattern):
        raise Invalid(_l("Only {YYYY}, {YY}, {MM}, {DD} and {###} may stand in braces."), field="pattern")
    return pattern


def peek(document_type: str, today: date) -> str:
    """The number the next document of this type would get (not taken)."""
    return next(c["next_number"] for c in counters(today) if c["document_type"] == document_type)


def take(document_type: str, today: date) -> str:
    """The next number of this document type (its row stays locked until the transaction ends)."""
    pattern = DEFAULT_PATTERNS.get(document_type, DEFAULT_PATTERNS["other"])
    table = NumberCounter.__table__
    statement = insert(table).values(document_type=document_type, pattern=pattern, period=period_of(pattern, today),
                                     last_value=1)
    # The stored pattern decides the period; a new period starts again at 1.
    new_period = _period_sql(table.c.pattern, today)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.document_type],
        set_={"last_value": case((table.c.period == new_period, table.c.last_value + 1), else_=1),
              "period": new_period},
    ).returning(table.c.pattern, table.c.last_value)
    row = db.session.execute(statement).one()
    return format_number(row.pattern, row.last_value, today)


def _period_sql(pattern_column, today: date):
    return case((pattern_column.contains("{YY"), str(today.year)), else_="")


def counters(today: date) -> list[dict]:
    """Every document type's pattern and the number it gives next."""
    stored = {c.document_type: c for c in db.session.scalars(select(NumberCounter))}
    result = []
    for key, label in DOCUMENT_TYPES.items():
        counter = stored.get(key)
        pattern = counter.pattern if counter else DEFAULT_PATTERNS[key]
        same_period = counter is not None and counter.period == period_of(pattern, today)
        next_value = counter.last_value + 1 if same_period else 1
        result.append({"document_type": key, "label": label, "pattern": pattern, "next_value": next_value,
                       "next_number": format_number(pattern, next_value, today)})
    return result


def set_counter(actor, document_type: str, pattern: str, next_value, today: date) -> None:
    """A manager sets the pattern and the next number (e.g. to continue the numbering of another system)."""
    require_manager(actor)
    if document_type not in DOCUMENT_TYPES:
        raise Invalid(_l("Choose a document type."), field="document_type")
    pattern = check_pattern(pattern)
    try:
        next_value = int(next_value)
    except (TypeError, ValueError):
        next_value = 0
    if not 1 <= next_value <= 10 ** 9:
        raise Invalid(_l("The next number is a whole number from 1."), field="next_value")
    values = {"pattern": pattern, "period": period_of(pattern, today), "last_value": next_value - 1}
    db.session.execute(insert(NumberCounter).values(document_type=document_type, **values)
                       .on_conflict_do_update(index_elements=["document_type"], set_=values))
