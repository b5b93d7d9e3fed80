"""Moving records along: the deal board, stage moves, and lead conversion."""
from flask import Blueprint

bp = Blueprint("crm_flow", __name__)
