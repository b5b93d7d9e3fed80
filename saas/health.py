"""GET /healthz: 200 when database, Redis and S3 all answer; 503 naming those that do not."""
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from tenants.db import db

bp = Blueprint("health", __name__)


def _database() -> None:
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _redis() -> None:
    from saas.jobs import redis_connection

    redis_connection().ping()


def _s3() -> None:
    from saas.blobs import blob_store

    blob_store().check()


CHECKS = {"database": _database, "redis": _redis, "s3": _s3}


@bp.get("/healthz")
def healthz():
    failing = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure means "not healthy"; the reason helps the operator
            current_app.logger.warning("healthz: %s failed: %s", name, exc)
            failing[name] = type(exc).__name__
    if failing:
        return jsonify(status="unavailable", failing=sorted(failing), errors=failing), 503
    return jsonify(status="ok")
