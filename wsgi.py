"""WSGI entry point for production servers, e.g. `waitress-serve wsgi:app`."""
from saas import create_app

app = create_app()
