"""Blob storage: bytes under keys, nothing about plans or deals."""
from .backends import BlobStore, S3Store, TooLarge, Written, blob_store_from_url, content_disposition  # noqa: F401
