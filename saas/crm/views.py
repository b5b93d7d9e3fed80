"""CRM pages: lists, cards, forms, the stage bar, the deal board and lead conversion."""
from flask import Blueprint

bp = Blueprint("crm", __name__)
