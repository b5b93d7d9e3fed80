"""Blob backends behind one interface. S3 (any S3-protocol server) through boto3."""
from typing import BinaryIO, Iterator, Protocol
from urllib.parse import parse_qs, urlparse


class BlobStore(Protocol):
    def put(self, key: str, stream: BinaryIO, content_type: str = "application/octet-stream") -> None: ...
    def open(self, key: str) -> Iterator[bytes]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def check(self) -> None: ...


class S3Store:
    """Blobs in one bucket; keys are ours (`t/<tenant-uuid>/<blob-uuid>`), never user-supplied."""

    def __init__(self, bucket: str, *, endpoint: str | None, region: str, access_key: str, secret_key: str):
        import boto3  # imported here: boto3 costs ~0.3 s to import and most CLI commands never touch blobs
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=3,
                read_timeout=30,
                retries={"max_attempts": 2},
            ),
        )

    def put(self, key: str, stream: BinaryIO, content_type: str = "application/octet-stream") -> None:
        # upload_fileobj streams in parts (multipart for large bodies): memory stays flat.
        self.client.upload_fileobj(stream, self.bucket, key, ExtraArgs={"ContentType": content_type})

    def open(self, key: str) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        return body.iter_chunks(chunk_size=256 * 1024)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under `prefix`; returns how many."""
        deleted = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted

    def check(self) -> None:
        """Raise unless the bucket answers."""
        self.client.head_bucket(Bucket=self.bucket)


def blob_store_from_url(url: str, *, access_key: str = "", secret_key: str = "") -> BlobStore:
    """`s3://bucket?endpoint=http://host:port&region=us-east-1` → an S3Store."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"unsupported STORAGE_URL {url!r}: expected s3://bucket?endpoint=…&region=…")
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    return S3Store(
        parsed.netloc,
        endpoint=query.get("endpoint"),
        region=query.get("region", "us-east-1"),
        access_key=access_key,
        secret_key=secret_key,
    )
