"""Imports every model module so both metadatas are complete (provisioning builds from them)."""
from tenants.models import PooledSchema, Tenant  # noqa: F401
from saas.auth.models import ApiToken, Invitation, Membership, User  # noqa: F401
from saas.settings.models import CompanySetting  # noqa: F401
from saas.crm.models import *  # noqa: F401,F403
from saas.documents.models import Document, DocumentType, Version  # noqa: F401
from storage.ledger import LedgerRow, Reservation  # noqa: F401
from billing.models import StripeEvent, Subscription  # noqa: F401
