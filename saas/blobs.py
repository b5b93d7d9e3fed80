"""The app's blob store, built once from STORAGE_URL."""
from flask import current_app

from storage import blob_store_from_url


def blob_store():
    app = current_app._get_current_object()
    if "dealdocs_blobs" not in app.extensions:
        app.extensions["dealdocs_blobs"] = blob_store_from_url(
            app.config["STORAGE_URL"],
            access_key=app.config["S3_ACCESS_KEY"],
            secret_key=app.config["S3_SECRET_KEY"],
        )
    return app.extensions["dealdocs_blobs"]
