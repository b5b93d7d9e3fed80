"""Document pages: the documents area of cards, uploads, the document card, downloads, usage."""
from flask import Blueprint

bp = Blueprint("documents", __name__)
