"""Password hashing with Argon2id.

Parameters are OWASP's recommended Argon2id configuration (m=46 MiB, t=1, p=1): about 60 ms
here, where argon2-cffi's default (64 MiB, t=3, p=4) took 180 ms and alone broke the 150 ms
sign-up budget. Hashes made with other parameters are upgraded at the next sign-in.
"""
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher(time_cost=1, memory_cost=47104, parallelism=1)


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


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
