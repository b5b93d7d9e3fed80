"""REST API v1 for documents: upload to a card, read, change, delete, versions, content, usage."""
from flask import Blueprint

bp = Blueprint("documents_api", __name__, url_prefix="/api/v1")
