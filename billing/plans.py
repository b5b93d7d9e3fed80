"""The plan catalogue: what each plan allows and costs. Every part of the product reads it here.

Limits and prices are configuration (environment variables read by saas.config); the keys
and the shape of each plan are code.
"""
from dataclasses import dataclass
from decimal import Decimal

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l

MB = 1024 * 1024
GB = 1024 * MB
KEYS = ("free", "standard", "extended")
NAMES = {"free": _l("Free"), "standard": _l("Standard"), "extended": _l("Extended")}

# Used when no app is configured (the defaults of saas.config, restated for scripts).
DEFAULTS = {
    "PLAN_FREE_STORAGE_MB": 200,
    "PLAN_STANDARD_STORAGE_MB_PER_USER": 500,
    "PLAN_STANDARD_PRICE": "9.00",
    "PLAN_EXTENDED_PRICE": "15.00",
    "BILLING_CURRENCY": "usd",
    "MAX_FILE_BYTES": 2 * GB,
}


@dataclass(frozen=True)
class Plan:
    key: str
    name: object
    storage_per_company: int | None = None  # bytes for the whole company
    storage_per_user: int | None = None  # bytes per active user
    price_per_user: Decimal | None = None  # per user per month, in `currency`; None is free
    currency: str = "usd"
    max_file_bytes: int = 2 * GB

    @property
    def paid(self) -> bool:
        return self.price_per_user is not None

    @property
    def rank(self) -> int:
        """Free < Standard < Extended: a higher rank is an upgrade."""
        return KEYS.index(self.key)

    def storage_limit(self, active_users: int) -> int | None:
        """Bytes the company may store; None is unlimited."""
        if self.storage_per_company is not None:
            return self.storage_per_company
        if self.storage_per_user is not None:
            return self.storage_per_user * max(active_users, 1)
        return None

    def monthly_price(self, seats: int) -> Decimal:
        return (self.price_per_user or Decimal(0)) * max(seats, 1) if self.paid else Decimal(0)


def _setting(name: str):
    if has_app_context() and name in current_app.config:
        return current_app.config[name]
    return DEFAULTS[name]


def catalogue() -> dict[str, Plan]:
    """The three plans, with today's configured limits and prices."""
    currency = str(_setting("BILLING_CURRENCY")).lower()
    max_file = int(_setting("MAX_FILE_BYTES"))
    return {
        "free": Plan("free", NAMES["free"], storage_per_company=int(_setting("PLAN_FREE_STORAGE_MB")) * MB,
                     currency=currency, max_file_bytes=max_file),
        "standard": Plan("standard", NAMES["standard"],
                         storage_per_user=int(_setting("PLAN_STANDARD_STORAGE_MB_PER_USER")) * MB,
                         price_per_user=Decimal(str(_setting("PLAN_STANDARD_PRICE"))), currency=currency,
                         max_file_bytes=max_file),
        "extended": Plan("extended", NAMES["extended"], price_per_user=Decimal(str(_setting("PLAN_EXTENDED_PRICE"))),
                         currency=currency, max_file_bytes=max_file),
    }


def plan_of(key: str | None) -> Plan:
    plans = catalogue()
    return plans.get(key or "free", plans["free"])
