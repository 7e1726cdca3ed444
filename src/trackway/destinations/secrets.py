"""Secrets at rest: destination settings of type `secret` are stored encrypted.

The key is `TRACKWAY_SECRET_KEY` when set (a Fernet key, see docs/destinations.md), else
the file `secret.key` in the data directory, created with mode 0600 on first use.
Stored values look like `{"$secret": "<Fernet token>"}`; nothing ever prints them back.
"""

import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from trackway.settings import env

KEY_FILE = "secret.key"
MASK = "********"
_MARK = "$secret"


class SecretError(Exception):
    """A stored secret cannot be decrypted (the key is not the one it was stored with)."""


def is_sealed(value: Any) -> bool:
    """Whether a stored value is an encrypted secret."""
    return isinstance(value, dict) and set(value) == {_MARK}


class Secrets:
    """Encrypts and decrypts the secret settings of one data directory."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError as exc:
            raise SecretError(
                "TRACKWAY_SECRET_KEY is not a valid key (32 url-safe base64-encoded bytes;"
                " make one with: python -c 'from cryptography.fernet import Fernet;"
                " print(Fernet.generate_key().decode())')"
            ) from exc

    @classmethod
    def of(cls, data_dir: Path) -> "Secrets":
        """The secrets of a data directory (its key file is created when missing)."""
        key = env("SECRET_KEY")
        if key:
            return cls(key.encode())
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes creating the key at once must not end up with two keys
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as file:
                    file.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, value: str) -> dict[str, str]:
        """The stored form of a secret value."""
        return {_MARK: self._fernet.encrypt(value.encode()).decode()}

    def open(self, sealed: dict[str, str], name: str) -> str:
        """The plain value of a stored secret; raises SecretError naming the setting."""
        try:
            return self._fernet.decrypt(sealed[_MARK].encode()).decode()
        except InvalidToken:
            raise SecretError(
                f"the secret setting '{name}' cannot be decrypted: it was stored with another"
                " key (TRACKWAY_SECRET_KEY or secret.key in the data directory changed)"
            ) from None
