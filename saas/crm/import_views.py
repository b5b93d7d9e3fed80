"""Import of CSV/XLSX files and export of filtered lists."""
from flask import Blueprint

bp = Blueprint("crm_import", __name__)
