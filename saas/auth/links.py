"""Signed links that need no table: a password reset is bound to the hash it replaces."""
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .secrets import digest

RESET_SECONDS = 3600


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="dealdocs.password-reset")


def _fingerprint(password_hash: str) -> str:
    return digest(password_hash)[:16]


def password_reset_token(user) -> str:
    """A one-hour link that dies as soon as the password changes (so it works once)."""
    return _serializer().dumps({"u": user.id, "h": _fingerprint(user.password_hash)})


def user_id_for_reset(token: str, current_hash_of) -> int | None:
    """The user id the token resets, if it is genuine, fresh and the password is still the one it was made for."""
    try:
        data = _serializer().loads(token, max_age=RESET_SECONDS)
    except BadSignature:  # SignatureExpired included
        return None
    password_hash = current_hash_of(data.get("u"))
    return data["u"] if password_hash and _fingerprint(password_hash) == data.get("h") else None
