"""Blob backends behind one interface. S3 (any S3-protocol server) through boto3."""
import hashlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Protocol
from urllib.parse import parse_qs, quote, urlparse

SNIFF_BYTES = 8192  # what content-type sniffing reads of a file's start


class BlobStore(Protocol):
    def put(self, key: str, stream: BinaryIO, content_type: str = "application/octet-stream") -> None: ...
    def write(self, key: str, stream: BinaryIO, max_bytes: int) -> "Written": ...
    def open(self, key: str) -> Iterator[bytes]: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def keys(self, prefix: str) -> Iterator[tuple[str, int]]: ...
    def link(self, key: str, *, filename: str, content_type: str, inline: bool, seconds: int) -> str: ...
    def check(self) -> None: ...


class TooLarge(Exception):
    """The stream carried more bytes than it was allowed."""


@dataclass(frozen=True)
class Written:
    size: int
    sha256: str
    head: bytes  # the first SNIFF_BYTES, for telling the content type from the bytes


class _Metered:
    """A read-only stream that counts, hashes and keeps the head of what passes through it,
    and stops with TooLarge past `max_bytes` (so a lying Content-Length cannot overrun a quota)."""

    def __init__(self, stream: BinaryIO, max_bytes: int):
        self.stream, self.max_bytes = stream, max_bytes
        self.size, self.digest, self.head = 0, hashlib.sha256(), b""

    def read(self, n: int = -1) -> bytes:
        chunk = self.stream.read(n if n is not None and n >= 0 else 1024 * 1024)
        if not chunk:
            return b""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TooLarge(f"more than {self.max_bytes} bytes")
        self.digest.update(chunk)
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[:SNIFF_BYTES - len(self.head)]
        return chunk

    def written(self) -> Written:
        return Written(self.size, self.digest.hexdigest(), self.head)


def content_disposition(filename: str, inline: bool) -> str:
    """RFC 6266 with an ASCII fallback: any Unicode name survives, none breaks the header."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in filename) or "file"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


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
        self.client.upload_fileobj(stream, self.bucket, key, ExtraArgs={"ContentType": content_type},
                                   Config=self._transfer)

    def write(self, key: str, stream: BinaryIO, max_bytes: int) -> Written:
        """Stream `stream` to `key` (multipart past 8 MB), at most `max_bytes`; TooLarge beyond.

        On any failure nothing stays behind under `key` (an aborted multipart upload is aborted).
        """
        metered = _Metered(stream, max_bytes)
        try:
            self.client.upload_fileobj(metered, self.bucket, key, Config=self._transfer)
        except BaseException:
            self.delete(key)
            raise
        return metered.written()

    @property
    def _transfer(self):
        from boto3.s3.transfer import TransferConfig

        # 8 MB parts, 4 in flight: fast on loopback and a few parts' worth of memory at most. A request
        # body cannot seek, so boto3 buffers the parts it has read; it would hold 10 (80 MB) by default.
        config = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024,
                                max_concurrency=4, use_threads=True)
        config.max_in_memory_upload_chunks = 4
        return config

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every blob under `prefix`."""
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], item["Size"]

    def link(self, key: str, *, filename: str, content_type: str, inline: bool, seconds: int) -> str:
        """A SigV4 presigned GET that expires in `seconds` and names the file for the browser."""
        return self.client.generate_presigned_url("get_object", ExpiresIn=seconds, Params={
            "Bucket": self.bucket, "Key": key, "ResponseContentType": content_type,
            "ResponseContentDisposition": content_disposition(filename, inline)})

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
