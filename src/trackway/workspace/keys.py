"""Generated identifiers and secrets."""

import hashlib
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int) -> str:
    """A random alphanumeric string (about 5.95 bits per character)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_write_key() -> str:
    """A write key: 32 alphanumeric characters, like Segment's."""
    return random_token(32)


def new_public_id(prefix: str) -> str:
    """An id shown to users, such as `src_3kX9...`."""
    return f"{prefix}_{random_token(16)}"


def new_admin_token() -> str:
    """An admin API token; only its hash is stored."""
    return "tw_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of an admin token."""
    return hashlib.sha256(token.encode()).hexdigest()
