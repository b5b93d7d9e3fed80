"""CRM settings pages (owner and administrators): pipelines, fields, lists, access, departments."""
from flask import Blueprint

bp = Blueprint("crm_admin", __name__)
