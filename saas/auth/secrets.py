"""Bearer secrets (API tokens, invitation links): random, shown once, stored only as SHA-256."""
import hashlib
import secrets


def digest(token: str) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()


def new_secret(prefix: str = "") -> tuple[str, str]:
    """A fresh secret and the digest to store for it."""
    token = prefix + secrets.token_urlsafe(32)
    return token, digest(token)
