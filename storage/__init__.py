"""Blob storage: bytes under keys, nothing about plans or deals."""
from .backends import BlobStore, S3Store, blob_store_from_url  # noqa: F401
