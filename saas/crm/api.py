"""REST API v1 for CRM records, pipelines and custom field definitions."""
from flask import Blueprint

bp = Blueprint("crm_api", __name__, url_prefix="/api/v1")
