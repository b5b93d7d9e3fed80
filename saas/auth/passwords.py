"""Password hashing with Argon2id (argon2-cffi's recommended parameters)."""
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when no such user exists, so a wrong email costs as long as a wrong password.

    Made on first use: hashing at import would add ~0.1 s to every CLI command.
    """
    return _hasher.hash("not-a-password")

MIN_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
