"""Encryption of stored secrets (mailbox passwords, OAuth2 tokens) with HELPDESK_ENCRYPTION_KEY."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the configured keys."""


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in current_app.config["HELPDESK_ENCRYPTION_KEYS"]])


def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` with the first configured key."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a stored secret with any configured key."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "a stored secret cannot be decrypted: was HELPDESK_ENCRYPTION_KEY changed? "
            "(keep the old key after the new one while rotating)"
        ) from None
