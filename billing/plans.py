"""The plan catalogue: what each plan allows. (Prices and subscriptions arrive with billing.)"""
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class Plan:
    key: str
    name: object
    storage_per_company: int | None = None  # bytes for the whole company
    storage_per_user: int | None = None  # bytes per active user
    max_file_bytes: int = 2 * GB

    def storage_limit(self, active_users: int) -> int | None:
        """Bytes the company may store; None is unlimited."""
        if self.storage_per_company is not None:
            return self.storage_per_company
        if self.storage_per_user is not None:
            return self.storage_per_user * max(active_users, 1)
        return None


PLANS = {
    "free": Plan("free", _l("Free"), storage_per_company=200 * MB),
    "standard": Plan("standard", _l("Standard"), storage_per_user=500 * MB),
    "extended": Plan("extended", _l("Extended")),
}


def plan_of(key: str | None) -> Plan:
    return PLANS.get(key or "free", PLANS["free"])
