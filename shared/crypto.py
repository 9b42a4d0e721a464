"""Provider secrets encrypted at rest: Fernet (AES-128-CBC + HMAC-SHA256) with a rotatable keyring.

Columns typed `EncryptedText` hold ciphertext; code reads and writes plaintext. The keys come from
`GUESTCARD_ENCRYPTION_KEYS` (newest first; every key decrypts, the first encrypts) or, unset, from a key
generated once into the data folder. `guestcard secrets rotate` re-encrypts every such column under the
first key, after which older keys can be dropped. A value stored before encryption existed (plaintext) is
still read, and the next rotation encrypts it.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

from shared.config import Settings, get_settings

_FERNET_PREFIX = "gAAAAA"  # every Fernet token starts with its version byte 0x80, base64url
_keyring: MultiFernet | None = None


class SecretUnreadable(RuntimeError):
    """A stored secret none of the configured keys can decrypt (a key was dropped too early)."""


def _keys(settings: Settings) -> list[bytes]:
    if settings.encryption_keys:
        return [key.strip().encode() for key in settings.encryption_keys.split(",") if key.strip()]
    path = settings.data_dir / "encryption_key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return [path.read_bytes().strip()]


def configure(settings: Settings) -> None:
    """Load the keyring from settings (the API lifespan, the worker's startup and the CLI call this)."""
    global _keyring
    _keyring = MultiFernet([Fernet(key) for key in _keys(settings)])


def keyring() -> MultiFernet:
    if _keyring is None:
        configure(get_settings())
    assert _keyring is not None
    return _keyring


def encrypt(plaintext: str) -> str:
    return keyring().encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    try:
        return keyring().decrypt(stored.encode()).decode()
    except InvalidToken:
        if stored.startswith(_FERNET_PREFIX):
            raise SecretUnreadable("a stored secret cannot be decrypted with the configured keys") from None
        return stored  # written before encryption at rest; `guestcard secrets rotate` encrypts it


def reencrypt(stored: str) -> str:
    """Ciphertext under the newest key (plaintext from before encryption gets encrypted)."""
    if stored.startswith(_FERNET_PREFIX):
        try:
            return keyring().rotate(stored.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable("a stored secret cannot be decrypted with the configured keys") from None
    return encrypt(stored)


class EncryptedText(TypeDecorator[str]):
    """Text encrypted at rest; plaintext in Python."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else encrypt(str(value))

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else decrypt(str(value))
